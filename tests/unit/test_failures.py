"""runtime.failures.start_failure: dockerd's exit code and fault for a refused start."""

from __future__ import annotations

import pytest

from dockyard.errors import CommandNotRunnable, Internal, InvalidArgument, RuntimeFailed
from dockyard.runtime.failures import start_failure


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('exec: "nosuch": executable file not found in $PATH', 127),
        ("exec /no/such/binary: no such file or directory", 127),
        ("exec /etc/passwd: permission denied", 126),
        ("mount /x to rootfs: not a directory", 127),
    ],
)
def test_the_users_command_is_the_users_fault(message: str, code: int) -> None:
    err = start_failure(message)
    assert isinstance(err, CommandNotRunnable) and isinstance(err, InvalidArgument)
    assert err.exit_code == code


def test_anything_else_is_the_runtimes_fault() -> None:
    err = start_failure("cgroup: cannot enter")
    assert isinstance(err, RuntimeFailed) and isinstance(err, Internal)
    assert err.exit_code == 128
    assert err.message == "OCI runtime create failed: cgroup: cannot enter"


def test_the_message_keeps_the_part_a_user_can_act_on() -> None:
    err = start_failure('/usr/bin/runc: blah: exec: "nosuch": executable file not found in $PATH"\n')
    assert err.message == (
        'failed to create task for container: OCI runtime create failed: exec: "nosuch": '
        "executable file not found in $PATH"
    )


def test_a_not_found_message_about_another_path_is_not_the_command() -> None:
    # dockerd says 127 only when the missing file is the command itself.
    err = start_failure("open /etc/whatever: no such file or directory", command="sh")
    assert isinstance(err, RuntimeFailed)
