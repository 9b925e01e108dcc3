"""The local driver's options (`-o type= -o device= -o o=`), driven by the docker CLI and
docker-py: a tmpfs or bind-style volume is mounted on its _data while containers using it
run, bad options are refused with dockerd's words and leave nothing, and a daemon killed
with a running user keeps the mount."""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import docker.errors
import pytest

from tests.conftest import Daemon


def _name(tag: str) -> str:
    return f"dyo-{tag}-{os.urandom(3).hex()}"


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _mountpoint(d: Daemon, name: str) -> str:
    return str(d.data_root / "volumes" / name / "_data")


def _eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _tmpfs(d: Daemon, name: str, o: str = "size=10m,uid=1000") -> None:
    d.out("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", f"o={o}", name)


def test_tmpfs_volume_lives_while_its_users_run(daemon: Daemon, busybox: str) -> None:
    name = _name("tmpfs")
    _tmpfs(daemon, name)
    mp = _mountpoint(daemon, name)
    (doc,) = json.loads(daemon.out("volume", "inspect", name))
    assert doc["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000"}
    assert doc["Mountpoint"] == mp and not _mounted(mp)  # nothing mounted until a user starts
    first = daemon.out("run", "-d", "-v", f"{name}:/etc", busybox, "sh", "-c", "echo hi > /etc/new; sleep 300")
    second = ""
    try:
        _eventually(lambda: os.path.exists(os.path.join(mp, "new")))
        assert _mounted(mp)
        assert "root:x:0:0" in Path(mp, "passwd").read_text()  # the image's /etc copied into the tmpfs
        out = daemon.out("run", "--rm", "-v", f"{name}:/etc", busybox, "sh", "-c", "cat /etc/new; df -k /etc | tail -1")
        assert out.splitlines()[0] == "hi" and out.splitlines()[1].split()[1] == "10240"
        second = daemon.out("run", "-d", "-v", f"{name}:/etc", busybox, "sleep", "300")
        daemon.out("rm", "-f", first)
        assert _mounted(mp) and Path(mp, "new").exists()  # the second still runs: kept
        daemon.out("stop", "-t", "0", second)
        assert not _mounted(mp) and os.listdir(mp) == []  # the last user stopped: the data is gone
        assert daemon.docker("volume", "rm", name, check=False).returncode == 1  # still named by `second`
        daemon.out("rm", second)
        daemon.out("volume", "rm", name)
        assert not (daemon.data_root / "volumes" / name).exists()
    finally:
        daemon.docker("rm", "-f", first, *([second] if second else []), check=False)
        daemon.docker("volume", "rm", "-f", name, check=False)


def test_bind_style_volume_shows_host_content_and_rm_leaves_it(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "from-host").write_text("host data\n")
    client = daemon.client()
    name = _name("bind")
    client.volumes.create(name, driver="local", driver_opts={"type": "none", "o": "bind", "device": str(host)})
    try:
        out = client.containers.run(busybox, ["sh", "-c", "cat /data/from-host; echo c > /data/from-ctr"],
                                    volumes={name: {"bind": "/data", "mode": "rw"}}, remove=True)  # fmt: skip
        assert out == b"host data\n"
        assert (host / "from-ctr").read_text() == "c\n"
        assert not _mounted(_mountpoint(daemon, name))
        client.volumes.get(name).remove()
        assert sorted(os.listdir(host)) == ["from-ctr", "from-host"]  # the host's directory is never emptied
    finally:
        daemon.docker("volume", "rm", "-f", name, check=False)


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"colour": "red"}, 'invalid option: "colour"'),
        ({"type": "tmpfs"}, 'missing required option: "device"'),
        ({"o": "size=1m", "type": "tmpfs"}, 'missing required option: "device"'),
        ({"size": "10m"}, "quota size requested but no quota support"),
        ({"size": "lots"}, "invalid size: 'lots'"),
    ],
)
def test_bad_options_are_400_and_make_nothing(daemon: Daemon, opts: dict[str, str], words: str) -> None:
    client = daemon.client()
    name = _name("bad")
    with pytest.raises(docker.errors.APIError) as caught:
        client.api.create_volume(name, driver_opts=opts)
    assert caught.value.status_code == 400
    assert caught.value.explanation == f"create {name}: {words}"
    assert daemon.docker("volume", "inspect", name, check=False).returncode == 1
    assert not (daemon.data_root / "volumes" / name).exists()


def test_a_bad_mount_fails_the_start_and_leaves_nothing_mounted(daemon: Daemon, busybox: str) -> None:
    name = _name("bogus")
    _tmpfs(daemon, name, "size=bogus")  # the kernel is the judge, at the first start
    mp = _mountpoint(daemon, name)
    cid = daemon.out("create", "-v", f"{name}:/data", busybox, "true")
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            daemon.client().api.start(cid)
        assert caught.value.status_code == 500
        assert caught.value.explanation == (
            f"error while mounting volume '{mp}': failed to mount local volume: "
            f"mount tmpfs:{mp}, data: size=bogus: invalid argument"
        )
        state = json.loads(daemon.out("inspect", cid))[0]["State"]
        assert state["Status"] == "created" and state["ExitCode"] == 128
        assert not _mounted(mp)
        result = daemon.docker("run", "--rm", "-v", f"{name}:/data", busybox, "true", check=False)
        assert result.returncode != 0 and "data: size=bogus: invalid argument" in result.stderr.decode()
    finally:
        daemon.docker("rm", "-f", cid, check=False)
    daemon.out("volume", "rm", name)
    assert not (daemon.data_root / "volumes" / name).exists()


def test_copy_up_keeps_hard_links(daemon: Daemon, busybox_tar: bytes) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(busybox_tar)) as base, tarfile.open(fileobj=buf, mode="w") as tar:
        for member in base.getmembers():
            tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("data")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        info = tarfile.TarInfo("data/a")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"a\n"))
        link = tarfile.TarInfo("data/b")
        link.type, link.linkname = tarfile.LNKTYPE, "data/a"
        tar.addfile(link)
    image = f"dyo-links:{os.urandom(3).hex()}"
    daemon.docker("import", "-", image, input=buf.getvalue())
    name = _name("links")
    try:
        out = daemon.out("run", "--rm", "-v", f"{name}:/data", image, "sh", "-c",
                         "stat -c %i /data/a /data/b; stat -c %h /data/a")  # fmt: skip
        a, b, links = out.split()
        assert a == b and links == "2"
    finally:
        daemon.docker("volume", "rm", "-f", name, check=False)
        daemon.docker("rmi", image, check=False)


def test_a_killed_daemon_keeps_a_running_users_mount_and_drops_an_idle_one(  # type: ignore[no-untyped-def]
    daemon_factory, busybox_tar: bytes
) -> None:
    d: Daemon = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    kept, idle = _name("kept"), _name("idle")
    _tmpfs(d, kept)
    _tmpfs(d, idle)
    runner = d.out("run", "-d", "-v", f"{kept}:/data", "busybox", "sh", "-c", "echo still > /data/f; sleep 300")
    ender = d.out("run", "-d", "-v", f"{idle}:/data", "busybox", "sleep", "300")
    _eventually(lambda: os.path.exists(os.path.join(_mountpoint(d, kept), "f")))
    ender_pid = json.loads(d.out("inspect", ender))[0]["State"]["Pid"]
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    os.kill(ender_pid, signal.SIGKILL)  # it ends while the daemon is away
    _eventually(lambda: not os.path.exists(f"/proc/{ender_pid}"))
    d.start()
    _eventually(lambda: json.loads(d.out("inspect", ender))[0]["State"]["Status"] == "exited")
    _eventually(lambda: not _mounted(_mountpoint(d, idle)))
    assert _mounted(_mountpoint(d, kept))
    assert d.out("exec", runner, "cat", "/data/f") == "still"
    assert d.docker("volume", "rm", kept, check=False).returncode == 1  # in use
    d.out("stop", "-t", "0", runner)  # counted across the restart: its stop unmounts
    assert not _mounted(_mountpoint(d, kept))
    d.out("rm", runner, ender)
    d.out("volume", "rm", kept, idle)
    assert os.listdir(d.data_root / "volumes") == []


def test_mount_volume_opt_makes_the_volume_with_those_options(daemon: Daemon, busybox: str) -> None:
    """`--mount type=volume,volume-opt=...` (VolumeOptions.DriverConfig.Options): the volume
    made on first use has them; a bad one is dockerd's 400 and makes nothing."""
    name = _name("mopt")
    spec = f"type=volume,src={name},dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=1m"
    try:
        out = daemon.out("run", "--rm", "--mount", spec, busybox, "sh", "-c", "df -k /v | tail -1")
        assert out.split()[0] == "tmpfs" and out.split()[1] == "1024"
        (doc,) = json.loads(daemon.out("volume", "inspect", name))
        assert doc["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
        assert not _mounted(_mountpoint(daemon, name))  # its one user ended
    finally:
        daemon.docker("volume", "rm", "-f", name, check=False)
    bad = _name("mbad")
    result = daemon.docker("create", "--mount", f"type=volume,src={bad},dst=/v,volume-opt=colour=red", busybox, check=False)
    assert result.returncode != 0 and f'create {bad}: invalid option: "colour"' in result.stderr.decode()
    assert bad not in daemon.out("volume", "ls", "-q").split()
    assert not (daemon.data_root / "volumes" / bad).exists()
    anonymous = daemon.out("run", "--rm", "--mount", "type=volume,dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
                           busybox, "sh", "-c", "df -k /v | tail -1")  # fmt: skip
    assert anonymous.split()[0] == "tmpfs"
