"""What a runtime's refusal to start a process means, in dockerd's terms (daemon/start.go)."""

from __future__ import annotations

from dockyard.errors import CommandNotRunnable, RuntimeFailed, StartFailed

_NOT_FOUND = ("executable file not found", "no such file or directory", "system cannot find the file specified")
_MOUNT_HINT = (
    ": Are you trying to mount a directory onto a file (or vice-versa)? "
    "Check if the specified host path exists and is the expected type"
)


def start_failure(runtime_message: str, command: str = "") -> StartFailed:
    """One classification for every start (containers and execs): the exit code dockerd
    records and whether the user's command (400) or the runtime (500) is at fault."""
    message = _tidy(runtime_message)
    lowered = message.lower()
    if (not command or command.lower() in lowered) and any(s in lowered for s in _NOT_FOUND):
        return CommandNotRunnable(message, 127)
    if "permission denied" in lowered:
        return CommandNotRunnable(message, 126)
    if "not a directory" in lowered:
        return CommandNotRunnable(message + _MOUNT_HINT, 127)
    return RuntimeFailed(message, 128)


def _tidy(message: str) -> str:
    text = message.strip()
    # conmon prefixes with the runtime's stderr path; keep the part a user can act on.
    marker = "exec: "
    if marker in text:
        return "failed to create task for container: OCI runtime create failed: " + text[text.index(marker):].rstrip('"\n')
    return "OCI runtime create failed: " + text
