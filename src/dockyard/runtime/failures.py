"""Why a process did not start: the runtime's stderr, sorted by dockerd's rules.

dockerd (daemon/errors.go `setExitCodeFromError`) looks for words in the error text: the
user's command problems become 400 with exit code 126 or 127, anything else 500 with 128.
The docker CLI chooses its own exit code from the same words, so the text must keep them.
"""

from __future__ import annotations

import json
import re

from dockyard.errors import CommandNotRunnable, RuntimeFailed, StartFailed

EXIT_NOT_EXECUTABLE = 126  # cannot be invoked: permission denied, a directory
EXIT_NOT_FOUND = 127  # no such command, or a bad mount
EXIT_UNKNOWN = 128

_NOT_FOUND_WORDS = (
    "executable file not found",
    "no such file or directory",
    "system cannot find the file specified",
    "failed to run runc create/exec call",
)
_MOUNT_HINT = (
    ": Are you trying to mount a directory onto a file (or vice-versa)? "
    "Check if the specified host path exists and is the expected type"
)
# A logrus text line from runc: time="..." level=error msg="..." (msg is a Go-quoted string).
_LOGRUS = re.compile(r'level=(?P<level>\w+)\s+msg=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')
# crun words the user's command problems differently from runc; the docker CLI reads its exit
# code from runc's lowercase words (case-sensitively, unlike dockerd), so they are told as runc
# tells them. crun 1.8: "executable file `X` not found in $PATH: No such file or directory"
# (also for an absolute X), "open executable: Operation not permitted" (X is not a regular
# file, where runc says permission denied), and C's capitalised strerror texts.
_CRUN_NOT_FOUND = re.compile(r"executable file `(?P<cmd>[^`]*)` not found in \$PATH: No such file or directory")
_CRUN_NOT_REGULAR = "open executable: Operation not permitted"
_STRERROR = ("No such file or directory", "Permission denied", "Not a directory", "Is a directory")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def runtime_reason(stderr: str) -> str:
    """The error a runtime printed, without its log decoration: runc's logrus text or JSON
    lines (the last error wins), otherwise the text as it is (crun prints plain lines)."""
    error = logged = plain = ""
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        level, msg = _log_line(line)
        if msg is None:
            plain = line
        elif level in ("error", "fatal", "panic"):
            error = msg
        else:
            logged = msg
    return error or plain or logged


def as_runc_words(reason: str) -> str:
    """A crun reason in runc's words where the two differ on what the user did wrong
    (runc's own reasons come back unchanged)."""
    found = _CRUN_NOT_FOUND.search(reason)
    if found is not None:
        cmd = found.group("cmd")
        said = f'exec: "{cmd}": stat {cmd}: no such file or directory' if "/" in cmd else (
            f'exec: "{cmd}": executable file not found in $PATH'
        )
        reason = reason[: found.start()] + said + reason[found.end() :]
    reason = reason.replace(_CRUN_NOT_REGULAR, "open executable: permission denied")
    for text in _STRERROR:
        reason = reason.replace(f": {text}", f": {text.lower()}")
    return reason


def _log_line(line: str) -> tuple[str, str | None]:
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return "", None
        if isinstance(record, dict) and isinstance(record.get("msg"), str):
            return str(record.get("level", "")), record["msg"]
        return "", None
    match = _LOGRUS.search(line)
    if match is None:
        return "", None
    quoted = match.group("quoted")
    return match.group("level"), _unquote(quoted) if quoted is not None else match.group("bare")


def _unquote(text: str) -> str:
    """Undo Go's strconv.Quote escapes (enough for error messages)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt, 0)
        if width:
            digits = text[i + 2 : i + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
                i += 2 + width
                continue
            except ValueError:
                pass
        out.append(_ESCAPES.get(nxt, "\\" + nxt))
        i += 2
    return "".join(out)


def failure_text(reason: str, operation: str) -> str:
    """dockerd's wording around the runtime's reason (containerd's shim adds ': unknown')."""
    if operation == "create":
        head = "failed to create task for container: failed to create shim task: OCI runtime create failed: "
    else:
        head = f"OCI runtime {operation} failed: "
    return f"{head}{reason}: unknown"


def classify(text: str) -> StartFailed:
    """dockerd's setExitCodeFromError on an already worded message."""
    lowered = text.lower()
    if "permission denied" in lowered:
        return CommandNotRunnable(text, EXIT_NOT_EXECUTABLE)
    if "is a directory" in lowered:
        # As dockerd: the CLI looks for "permission denied" to exit 126.
        return CommandNotRunnable(text + ": permission denied", EXIT_NOT_EXECUTABLE)
    if "not a directory" in lowered:
        return CommandNotRunnable(text + _MOUNT_HINT, EXIT_NOT_FOUND)
    if any(words in lowered for words in _NOT_FOUND_WORDS):
        return CommandNotRunnable(text, EXIT_NOT_FOUND)
    return RuntimeFailed(text, EXIT_UNKNOWN)


def start_failure(runtime_message: str, operation: str) -> StartFailed:
    """The typed error for a runtime that could not start a process.

    `runtime_message` is the runtime's stderr (as conmon relays it); `operation` is the
    runtime command that failed: "create" for a container, "exec" for an exec session.
    """
    reason = as_runc_words(runtime_reason(runtime_message)) or f"{operation} failed without a message"
    return classify(failure_text(reason, operation))
