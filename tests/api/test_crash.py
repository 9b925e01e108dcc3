"""Never lose a container: the daemon killed (-9) in the middle of things, a full disk, a
reboot, a shutdown without live-restore. After each, the database, the layers, the mounts
and the processes agree."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon


def _kill9(d: Daemon) -> None:
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()


def _own_processes(d: Daemon) -> list[str]:
    """Monitors and runtime processes of this daemon's containers (by their command lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(d.base).encode() in cmdline and b"dockyardd" not in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:120])
    return found


def _container_mounts(d: Daemon) -> list[str]:
    prefix = str(d.data_root / "overlay")
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1].startswith(prefix)]


def _cgroup_processes(ids: list[str]) -> list[str]:
    found = []
    for cid in ids:
        procs = Path("/sys/fs/cgroup/pids/dockyard") / cid / "cgroup.procs"
        if procs.exists() and procs.read_text().split():
            found.append(cid)
    return found


def _eventually(check, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the daemon did not settle"
        time.sleep(0.1)


@pytest.fixture
def fresh(daemon_factory, busybox_tar: bytes) -> Daemon:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    return d


def test_kill_9_with_runs_in_flight_leaves_nothing_half_made(fresh: Daemon) -> None:
    runs = [
        subprocess.Popen(["docker", "run", "--rm", "busybox", "sleep", "0.5"], env=fresh.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        for _ in range(10)
    ]
    time.sleep(0.3)
    ids = fresh.out("ps", "-aq", "--no-trunc").split()
    _kill9(fresh)
    for run in runs:
        run.wait(timeout=60)
    fresh.start()
    # Every one was `--rm`: whether it never started, was starting or ran to its end, it goes.
    _eventually(lambda: fresh.out("ps", "-aq") == "")
    _eventually(lambda: not _own_processes(fresh) and not _container_mounts(fresh))
    assert _cgroup_processes(ids) == []
    assert fresh.out("run", "--rm", "busybox", "echo", "still-works") == "still-works"


def test_an_exit_while_the_daemon_is_away_meets_a_stop_made_before(fresh: Daemon) -> None:
    """`docker kill -s TERM` (the stop signal) then a crash: the container ends while no daemon
    runs; its restart policy must leave it down, as after a `docker stop`."""
    cid = fresh.out("run", "-d", "--restart", "always", "busybox", "sh", "-c",
                    "trap 'exit 0' TERM; while :; do sleep 0.1; done")  # fmt: skip
    time.sleep(0.3)
    fresh.docker("kill", "-s", "TERM", cid)
    _kill9(fresh)
    time.sleep(1)
    fresh.start()
    _eventually(lambda: json.loads(fresh.out("inspect", cid))[0]["State"]["Status"] == "exited")
    time.sleep(1)  # a wrong restart would have happened by now
    state = json.loads(fresh.out("inspect", cid))[0]
    assert state["State"]["Status"] == "exited" and state["RestartCount"] == 0
    assert state["State"]["ExitCode"] == 0


def test_a_rm_container_that_exited_while_away_is_removed_and_a_running_one_adopted(fresh: Daemon) -> None:
    gone = fresh.out("run", "-d", "--rm", "busybox", "sleep", "0.5")
    kept = fresh.out("run", "-d", "busybox", "sh", "-c", "echo before; sleep 300")
    _kill9(fresh)
    time.sleep(1.5)
    fresh.start()
    _eventually(lambda: gone not in fresh.out("ps", "-aq", "--no-trunc"))
    assert json.loads(fresh.out("inspect", kept))[0]["State"]["Running"] is True
    assert fresh.out("exec", kept, "echo", "exec-works") == "exec-works"
    assert fresh.out("logs", kept) == "before"
    fresh.docker("stop", "-t", "0", kept)
    assert fresh.out("wait", kept) == "137"


def _big_archive(tmp: Path) -> bytes:
    """A docker-save archive with a 40 MB layer, made by a daemon (our own save)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("blob")
        info.size = 40 * 1024 * 1024
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))
    return layer.getvalue()


def test_kill_9_during_an_import_leaves_no_upload_or_layer_behind(fresh: Daemon, tmp_path: Path) -> None:
    layers_before = {p.name for p in (fresh.data_root / "overlay").iterdir()}
    data = _big_archive(tmp_path)
    importing = subprocess.Popen(["docker", "import", "-", "big:1"], env=fresh.env(), stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    assert importing.stdin is not None
    importing.stdin.write(data[: len(data) // 2])  # half the upload is in
    importing.stdin.flush()
    time.sleep(0.5)
    _kill9(fresh)
    importing.kill()
    importing.wait()
    fresh.start()
    assert list((fresh.data_root / "tmp").iterdir()) == []
    assert {p.name for p in (fresh.data_root / "overlay").iterdir()} == layers_before
    assert "big" not in fresh.out("images", "--format", "{{.Repository}}")


def test_after_a_reboot_every_container_has_exited_and_always_comes_back(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    always = d.out("run", "-d", "--restart", "always", "busybox", "sleep", "300")
    plain = d.out("run", "-d", "busybox", "sleep", "300")
    pids = {c: json.loads(d.out("inspect", c))[0]["State"]["Pid"] for c in (always, plain)}
    monitors = [int(p.read_text()) for p in (d.exec_root / "containers").glob("*/conmon.pid")]
    assert d.stop() == 0  # live-restore: the containers go on
    for pid in [*monitors, *pids.values()]:  # what a reboot does to them
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    with sqlite3.connect(d.data_root / "dockyard.db") as db:  # and a new boot id
        for (cid, state) in db.execute("SELECT id, state FROM containers").fetchall():
            doc = json.loads(state)
            doc["boot_id"] = "a-previous-boot"
            db.execute("UPDATE containers SET state = ? WHERE id = ?", (json.dumps(doc), cid))
    d.start()
    _eventually(lambda: json.loads(d.out("inspect", plain))[0]["State"]["Status"] == "exited")
    _eventually(lambda: json.loads(d.out("inspect", always))[0]["State"]["Running"] is True)
    assert json.loads(d.out("inspect", always))[0]["State"]["Pid"] != pids[always]


def test_without_live_restore_a_stopping_daemon_stops_its_containers(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory({"live-restore": False, "shutdown-timeout": 2})
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    cid = d.out("run", "-d", "--restart", "always", "busybox", "sleep", "300")
    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 10  # sleep ignores SIGTERM: killed after 2 s
    assert not _own_processes(d)
    d.start()  # and its restart policy brings it back
    _eventually(lambda: json.loads(d.out("inspect", cid))[0]["State"]["Running"] is True)


@pytest.fixture
def small_daemon(daemon_factory) -> Iterator[Daemon]:  # type: ignore[no-untyped-def]
    """A daemon whose data root is a 48 MiB tmpfs, to fill."""
    d: Daemon = daemon_factory(start=False)
    d.data_root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(d.data_root)], check=True)
    try:
        yield d
    finally:
        d.remove_all_containers()
        d.stop()
        subprocess.run(["umount", "-l", str(d.data_root)], check=False)


def test_a_full_disk_loses_no_state_change(small_daemon: Daemon, busybox_tar: bytes) -> None:
    d = small_daemon
    d.start()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    fill = d.docker("run", "--rm", "busybox", "dd", "if=/dev/zero", "of=/fill", "bs=1M", "count=100", check=False,
                    timeout=60)  # fmt: skip
    assert fill.returncode != 0 and b"No space left on device" in fill.stderr  # dd's own words
    assert d.out("ps", "-aq") == ""  # its exit was seen and --rm freed the space
    assert d.out("run", "--rm", "busybox", "echo", "room-again") == "room-again"
    kept = d.out("run", "-d", "busybox", "sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=100; sleep 300")
    time.sleep(1)
    d.docker("stop", "-t", "0", kept, timeout=30)  # with the disk full: still recorded
    assert json.loads(d.out("inspect", kept))[0]["State"]["Status"] == "exited"
    d.docker("rm", kept, timeout=30)
    # And the records reach the database once there is room again: a restart agrees.
    assert d.stop() == 0
    d.start()
    assert d.out("ps", "-aq") == ""


def test_an_upload_on_a_full_disk_is_a_clear_error(small_daemon: Daemon, busybox_tar: bytes) -> None:
    d = small_daemon
    d.start()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 60 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    result = d.docker("load", input=layer.getvalue(), check=False, timeout=60)
    assert result.returncode != 0
    assert "no space left on device" in result.stderr.decode().lower()
    assert list((d.data_root / "tmp").iterdir()) == []
    assert d.out("run", "--rm", "busybox", "echo", "fine") == "fine"


def test_fifty_running_containers_survive_kill_9_and_work(fresh: Daemon) -> None:
    ids = [fresh.out("run", "-d", "busybox", "sh", "-c", f"echo hello-{i}; trap 'exit 3' TERM; while :; do sleep 0.1; done")
           for i in range(50)]  # fmt: skip
    _kill9(fresh)
    fresh.start()
    running = fresh.out("ps", "-q", "--no-trunc").split()
    assert sorted(running) == sorted(ids)  # all 50 adopted
    assert fresh.out("logs", ids[7]) == "hello-7"
    # Their 50 log shippers share one inotify instance (root may have only 128 in all).
    assert _inotify_instances(int(fresh.pidfile.read_text())) == 1
    assert fresh.out("exec", ids[8], "echo", "exec-ok") == "exec-ok"
    assert json.loads(fresh.out("stats", "--no-stream", "--format", "{{json .}}", ids[9]))["ID"] == ids[9][:12]
    attach = subprocess.Popen(["docker", "attach", "--no-stdin", ids[10]], env=fresh.env(), stdout=subprocess.PIPE)
    time.sleep(0.3)
    fresh.docker("stop", *ids, timeout=120)
    assert attach.wait(timeout=30) == 3  # attach followed it to its end
    codes = {json.loads(fresh.out("inspect", c))[0]["State"]["ExitCode"] for c in ids}
    assert codes == {3}


def _inotify_instances(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:inotify"
        except OSError:
            pass  # closed meanwhile
    return count


def test_a_removal_cut_short_is_finished_at_start(fresh: Daemon) -> None:
    cid = fresh.out("create", "busybox", "true")
    assert fresh.stop() == 0
    with sqlite3.connect(fresh.data_root / "dockyard.db") as db:  # as a crash in the middle of `docker rm` leaves it
        (state,) = db.execute("SELECT state FROM containers WHERE id = ?", (cid,)).fetchone()
        doc = json.loads(state)
        doc["status"] = "removing"
        db.execute("UPDATE containers SET state = ? WHERE id = ?", (json.dumps(doc), cid))
    fresh.start()
    _eventually(lambda: fresh.out("ps", "-aq") == "")
    assert not (fresh.data_root / "containers" / cid).exists()
