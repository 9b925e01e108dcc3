"""docker exec against a real daemon: the CLI (plain, -i, -d, -it), docker-py, inspect, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import docker.errors
import pexpect
import pytest

from tests.conftest import Daemon


@pytest.fixture
def box(daemon: Daemon, busybox: str) -> Iterator[str]:
    cid = daemon.out("run", "-d", "--label", "exec-test=1", busybox, "sleep", "300")
    yield cid
    daemon.docker("rm", "-f", cid)


def test_output_exit_codes_user_workdir_env(daemon: Daemon, box: str) -> None:
    assert daemon.out("exec", box, "echo", "exec-hi") == "exec-hi"
    assert daemon.docker("exec", box, "sh", "-c", "echo out; echo err >&2; exit 3", check=False).returncode == 3
    split = daemon.docker("exec", box, "sh", "-c", "echo out; echo err >&2", check=False)
    assert (split.stdout, split.stderr) == (b"out\n", b"err\n")
    assert daemon.out("exec", "-u", "nobody", box, "id", "-u") == "65534"
    assert daemon.out("exec", "-w", "/tmp", box, "pwd") == "/tmp"
    assert daemon.out("exec", "-e", "A=1", "-e", "HOSTNAME=x", box, "sh", "-c", "echo $A $HOSTNAME") == "1 x"


def test_env_file_and_privileged(daemon: Daemon, box: str, tmp_path: object) -> None:
    from pathlib import Path

    env_file = Path(str(tmp_path)) / "env"
    env_file.write_text("FROM_FILE=yes\n# a comment\n")
    assert daemon.out("exec", "--env-file", str(env_file), box, "sh", "-c", "echo $FROM_FILE") == "yes"
    plain = daemon.out("exec", box, "grep", "CapEff", "/proc/self/status").split()[1]
    privileged = daemon.out("exec", "--privileged", box, "grep", "CapEff", "/proc/self/status").split()[1]
    assert int(privileged, 16) > int(plain, 16)


def test_piped_stdin_and_a_missing_command(daemon: Daemon, box: str) -> None:
    data = b"".join(b"line %05d\n" % i for i in range(5000))
    assert daemon.docker("exec", "-i", box, "wc", "-l", input=data).stdout.split()[0] == b"5000"
    missing = daemon.docker("exec", box, "nosuch", check=False)
    assert missing.returncode == 127
    assert b'exec: "nosuch": executable file not found in $PATH' in missing.stdout + missing.stderr


def test_detached_exec_runs_on(daemon: Daemon, box: str) -> None:
    daemon.docker("exec", "-d", box, "sh", "-c", "sleep 0.3; touch /tmp/done")
    deadline = time.monotonic() + 10
    while daemon.docker("exec", box, "test", "-f", "/tmp/done", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_exec_it_has_a_terminal_and_resizes(daemon: Daemon, box: str) -> None:
    child = pexpect.spawn(f"docker exec -it {box} sh", env=daemon.env(), timeout=20, dimensions=(30, 100))
    try:
        child.expect("# ")
        child.sendline("tty; stty size")
        child.expect("/dev/pts/")
        child.expect("30 100")
        child.setwinsize(40, 120)
        deadline = time.monotonic() + 10
        while True:
            child.sendline("stty size")
            if child.expect(["40 120", pexpect.TIMEOUT], timeout=1) == 0:
                break
            assert time.monotonic() < deadline
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 4


def test_exec_it_detach_keys_leave_the_process_running(daemon: Daemon, box: str) -> None:
    child = pexpect.spawn(f"docker exec -it {box} sh -c 'touch /tmp/alive; sleep 30'", env=daemon.env(), timeout=20)
    try:
        deadline = time.monotonic() + 10
        while daemon.docker("exec", box, "test", "-f", "/tmp/alive", check=False).returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "sleep 30" in daemon.out("top", box)


def test_docker_py_exec_run_demux_stream_socket_and_inspect(daemon: Daemon, box: str) -> None:
    client = daemon.client()
    container = client.containers.get(box)
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"], demux=True)
    assert result.exit_code == 2
    assert result.output == (b"out\n", b"err\n")
    streamed = container.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
    assert b"".join(streamed.output) == b"1\n2\n3\n"
    api = client.api
    exec_id = api.exec_create(box, ["cat"], stdin=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = sock._sock  # noqa: SLF001
    raw.sendall(b"through-the-socket\n")
    raw.shutdown(1)  # half-close: cat sees EOF
    got = b""
    while chunk := raw.recv(4096):
        got += chunk
    raw.close()
    assert got.endswith(b"through-the-socket\n")  # after the 8-byte stream header
    deadline = time.monotonic() + 10
    info = api.exec_inspect(exec_id)
    while info["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
        info = api.exec_inspect(exec_id)
    assert info["ExitCode"] == 0 and info["Running"] is False
    assert info["ProcessConfig"] == {"arguments": [], "entrypoint": "cat", "privileged": False, "tty": False, "user": ""}
    assert info["ContainerID"] == box and info["OpenStdin"] is True


def test_exec_ids_and_events(daemon: Daemon, box: str) -> None:
    api = daemon.client().api
    exec_id = api.exec_create(box, ["sleep", "5"])["Id"]
    api.exec_start(exec_id, detach=True)
    assert exec_id in json.loads(daemon.out("inspect", box))[0]["ExecIDs"]
    until = str(int(time.time()) + 1)
    actions = daemon.out("events", "--since", "30s", "--until", until, "--filter", f"container={box}",
                         "--format", "{{.Action}} {{index .Actor.Attributes \"execID\"}}").splitlines()  # fmt: skip
    assert f"exec_create: sleep 5 {exec_id}" in actions
    assert f"exec_start: sleep 5 {exec_id}" in actions


def test_errors_as_dockerd(daemon: Daemon, busybox: str, box: str) -> None:
    api = daemon.client().api
    stopped = daemon.out("create", busybox, "true")
    try:
        with pytest.raises(docker.errors.APIError) as info:
            api.exec_create(stopped, ["true"])
        assert info.value.status_code == 409
        assert f"container {stopped} is not running" in str(info.value.explanation)
    finally:
        daemon.docker("rm", stopped)
    with pytest.raises(docker.errors.NotFound):
        api.exec_inspect("0" * 64)
    with pytest.raises(docker.errors.APIError) as info:
        api.exec_create(box, [])
    assert info.value.status_code == 400 and "No exec command specified" in str(info.value.explanation)
    with pytest.raises(docker.errors.APIError) as info:
        api.exec_create(box, ["true"], user="nosuchuser")
    assert info.value.status_code == 400
    exec_id = api.exec_create(box, ["true"])["Id"]
    api.exec_start(exec_id)
    with pytest.raises(docker.errors.APIError) as info:
        api.exec_start(exec_id)
    assert info.value.status_code == 409 and "has already run" in str(info.value.explanation)
    daemon.docker("pause", box)
    try:
        with pytest.raises(docker.errors.APIError) as info:
            api.exec_create(box, ["true"])
        assert info.value.status_code == 409 and "is paused, unpause the container before exec" in str(info.value.explanation)
    finally:
        daemon.docker("unpause", box)


def test_a_failed_exec_leaves_no_session_behind(daemon: Daemon, box: str) -> None:
    daemon.docker("exec", box, "nosuch", check=False)
    daemon.docker("exec", box, "true")
    sessions = daemon.exec_root / "containers" / box / "exec"
    deadline = time.monotonic() + 5
    while sessions.exists() and any(sessions.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sessions.exists() or not any(sessions.iterdir())


def test_framing_follows_the_start_bodys_tty(daemon: Daemon, box: str) -> None:
    """docker-py creates with tty=True and starts with Tty false: dockerd frames by the start."""
    api = daemon.client().api
    exec_id = api.exec_create(box, ["echo", "framed"], tty=True)["Id"]
    out, err = api.exec_start(exec_id, demux=True)
    assert (out or b"").replace(b"\r", b"") == b"framed\n" and err is None


def test_lowercase_detach_keys_in_the_body_count(daemon: Daemon, box: str) -> None:
    api = daemon.client().api
    res = api._post_json(api._url("/containers/{0}/exec", box), data={"Cmd": ["true"], "detachKeys": "ctrl-a"})  # noqa: SLF001
    exec_id = api._result(res, True)["Id"]  # noqa: SLF001
    assert api.exec_inspect(exec_id)["DetachKeys"] == "ctrl-a"
