"""The monitor's protocol edges, for each monitor installed here (dockyard-monitor, conmon),
with runc and a real container, no daemon: what the daemon relies on beyond the plain run
(test_runtime.py): detaching, attach clients and stdin, signals, the exit and OOM files, the
tty and its resize, the log's format and rotation, and dockyard-monitor's own argv checks."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.config import MonitorChoice
from dockyard.errors import DockyardError
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import monitor as monitors
from dockyard.runtime.attach import AttachConnection, Pipe
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import Resources, SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar

PARENT = "dockyard-test-monitor"
OWN = monitors.choose_monitor(MonitorChoice.AUTO)


def _installed() -> list[monitors.Monitor]:
    found = [monitors.CONMON_MONITOR] if os.access(monitors.CONMON_MONITOR.path, os.X_OK) else []
    return found + ([OWN] if OWN.kind is monitors.MonitorKind.DOCKYARD else [])


class Lab:
    def __init__(self, base: Path, monitor: monitors.Monitor) -> None:
        self.base = base
        self.monitor = monitor
        self.runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(base / "runc"))
        self.dirs = LayerDirs(base / "overlay")
        self.image = self.dirs.new_cache_id()
        self.dirs.extract(self.image, io.BytesIO(busybox_rootfs_tar()))
        self.made: list[str] = []
        self.handles: list[ProcessHandle] = []

    async def create(self, cid: str, *args: str, tty: bool = False, stdin: bool = False, stdin_once: bool = True,
                     log_size_max: int = 0, resources: Resources | None = None) -> tuple[monitors.MonitorRequest, monitors.Created]:  # fmt: skip
        rw = self.dirs.new_cache_id()
        self.dirs.create_rw(rw)
        rootfs = self.dirs.mount(rw, [self.image])
        bundle = self.base / "bundles" / cid
        bundle.mkdir(parents=True)
        spec = build_spec(SpecInput(rootfs=str(rootfs), args=args, env=("PATH=/bin",), cwd="/", hostname=cid[:12],
                                    cgroups_path=f"/{PARENT}/{cid}", tty=tty, resources=resources or Resources()))  # fmt: skip
        (bundle / "config.json").write_text(json.dumps(spec))
        req = monitors.MonitorRequest(
            container_id=cid, name=cid, runtime_path=self.runtime.path, runtime_args=self.runtime.global_args,
            bundle=bundle, log_path=bundle / "ctr.log", exit_dir=self.base / "exits", persist_dir=bundle / "persist",
            tty=tty, stdin=stdin, stdin_once=stdin_once, log_size_max=log_size_max, monitor=self.monitor,
        )  # fmt: skip
        self.made.append(cid)
        created = await monitors.create(req)
        self.handles.append(ProcessHandle(created.monitor_pid))
        return req, created

    async def ended(self, req: monitors.MonitorRequest, created: monitors.Created) -> int | None:
        await asyncio.wait_for(ProcessHandle(created.monitor_pid).wait(), 20)
        return monitors.read_exit_code(req.exit_dir, req.container_id)


@pytest.fixture(params=_installed(), ids=lambda m: m.kind.value)
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    made = Lab(tmp_path, request.param)
    try:
        yield made
    finally:
        for handle in made.handles:
            handle.send(9)
            handle.close()
        for cid in made.made:
            subprocess.run([made.runtime.path, *made.runtime.global_args, "delete", "-f", cid], check=False, capture_output=True)
        for entry in (tmp_path / "overlay").iterdir():
            if (entry / "merged").exists():
                made.dirs.unmount(entry.name)
        for parent in Path("/sys/fs/cgroup").glob(f"*/{PARENT}"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


async def _output(conn: AttachConnection) -> bytes:
    out = b""
    while (packet := await asyncio.wait_for(conn.receive(), 20)) is not None:
        out += packet[1]
    conn.close()
    return out


def test_the_monitor_is_detached_in_a_session_of_its_own(lab: Lab) -> None:
    async def scenario() -> None:
        req, created = await lab.create("m-detach", "sleep", "300")
        assert int((req.bundle / monitors.PID_FILE).read_text()) == created.monitor_pid
        assert os.getsid(created.monitor_pid) == created.monitor_pid  # not in the daemon's session
        stat = Path(f"/proc/{created.monitor_pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) != os.getpid()  # its parent exited: it is nobody's child of ours
        argv = Path(f"/proc/{created.monitor_pid}/cmdline").read_bytes().split(b"\0")
        assert monitors.is_monitor_argv(argv, req.container_id)
        assert not monitors.is_monitor_argv(argv, "other")
        # fds 0-2 are /dev/null: the daemon's pipes are not held
        assert all(os.readlink(f"/proc/{created.monitor_pid}/fd/{fd}") == "/dev/null" for fd in (0, 1, 2))
        await lab.runtime.start(req.container_id)
        assert ProcessHandle(created.pid).send(9)
        assert await lab.ended(req, created) == 137

    asyncio.run(scenario())


def test_every_attach_client_gets_the_output_and_the_exit_file_is_whole(lab: Lab) -> None:
    async def scenario() -> None:
        req, created = await lab.create("m-clients", "sh", "-c", "read x; echo got $x; echo oops >&2; exit 7", stdin=True)
        first = await AttachConnection.connect(req.bundle / "attach")
        second = await AttachConnection.connect(req.bundle / "attach")
        await lab.runtime.start(req.container_id)
        await first.send(b"line\n")
        packets = []
        while (packet := await asyncio.wait_for(first.receive(), 20)) is not None:
            packets.append(packet)
        first.close()
        assert (Pipe.STDOUT, b"got line\n") in packets and (Pipe.STDERR, b"oops\n") in packets
        assert b"got line\n" in await _output(second)
        assert await lab.ended(req, created) == 7
        assert sorted(p.name for p in req.exit_dir.iterdir()) == [req.container_id]  # no temporary left

    asyncio.run(scenario())


def test_stdin_once_ends_with_the_first_client_and_open_stdin_outlives_it(lab: Lab) -> None:
    async def scenario() -> None:
        once, once_created = await lab.create("m-once", "cat", stdin=True, stdin_once=True)
        kept, kept_created = await lab.create("m-kept", "cat", stdin=True, stdin_once=False)
        for req in (once, kept):
            await lab.runtime.start(req.container_id)
        for req in (once, kept):
            conn = await AttachConnection.connect(req.bundle / "attach")
            await conn.send(b"one\n")
            conn.close_stdin()
            assert await asyncio.wait_for(conn.receive(), 20) == (Pipe.STDOUT, b"one\n")
            conn.close()
        assert await lab.ended(once, once_created) == 0  # cat read EOF
        conn = await AttachConnection.connect(kept.bundle / "attach")  # stdin still open: cat is there
        await conn.send(b"two\n")
        assert await asyncio.wait_for(conn.receive(), 20) == (Pipe.STDOUT, b"two\n")
        conn.close()
        assert ProcessHandle(kept_created.pid).send(9)
        assert await lab.ended(kept, kept_created) == 137

    asyncio.run(scenario())


def test_sigterm_to_the_monitor_reaches_the_container(lab: Lab) -> None:
    async def scenario() -> None:
        req, created = await lab.create("m-term", "sh", "-c", "trap 'echo bye; exit 42' TERM; echo ready; while :; do sleep 0.1; done")
        conn = await AttachConnection.connect(req.bundle / "attach")
        await lab.runtime.start(req.container_id)
        assert await asyncio.wait_for(conn.receive(), 20) == (Pipe.STDOUT, b"ready\n")  # the trap is set
        os.kill(created.monitor_pid, 15)
        assert await _output(conn) == b"bye\n"
        assert await lab.ended(req, created) == 42  # the container's own exit, not the monitor's death

    asyncio.run(scenario())


def test_oom_kill_leaves_the_marker_and_a_plain_137_does_not(lab: Lab) -> None:
    async def scenario() -> None:
        limit = Resources(memory=8 << 20)
        req, created = await lab.create("m-oom", "tail", "/dev/zero", resources=limit)
        plain, plain_created = await lab.create("m-nooom", "sh", "-c", "exit 137", resources=limit)
        for r in (req, plain):
            await lab.runtime.start(r.container_id)
        assert await lab.ended(req, created) == 137
        assert monitors.oom_killed(req.persist_dir)
        assert await lab.ended(plain, plain_created) == 137
        assert not monitors.oom_killed(plain.persist_dir)

    asyncio.run(scenario())


def test_tty_output_and_resize_through_ctl(lab: Lab) -> None:
    async def scenario() -> None:
        consoles = set(Path("/tmp").glob("dockyard-console.*"))
        req, created = await lab.create("m-tty", "sh", "-c", "read x; stty size", tty=True, stdin=True)
        conn = await AttachConnection.connect(req.bundle / "attach")
        monitors.resize(req.bundle, 33, 111)
        await lab.runtime.start(req.container_id)
        await conn.send(b"go\n")
        out = await _output(conn)
        assert b"33 111\r\n" in out  # ONLCR: the tty's newlines come as \r\n
        assert await lab.ended(req, created) == 0
        assert set(Path("/tmp").glob("dockyard-console.*")) <= consoles  # its console socket is gone

    asyncio.run(scenario())


def test_log_lines_and_rotation_at_the_size_limit(lab: Lab) -> None:
    async def scenario() -> None:
        limit = 4096
        req, created = await lab.create("m-log", "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done; printf tail",
                                        log_size_max=limit)  # fmt: skip
        assert req.log_path is not None
        first = os.open(req.log_path, os.O_RDONLY)  # the monitor made it: held across the renames
        try:
            await lab.runtime.start(req.container_id)
            assert await lab.ended(req, created) == 0
            old = os.pread(first, 1 << 20, 0).decode()
            assert os.fstat(first).st_ino != os.stat(req.log_path).st_ino  # a new file took its name
        finally:
            os.close(first)
        assert old.splitlines()[0].endswith(" stdout F line0") and len(old.encode()) <= limit
        text = req.log_path.read_text()
        assert len(text.encode()) <= limit
        lines = text.splitlines()
        for line in lines:
            stamp, stream, tag, _ = line.split(" ", 3)
            assert len(stamp) == 35 and stamp[10] == "T" and stamp[-6] in "+-"  # RFC 3339, nanoseconds, offset
            assert stream == "stdout" and tag in ("F", "P")
        assert lines[-2].endswith(" stdout F line299")
        assert lines[-1].endswith(" stdout P tail")  # the last, without a newline: partial
        assert not req.log_path.with_name("ctr.log.tmp").exists()

    asyncio.run(scenario())


def test_create_failure_is_reported_and_nothing_waits(lab: Lab) -> None:
    async def scenario() -> None:
        with pytest.raises(DockyardError) as info:
            await lab.create("m-fail", "/no/such/binary")
        assert "no such file or directory" in str(info.value)

    asyncio.run(scenario())


@pytest.mark.skipif(OWN.kind is not monitors.MonitorKind.DOCKYARD, reason="dockyard-monitor is not installed")
def test_own_monitor_refuses_bad_arguments_and_says_its_version() -> None:
    for argv in ([], ["--id", "x"], ["--bogus"], ["--id", "a/b", "--runtime", "r", "--dir", "d", "--pid-file", "p",
                                                   "--monitor-pid-file", "m", "--exit-dir", "e", "--bundle", "b"]):  # fmt: skip
        done = subprocess.run([OWN.path, *argv], capture_output=True, timeout=10, check=False)
        assert done.returncode == 125 and done.stderr.startswith(b"dockyard-monitor: ")
    done = subprocess.run([OWN.path, "--version"], capture_output=True, timeout=10, check=True)
    assert done.stdout.startswith(b"dockyard-monitor version ") and done.stdout.split()[2][:1].isdigit()
