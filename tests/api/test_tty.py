"""Interactive use through a real terminal: `docker run -it`, resize, `docker attach`."""

from __future__ import annotations

import json
import time

import pexpect
import pytest

from tests.conftest import Daemon


def _spawn(daemon: Daemon, command: str) -> pexpect.spawn:
    child = pexpect.spawn(command, env=daemon.env(), timeout=20, dimensions=(30, 100))
    return child


def test_run_it_is_an_interactive_shell(daemon: Daemon, busybox: str) -> None:
    child = _spawn(daemon, f"docker run -it --rm --name tty-shell {busybox} sh")
    try:
        child.expect("# ")
        child.sendline("echo tty-$((6*7)); tty; stty size")
        child.expect("tty-42")
        child.expect("/dev/pts/0")
        child.expect("30 100")
        child.setwinsize(40, 120)  # the CLI turns SIGWINCH into a resize
        deadline = time.monotonic() + 10
        size = ""
        while time.monotonic() < deadline and size != "40 120":
            child.sendline("stty size")
            index = child.expect(["40 120", pexpect.TIMEOUT], timeout=1)
            size = "40 120" if index == 0 else ""
        assert size == "40 120"
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 5


def test_attach_to_running_tty_container(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-dit", "--name", "tty-attach", busybox, "sh")
    try:
        child = _spawn(daemon, "docker attach tty-attach")
        try:
            child.sendline("echo attached-$((1+1))")
            child.expect("attached-2")
            child.sendline("exit 0")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        state = json.loads(daemon.out("inspect", "tty-attach"))[0]["State"]
        assert state["Status"] == "exited"
    finally:
        daemon.docker("rm", "-f", "tty-attach", check=False)


def test_tty_logs_are_kept(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-t", "--name", "tty-logs", busybox, "echo", "from-tty")
    try:
        logs = daemon.docker("logs", "tty-logs").stdout
        assert logs.replace(b"\r", b"") == b"from-tty\n"
    finally:
        daemon.docker("rm", "-f", "tty-logs", check=False)


def test_attach_with_piped_stdin_to_open_stdin_container(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-di", "--name", "cat-attach", busybox, "cat")
    try:
        child = pexpect.spawn(
            "sh", ["-c", "printf 'to-cat\\n' | docker attach cat-attach"], env=daemon.env(), timeout=20
        )
        try:
            child.expect("to-cat")
        finally:
            child.close(force=True)
        assert json.loads(daemon.out("inspect", "cat-attach"))[0]["State"]["Running"] is True
    finally:
        daemon.docker("rm", "-f", "cat-attach", check=False)


@pytest.mark.parametrize("signal", ["HUP", "USR1"])
def test_kill_with_signal_reaches_the_process(daemon: Daemon, busybox: str, signal: str) -> None:
    script = f"trap 'echo got-{signal}; exit 0' {signal}; echo ready; while true; do sleep 0.1; done"
    daemon.docker("run", "-d", "--name", f"sig-{signal}", busybox, "sh", "-c", script)
    try:
        deadline = time.monotonic() + 10
        while "ready" not in daemon.out("logs", f"sig-{signal}") and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon.docker("kill", "-s", signal, f"sig-{signal}")
        assert daemon.out("wait", f"sig-{signal}") == "0"
        assert f"got-{signal}" in daemon.out("logs", f"sig-{signal}")
    finally:
        daemon.docker("rm", "-f", f"sig-{signal}", check=False)


def _running(daemon: Daemon, name: str) -> bool:
    return json.loads(daemon.out("inspect", name))[0]["State"]["Running"] is True


def test_detach_keys_leave_run_it_running_and_attach_works_again(daemon: Daemon, busybox: str) -> None:
    child = _spawn(daemon, f"docker run -it --name tty-detach {busybox} sh")
    try:
        child.expect("# ")
        child.sendline("echo before-$((2+3))")
        child.expect("before-5")
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
        child.close()
        assert _running(daemon, "tty-detach")
        again = _spawn(daemon, "docker attach --detach-keys ctrl-x tty-detach")
        try:
            again.sendline("echo again-$((3+4))")
            again.expect("again-7")
            again.send("\x18")  # ctrl-x: the keys given this time
            again.expect(pexpect.EOF)
        finally:
            again.close(force=True)
        assert _running(daemon, "tty-detach")
    finally:
        child.close(force=True)
        daemon.docker("rm", "-f", "tty-detach", check=False)


def test_bad_detach_keys_are_refused(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-dit", "--name", "tty-badkeys", busybox, "sh")
    try:
        child = _spawn(daemon, "docker attach --detach-keys ctrl-bogus tty-badkeys")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus != 0
        assert "received 400" in (child.before or b"").decode()  # the CLI's words for it
        import docker.errors

        client = daemon.client()
        url = client.api._url("/containers/{0}/attach", "tty-badkeys")  # noqa: SLF001
        with pytest.raises(docker.errors.APIError) as info:
            client.api._raise_for_status(client.api._post(url, params={"stream": 1, "detachKeys": "ctrl-bogus"}))  # noqa: SLF001
        assert info.value.status_code == 400
        assert "Invalid detach keys (ctrl-bogus) provided" in str(info.value.explanation)
        assert _running(daemon, "tty-badkeys")
    finally:
        daemon.docker("rm", "-f", "tty-badkeys", check=False)


def test_the_daemon_sees_detach_keys_a_raw_client_sends(daemon: Daemon, busybox: str) -> None:
    """The CLI detaches by itself; a raw client (docker-py's attach socket) relies on the daemon."""
    daemon.docker("run", "-dit", "--name", "tty-raw", busybox, "sh")
    try:
        sock = daemon.client().api.attach_socket(
            "tty-raw", params={"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-a,x"}
        )
        raw = sock._sock  # noqa: SLF001 - the socket under docker-py's wrapper
        raw.settimeout(10)
        raw.sendall(b"echo raw-$((5+5))\n")
        seen = b""
        while b"raw-10" not in seen:
            seen += raw.recv(4096)
        raw.sendall(b"\x01x")
        while raw.recv(4096):
            pass  # the daemon ends the session
        raw.close()
        assert _running(daemon, "tty-raw")
        # The CLI turns durations into whole seconds: end the replay a second from now.
        until = str(int(time.time()) + 1)
        actions = daemon.out("events", "--since", "60s", "--until", until, "--filter", "container=tty-raw",
                             "--format", "{{.Action}}").splitlines()  # fmt: skip
        assert "detach" in actions
    finally:
        daemon.docker("rm", "-f", "tty-raw", check=False)
