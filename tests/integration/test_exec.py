"""Exec sessions for real: the monitor (dockyard-monitor or conmon --exec) + runc exec in a
running runc container, no daemon."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.errors import CommandNotRunnable, RuntimeFailed
from dockyard.linux.capabilities import bounding_set, capabilities_in_mask
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import monitor as monitors
from dockyard.runtime.attach import Pipe
from dockyard.runtime.execsession import ExecProcess, ExecRequest, start_exec
from dockyard.runtime.execspec import ExecSpec
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import DEFAULT_CAPS, SpecInput, build_spec
from dockyard.runtime.users import resolve_in_rootfs
from tests.conftest import MONITOR_NAMES, busybox_rootfs_tar, monitor_under_test

CGROUP_PARENT = "dockyard-test-exec"


@dataclass
class Box:
    """One running container to exec in."""

    cid: str
    bundle: Path
    rootfs: Path
    runtime: OciRuntime
    monitor: ProcessHandle

    def request(self, *args: str, stdin: bool = False, attach: bool = True, **spec: object) -> ExecRequest:
        exec_id = uuid.uuid4().hex
        return ExecRequest(
            container_id=self.cid, exec_id=exec_id, bundle=self.bundle,
            directory=self.bundle / "exec" / exec_id, runtime_path=self.runtime.path,
            runtime_args=self.runtime.global_args,
            spec=ExecSpec(args=args, container_env=("FOO=bar", "KEEP=1"), hostname="boxhost", **spec),  # type: ignore[arg-type]
            stdin=stdin, attach=attach, monitor=monitor_under_test(),
        )  # fmt: skip


def _monitors_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(MONITOR_NAMES) and any(text.encode() in a for a in argv):
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    base = tmp_path_factory.mktemp("exec")
    rootfs = base / "rootfs"
    rootfs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(rootfs, filter="tar")
    cid = "exec-box-" + uuid.uuid4().hex[:8]
    bundle = base / "bundle"
    bundle.mkdir()
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(base / "runc"))
    spec = build_spec(SpecInput(rootfs=str(rootfs), args=("sleep", "100000"), env=("FOO=bar", "KEEP=1"), cwd="/home",
                                hostname="boxhost", cgroups_path=f"/{CGROUP_PARENT}/{cid}"))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = monitors.MonitorRequest(
        container_id=cid, name=cid, runtime_path=runtime.path, runtime_args=runtime.global_args,
        bundle=bundle, log_path=bundle / "ctr.log", exit_dir=base / "exits", persist_dir=bundle / "persist",
        tty=False, stdin=False, stdin_once=True, monitor=monitor_under_test(),
    )  # fmt: skip
    monitor: ProcessHandle | None = None
    try:
        created = asyncio.run(monitors.create(req))
        monitor = ProcessHandle(created.monitor_pid)
        asyncio.run(runtime.start(cid))
        yield Box(cid, bundle, rootfs, runtime, monitor)
    finally:
        subprocess.run([runtime.path, "--root", runtime.root, "kill", "--all", cid, "9"], check=False, capture_output=True)
        for pid in _monitors_mentioning(str(base)):
            os.kill(pid, signal.SIGKILL)
        if monitor is not None:
            asyncio.run(asyncio.wait_for(monitor.wait(), 10))
            monitor.close()
        subprocess.run([runtime.path, "--root", runtime.root, "delete", "-f", cid], check=False, capture_output=True)
        for parent in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()
        shutil.rmtree(base, ignore_errors=True)


async def _collect(proc: ExecProcess) -> list[tuple[Pipe, bytes]]:
    assert proc.attach is not None
    packets = []
    while (packet := await proc.attach.receive()) is not None:
        packets.append(packet)
    return packets


def _stream(packets: list[tuple[Pipe, bytes]], pipe: Pipe = Pipe.STDOUT) -> bytes:
    return b"".join(data for p, data in packets if p == pipe)


async def _run(req: ExecRequest, stdin: bytes | None = None) -> tuple[int | None, list[tuple[Pipe, bytes]]]:
    proc = await start_exec(req)
    try:
        if stdin is not None:
            assert proc.attach is not None
            await proc.attach.send(stdin)
            proc.attach.close_stdin()
        packets = await asyncio.wait_for(_collect(proc), 20)
        code = await asyncio.wait_for(proc.wait(), 20)
    finally:
        proc.close()
    assert not req.directory.exists()
    return code, packets


def test_echo_output_comes_through_the_attach_socket(box: Box) -> None:
    code, packets = asyncio.run(_run(box.request("echo", "hi")))
    assert code == 0 and packets == [(Pipe.STDOUT, b"hi\n")]


def test_exit_code_and_both_streams(box: Box) -> None:
    code, packets = asyncio.run(_run(box.request("sh", "-c", "echo out; echo err >&2; exit 3")))
    assert code == 3
    assert _stream(packets) == b"out\n" and _stream(packets, Pipe.STDERR) == b"err\n"


def test_killed_by_a_signal_is_128_plus_signal(box: Box) -> None:
    code, _ = asyncio.run(_run(box.request("sh", "-c", "kill -9 $$")))
    assert code == 137


def test_no_output_is_lost_at_the_start(box: Box) -> None:
    code, packets = asyncio.run(_run(box.request("seq", "1", "20000")))
    assert code == 0
    assert _stream(packets) == b"".join(b"%d\n" % i for i in range(1, 20001))


def test_stdin_piped_to_cat(box: Box) -> None:
    data = b"piped-data\n" * 3000  # several attach packets
    code, packets = asyncio.run(_run(box.request("cat", stdin=True), stdin=data))
    assert code == 0 and _stream(packets) == data


def test_without_stdin_the_process_reads_eof(box: Box) -> None:
    code, packets = asyncio.run(_run(box.request("sh", "-c", "cat; echo done")))
    assert code == 0 and _stream(packets) == b"done\n"


def test_tty_exec_has_a_pty_and_its_console_size(box: Box) -> None:
    code, packets = asyncio.run(_run(box.request("sh", "-c", "tty; stty size", tty=True, console_size=(30, 100))))
    assert code == 0
    lines = _stream(packets).decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "30 100"
    assert all(p == Pipe.STDOUT for p, _ in packets)  # a tty has one stream


def test_resize_through_the_ctl_fifo_changes_the_size(box: Box) -> None:
    async def scenario() -> None:
        req = box.request("sh", "-c", "while read x; do stty size; done", stdin=True, tty=True, console_size=(30, 100))
        proc = await start_exec(req)
        try:
            assert proc.attach is not None
            proc.resize(40, 120)
            seen = b""
            deadline = time.monotonic() + 10
            # The resize and our newline travel by different fds: ask until the new size shows.
            while b"40 120" not in seen and time.monotonic() < deadline:
                await proc.attach.send(b"\n")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        while b"40 120" not in seen and (packet := await proc.attach.receive()) is not None:
                            seen += packet[1]
            assert b"40 120" in seen
            await proc.attach.send(b"\x04")  # ^D: read fails, the loop ends
            await asyncio.wait_for(_collect(proc), 10)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            proc.close()

    asyncio.run(scenario())


def test_tty_exec_survives_its_client_leaving(box: Box) -> None:
    async def scenario() -> None:
        proc = await start_exec(box.request("cat", stdin=True, tty=True))
        try:
            assert proc.attach is not None
            proc.attach.close()  # as after the detach keys: the session leaves, the process stays
            await asyncio.sleep(0.3)
            assert Path(f"/proc/{proc.pid}").exists() and not proc.exit_file.exists()
            os.kill(proc.pid, signal.SIGKILL)
            assert await asyncio.wait_for(proc.wait(), 10) == 137
        finally:
            proc.close()

    asyncio.run(scenario())


def test_pipe_stdin_ends_with_the_client(box: Box) -> None:
    async def scenario() -> None:
        proc = await start_exec(box.request("cat", stdin=True))
        try:
            assert proc.attach is not None
            proc.attach.close()
            assert await asyncio.wait_for(proc.wait(), 10) == 0  # cat saw EOF
        finally:
            proc.close()

    asyncio.run(scenario())


def test_user_resolved_in_the_rootfs(box: Box) -> None:
    nobody = resolve_in_rootfs(box.rootfs, "nobody")
    code, packets = asyncio.run(_run(box.request("sh", "-c", "id -u; id -g", user=nobody)))
    assert code == 0 and _stream(packets) == b"65534\n65534\n"
    code, packets = asyncio.run(_run(box.request("id", "-u")))
    assert _stream(packets) == b"0\n"  # no user: the container's


def test_working_directory(box: Box) -> None:
    _, packets = asyncio.run(_run(box.request("pwd", cwd="/tmp")))
    assert _stream(packets) == b"/tmp\n"
    _, packets = asyncio.run(_run(box.request("pwd")))
    assert _stream(packets) == b"/home\n"  # the container's WorkingDir


def test_env_is_the_containers_with_the_execs_on_top(box: Box) -> None:
    _, packets = asyncio.run(_run(box.request("env", env=("FOO=override", "BAR=baz", "KEEP"))))
    env = set(_stream(packets).decode().splitlines())
    assert {"FOO=override", "BAR=baz", "HOSTNAME=boxhost"} <= env
    assert not any(e.startswith(("KEEP=", "TERM=")) for e in env)
    assert any(e.startswith("PATH=/usr/local/sbin:") for e in env)
    _, packets = asyncio.run(_run(box.request("env", tty=True)))
    assert "TERM=xterm" in _stream(packets).decode().split("\r\n")


def test_capabilities_default_and_privileged(box: Box) -> None:
    def effective(packets: list[tuple[Pipe, bytes]]) -> frozenset[str]:
        line = next(x for x in _stream(packets).decode().splitlines() if x.startswith("CapEff:"))
        return capabilities_in_mask(int(line.split()[1], 16))

    _, packets = asyncio.run(_run(box.request("grep", "CapEff", "/proc/self/status")))
    assert effective(packets) == frozenset(DEFAULT_CAPS)
    code, packets = asyncio.run(_run(box.request("grep", "CapEff", "/proc/self/status", privileged=True)))
    assert code == 0 and effective(packets) == bounding_set()


def test_missing_binary_is_a_typed_127_and_leaves_nothing(box: Box) -> None:
    req = box.request("nosuch")
    with pytest.raises(CommandNotRunnable) as info:
        asyncio.run(start_exec(req))
    assert info.value.exit_code == 127
    assert info.value.message == (
        'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": '
        "executable file not found in $PATH: unknown"
    )
    assert not req.directory.exists()
    assert _monitors_mentioning(req.exec_id) == []


def test_not_executable_is_126(box: Box) -> None:
    with pytest.raises(CommandNotRunnable) as info:
        asyncio.run(start_exec(box.request("/etc/passwd")))
    assert info.value.exit_code == 126 and "permission denied" in info.value.message


def test_bad_working_directory_is_typed(box: Box) -> None:
    with pytest.raises(CommandNotRunnable) as info:
        asyncio.run(start_exec(box.request("true", cwd="/no/such/dir")))
    assert info.value.exit_code == 127 and "no such file or directory" in info.value.message


def test_exec_in_a_paused_container_fails_at_the_runtime(box: Box) -> None:
    async def scenario() -> None:
        await box.runtime.pause(box.cid)
        try:
            # The engine refuses before this (409); the runtime's own answer must still be typed.
            with pytest.raises(RuntimeFailed) as info:
                await asyncio.wait_for(start_exec(box.request("true")), 20)
            assert info.value.exit_code == 128 and "cannot exec in a paused container" in info.value.message
        finally:
            await box.runtime.resume(box.cid)

    asyncio.run(scenario())


def test_detached_exec_runs_and_its_exit_is_awaitable(box: Box) -> None:
    async def scenario() -> None:
        req = box.request("sh", "-c", "sleep 1; exit 5", attach=False)
        proc = await start_exec(req)
        try:
            assert proc.attach is None
            assert proc.pid > 0 and proc.monitor_pid > 0 and proc.pid != proc.monitor_pid
            assert Path(f"/proc/{proc.pid}").exists()  # running, not waited for
            assert not proc.exit_file.exists()
            assert await asyncio.wait_for(proc.wait(), 20) == 5
            assert proc.exit_file.read_text() == "5"
        finally:
            proc.close()
        assert not req.directory.exists()

    asyncio.run(scenario())


@pytest.mark.parametrize("delay_ms", [x * 1.25 for x in range(16)])
def test_cancelled_start_leaves_no_process(box: Box, delay_ms: float) -> None:
    async def scenario() -> None:
        req = box.request("sleep", "300", attach=False)
        task = asyncio.create_task(start_exec(req))
        await asyncio.sleep(delay_ms / 1000)  # somewhere in the handshake or runc exec
        task.cancel()
        try:
            proc = await task
        except asyncio.CancelledError:
            pass
        else:  # it won the race and started: end it as the engine would
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
            proc.close()
        top = await asyncio.create_subprocess_exec(box.runtime.path, "--root", box.runtime.root, "ps", box.cid,
                                                   stdout=asyncio.subprocess.PIPE)  # fmt: skip
        listing, _ = await top.communicate()
        assert b"sleep 300" not in listing
        assert _monitors_mentioning(req.exec_id) == []
        assert not req.directory.exists()

    asyncio.run(scenario())
