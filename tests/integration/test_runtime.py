"""conmon + runc/crun + overlayfs for real, without the daemon: the runtime adapters on their own.

Each test runs once per runtime that works on this host, launched as the daemon would launch
it (runtime/catalog.py: crun through dockyard-nounified on a hybrid cgroup host)."""

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

from dockyard.config import RuntimeOption, RuntimeOrigin
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import monitor as monitors
from dockyard.runtime.attach import AttachConnection, Pipe
from dockyard.runtime.catalog import plan_runtimes, probe_host
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar, monitor_under_test


def host_runtime(name: str, root: Path) -> OciRuntime:
    """`name` as the daemon would run it here; the test is skipped where it cannot work."""
    option = RuntimeOption(name, shutil.which(name) or f"/usr/bin/{name}", origin=RuntimeOrigin.BUILTIN)
    options = {name: option}
    plan = plan_runtimes(options, None, probe_host(options))
    if name not in plan.runtimes or name in plan.problems:
        pytest.skip(f"{name} cannot work on this host: {plan.problems.get(name)}")
    resolved = plan.runtimes[name]
    return OciRuntime(name, resolved.path, str(root / name), resolved.args, resolved.launcher)


@pytest.fixture(params=["runc", "crun"])
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    runtime = host_runtime(request.param, tmp_path)
    dirs = LayerDirs(tmp_path / "overlay")
    image_layer = dirs.new_cache_id()
    dirs.extract(image_layer, io.BytesIO(busybox_rootfs_tar()))
    made: list[str] = []
    state = {"dirs": dirs, "image": image_layer, "runtime": runtime, "tmp": tmp_path, "made": made}
    try:
        yield state
    finally:
        for cid in made:
            subprocess.run([runtime.executable, *runtime.global_args, "delete", "-f", cid], check=False, capture_output=True)
        for entry in (tmp_path / "overlay").iterdir():
            if (entry / "merged").exists():
                dirs.unmount(entry.name)
        for parent in Path("/sys/fs/cgroup").glob("*/dockyard-test"):
            parent.rmdir()


async def _create(lab: dict[str, object], cid: str, args: tuple[str, ...], *, stdin: bool = False, tty: bool = False) -> tuple[monitors.MonitorRequest, monitors.Created]:
    dirs: LayerDirs = lab["dirs"]  # type: ignore[assignment]
    tmp: Path = lab["tmp"]  # type: ignore[assignment]
    runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
    rw = dirs.new_cache_id()
    dirs.create_rw(rw)
    rootfs = dirs.mount(rw, [lab["image"]])  # type: ignore[list-item]
    bundle = tmp / "bundles" / cid
    bundle.mkdir(parents=True)
    spec = build_spec(SpecInput(rootfs=str(rootfs), args=args, env=(), cwd="/", hostname=cid[:12],
                                cgroups_path=f"/dockyard-test/{cid}", tty=tty))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = monitors.MonitorRequest(
        container_id=cid, name=cid, runtime_path=runtime.executable, runtime_args=runtime.global_args,
        bundle=bundle, log_path=bundle / "ctr.log", exit_dir=tmp / "exits", persist_dir=bundle / "persist",
        tty=tty, stdin=stdin, stdin_once=True, monitor=monitor_under_test(),
    )  # fmt: skip
    lab["made"].append(cid)  # type: ignore[attr-defined]
    return req, await monitors.create(req)


def test_output_exit_code_and_log(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _create(lab, "it-exit", ("sh", "-c", "echo out; echo err >&2; exit 3"))
        assert created.pid > 0 and created.monitor_pid > 0
        conn = await AttachConnection.connect(req.bundle / "attach")
        monitor = ProcessHandle(created.monitor_pid)
        await runtime.start(req.container_id)
        packets = []
        while (packet := await conn.receive()) is not None:
            packets.append(packet)
        conn.close()
        await asyncio.wait_for(monitor.wait(), 10)
        assert (Pipe.STDOUT, b"out\n") in packets and (Pipe.STDERR, b"err\n") in packets
        assert monitors.read_exit_code(req.exit_dir, req.container_id) == 3
        # conmon's k8s-file spool: `<time> <stream> <F|P> <text>` per line
        lines = sorted(line.split(" ", 1)[1] for line in req.log_path.read_text().splitlines())
        assert lines == ["stderr F err", "stdout F out"]

    asyncio.run(scenario())


def test_stdin_written_before_start_is_read(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _create(lab, "it-stdin", ("cat",), stdin=True)
        conn = await AttachConnection.connect(req.bundle / "attach")
        await conn.send(b"early bytes\n" * 5000)  # more than one packet
        conn.close_stdin()
        await runtime.start(req.container_id)
        out = b""
        while (packet := await conn.receive()) is not None:
            out += packet[1]
        conn.close()
        assert out == b"early bytes\n" * 5000

    asyncio.run(scenario())


def test_kill_gives_137_and_pidfd_sees_the_monitor_exit(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _create(lab, "it-kill", ("sleep", "300"))
        await runtime.start(req.container_id)
        process = ProcessHandle(created.pid)
        monitor = ProcessHandle(created.monitor_pid)
        assert process.send(9)
        await asyncio.wait_for(monitor.wait(), 10)
        assert monitors.read_exit_code(req.exit_dir, req.container_id) == 137
        await runtime.delete(req.container_id, force=True)
        assert not process.send(0)

    asyncio.run(scenario())


def test_create_failure_reports_the_runtime_error(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        with pytest.raises(Exception) as info:
            await _create(lab, "it-missing", ("/no/such/binary",))
        assert "no such file or directory" in str(info.value)  # lowercase, as the docker CLI looks for it

    asyncio.run(scenario())


def test_overlay_rootfs_writes_stay_in_the_upper_layer(lab: dict[str, object]) -> None:
    dirs: LayerDirs = lab["dirs"]  # type: ignore[assignment]
    rw = dirs.new_cache_id()
    dirs.create_rw(rw)
    merged = dirs.mount(rw, [lab["image"]])  # type: ignore[list-item]
    try:
        assert (merged / "bin" / "busybox").exists()
        (merged / "new-file").write_text("x")
        os.unlink(merged / "etc" / "group")
        assert (dirs.diff(rw) / "new-file").read_text() == "x"
        assert not (dirs.diff(lab["image"]) / "new-file").exists()  # type: ignore[arg-type]
        assert (dirs.diff(lab["image"]) / "etc" / "group").exists()  # type: ignore[arg-type]
        assert os.stat(dirs.diff(rw) / "etc" / "group").st_rdev == 0  # an overlay whiteout
    finally:
        dirs.unmount(rw)
    assert not os.path.ismount(merged)
    dirs.remove(rw)
    assert not (dirs.root / rw).exists()


def _state(runtime: OciRuntime, cid: str) -> str:
    """What the runtime itself says of the container (through its launcher, as the daemon)."""
    argv = [runtime.executable, *runtime.global_args, "state", cid]
    done = subprocess.run(argv, check=False, capture_output=True, timeout=30)
    return str(json.loads(done.stdout)["status"]) if done.returncode == 0 else "gone"


def test_start_without_the_runtime_leaves_it_agreeing(lab: dict[str, object]) -> None:
    # start() releases the init through exec.fifo itself (runc's and crun's sides differ).
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _create(lab, "it-fifo", ("sleep", "300"))
        fifo = Path(runtime.root) / req.container_id / "exec.fifo"
        assert fifo.exists() and _state(runtime, req.container_id) == "created"
        await runtime.start(req.container_id)
        assert not fifo.exists()
        assert _state(runtime, req.container_id) == "running"
        assert Path(f"/proc/{created.pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        assert ProcessHandle(created.pid).send(9)
        await asyncio.wait_for(ProcessHandle(created.monitor_pid).wait(), 10)
        assert _state(runtime, req.container_id) == "stopped"

    asyncio.run(scenario())


def test_pause_resume_update_and_delete(lab: dict[str, object]) -> None:
    from dockyard.errors import Conflict, NotFound
    from dockyard.runtime.spec import Resources

    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _create(lab, "it-pause", ("sleep", "300"))
        cid = req.container_id
        await runtime.start(cid)
        await runtime.pause(cid)
        assert _state(runtime, cid) == "paused"
        assert Path(f"/sys/fs/cgroup/freezer/dockyard-test/{cid}/freezer.state").read_text().strip() == "FROZEN"
        await runtime.resume(cid)
        assert _state(runtime, cid) == "running"
        # The v1 cgroups are the ones the spec names, for crun as for runc (stats read them).
        await runtime.update(cid, Resources(memory=64 << 20, pids_limit=50, cpu_shares=512))
        memory = Path(f"/sys/fs/cgroup/memory/dockyard-test/{cid}")
        assert int((memory / "memory.limit_in_bytes").read_text()) == 64 << 20
        assert (Path(f"/sys/fs/cgroup/pids/dockyard-test/{cid}") / "pids.max").read_text().strip() == "50"
        assert (Path(f"/sys/fs/cgroup/cpu/dockyard-test/{cid}") / "cpu.shares").read_text().strip() == "512"
        assert str(created.pid) in (memory / "cgroup.procs").read_text().split()
        # Lifting the pids limit (crun 1.8 cannot say "max" to cgroup v1 itself).
        await runtime.update(cid, Resources(memory=64 << 20, cpu_shares=512))
        assert (Path(f"/sys/fs/cgroup/pids/dockyard-test/{cid}") / "pids.max").read_text().strip() == "max"
        assert int((memory / "memory.limit_in_bytes").read_text()) == 64 << 20
        assert ProcessHandle(created.pid).send(9)
        await asyncio.wait_for(ProcessHandle(created.monitor_pid).wait(), 10)
        with pytest.raises(Conflict):
            await runtime.pause(cid)
        await runtime.delete(cid, force=True)
        assert not runtime.has_state(cid) and not memory.exists()
        with pytest.raises(NotFound):
            await runtime.pause(cid)
        await runtime.delete(cid, force=True)  # already gone: nothing to do

    asyncio.run(scenario())


def test_a_launched_runtime_runs_from_a_read_only_mount(lab: dict[str, object]) -> None:
    # dockyard-nounified executes crun from a read-only bind of itself, so crun does not copy
    # itself into a memfd (CVE-2019-5736) on each call: the container's init, still in crun's
    # code before start, has a read-only executable; writing it fails.
    runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
    if not runtime.launcher:
        pytest.skip(f"{runtime.name} runs without the helper here")

    async def scenario() -> None:
        req, created = await _create(lab, "it-ro", ("true",))
        exe = f"/proc/{created.pid}/exe"
        assert os.statvfs(exe).f_flag & os.ST_RDONLY
        assert os.path.samefile(exe, runtime.path)
        with pytest.raises(OSError):
            os.open(exe, os.O_WRONLY)
        await runtime.start(req.container_id)
        await asyncio.wait_for(ProcessHandle(created.monitor_pid).wait(), 10)
        assert monitors.read_exit_code(req.exit_dir, req.container_id) == 0

    asyncio.run(scenario())
