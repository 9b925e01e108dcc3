"""Start failures: the runtime's stderr becomes dockerd's words, kind and exit code."""

from __future__ import annotations

import pytest

from dockyard.errors import (
    CommandNotRunnable,
    Internal,
    InvalidArgument,
    RuntimeFailed,
    StartFailed,
)
from dockyard.runtime.failures import classify, failure_text, runtime_reason, start_failure

RUNC_EXEC_NOT_FOUND = (
    'time="2026-12-01T21:46:05Z" level=error msg="exec failed: unable to start container process: '
    'exec: \\"nosuch\\": executable file not found in $PATH"\n'
)
RUNC_CREATE_MISSING = (
    'time="2026-12-01T21:46:05Z" level=error msg="runc create failed: unable to start container process: '
    'exec: \\"/no/such/binary\\": stat /no/such/binary: no such file or directory"\n'
)


def test_exec_not_found_reads_as_dockerd() -> None:
    err = start_failure(RUNC_EXEC_NOT_FOUND, "exec")
    assert isinstance(err, CommandNotRunnable) and isinstance(err, InvalidArgument) and isinstance(err, StartFailed)
    assert err.exit_code == 127
    assert err.message == (
        'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": '
        "executable file not found in $PATH: unknown"
    )


def test_create_missing_binary_reads_as_dockerd() -> None:
    err = start_failure(RUNC_CREATE_MISSING, "create")
    assert isinstance(err, CommandNotRunnable) and err.exit_code == 127
    assert err.message == (
        "failed to create task for container: failed to create shim task: OCI runtime create failed: "
        'runc create failed: unable to start container process: exec: "/no/such/binary": '
        "stat /no/such/binary: no such file or directory: unknown"
    )


@pytest.mark.parametrize(
    ("reason", "kind", "code", "suffix"),
    [
        ('exec: "/etc/passwd": permission denied', CommandNotRunnable, 126, ""),
        ("exec: PERMISSION DENIED", CommandNotRunnable, 126, ""),
        ('exec: "/tmp": is a directory', CommandNotRunnable, 126, ": permission denied"),
        ("mounting x to rootfs: not a directory", CommandNotRunnable, 127,
         (": Are you trying to mount a directory onto a file (or vice-versa)? "
          "Check if the specified host path exists and is the expected type")),
        ('exec: "x": executable file not found in $PATH', CommandNotRunnable, 127, ""),
        ("chdir to cwd (\"/nope\") set in config.json failed: no such file or directory", CommandNotRunnable, 127, ""),
        ("The system cannot find the file specified", CommandNotRunnable, 127, ""),
        ("failed to run runc create/exec call", CommandNotRunnable, 127, ""),
        ("unable to apply caps: operation not permitted", RuntimeFailed, 128, ""),
        ("cannot exec in a stopped container", RuntimeFailed, 128, ""),
        ("", RuntimeFailed, 128, ""),
    ],
)  # fmt: skip
def test_classification_follows_set_exit_code_from_error(reason: str, kind: type[StartFailed], code: int, suffix: str) -> None:
    text = failure_text(reason, "exec")
    err = classify(text)
    assert type(err) is kind and err.exit_code == code and err.message == text + suffix


def test_permission_denied_wins_over_not_found() -> None:
    assert classify("no such file or directory: permission denied").exit_code == 126


def test_runtime_failed_is_internal() -> None:
    err = start_failure('level=error msg="unable to apply caps: operation not permitted"', "exec")
    assert isinstance(err, RuntimeFailed) and isinstance(err, Internal) and not isinstance(err, InvalidArgument)
    assert err.message == "OCI runtime exec failed: unable to apply caps: operation not permitted: unknown"


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (RUNC_EXEC_NOT_FOUND, 'exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH'),
        ('{"level":"error","msg":"json \\"quoted\\"","time":"x"}\n', 'json "quoted"'),
        ("crun: executable file `nosuch` not found in $PATH: No such file or directory\n",
         "crun: executable file `nosuch` not found in $PATH: No such file or directory"),
        ('level=warning msg="first"\nlevel=error msg="second"\nlevel=info msg="third"\n', "second"),
        ('level=warning msg="only a warning"\n', "only a warning"),
        ('level=warning msg="w"\nplain failure text\n', "plain failure text"),
        ("level=error msg=bare\n", "bare"),
        ('level=error msg="tab\\there \\x41\\u00e9 back\\\\slash"', "tab\there A\u00e9 back\\slash"),
        ('level=error msg="odd \\q escape"', "odd \\q escape"),
        ("   \n\n", ""),
        ("", ""),
        ("{not json\n", "{not json"),
        ('{"msg": 5}\n', '{"msg": 5}'),
    ],
)  # fmt: skip
def test_runtime_reason(stderr: str, reason: str) -> None:
    assert runtime_reason(stderr) == reason


def test_failure_text_per_operation() -> None:
    assert failure_text("r", "exec") == "OCI runtime exec failed: r: unknown"
    assert failure_text("r", "create") == (
        "failed to create task for container: failed to create shim task: OCI runtime create failed: r: unknown"
    )
    assert failure_text("r", "start") == "OCI runtime start failed: r: unknown"


def test_empty_message_still_says_what_failed() -> None:
    err = start_failure("", "exec")
    assert isinstance(err, RuntimeFailed) and "exec failed" in err.message


def test_start_failed_defaults_to_128() -> None:
    assert StartFailed("x").exit_code == 128 and StartFailed("x", 127).exit_code == 127


# ---- crun's words (crun 1.8.1, as its stderr reaches us through conmon) --------------------


@pytest.mark.parametrize(
    ("crun", "runc_words", "code"),
    [
        ("executable file `nope` not found in $PATH: No such file or directory",
         'exec: "nope": executable file not found in $PATH', 127),
        ("executable file `/no/such` not found in $PATH: No such file or directory",
         'exec: "/no/such": stat /no/such: no such file or directory', 127),
        ("executable file `./bin/x` not found in $PATH: No such file or directory",
         'exec: "./bin/x": stat ./bin/x: no such file or directory', 127),
        ("open executable: Permission denied", "open executable: permission denied", 126),
        ("open executable: Operation not permitted", "open executable: permission denied", 126),
        ("open `/tmp/dy/merged/etc/file/x`: Not a directory", "open `/tmp/dy/merged/etc/file/x`: not a directory", 127),
        ("chdir `/nope`: No such file or directory", "chdir `/nope`: no such file or directory", 127),
        ("write `/proc/self/oom_score_adj`: Is a directory", "write `/proc/self/oom_score_adj`: is a directory", 126),
    ],
)  # fmt: skip
def test_crun_reasons_are_told_in_runc_words(crun: str, runc_words: str, code: int) -> None:
    from dockyard.runtime.failures import as_runc_words

    assert as_runc_words(crun) == runc_words
    err = start_failure(crun + "\n", "create")
    assert err.exit_code == code
    # The docker CLI looks for these words case-sensitively to choose its own exit code
    # (for "not a directory" it has none: 125, as with runc).
    cli_words = {127: ("executable file not found", "no such file or directory"), 126: ("permission denied",)}[code]
    assert any(words in err.message for words in cli_words) or "not a directory" in runc_words


@pytest.mark.parametrize(
    "runc",
    [
        'exec: "x": executable file not found in $PATH',
        'exec: "/etc/passwd": permission denied',
        "unable to apply caps: operation not permitted",
        "container not running",
    ],
)
def test_runc_reasons_are_left_as_they_are(runc: str) -> None:
    from dockyard.runtime.failures import as_runc_words

    assert as_runc_words(runc) == runc


def test_crun_not_found_for_exec_reads_as_dockerd_with_runc() -> None:
    err = start_failure("executable file `nosuch` not found in $PATH: No such file or directory\n", "exec")
    assert isinstance(err, CommandNotRunnable) and err.exit_code == 127
    assert err.message == 'OCI runtime exec failed: exec: "nosuch": executable file not found in $PATH: unknown'
