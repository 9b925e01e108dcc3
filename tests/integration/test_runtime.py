"""conmon + runc + overlayfs for real, without the daemon: the runtime adapters on their own."""

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

from dockyard.layers.overlay import LayerDirs
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import conmon
from dockyard.runtime.attach import AttachConnection, Pipe
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, object]]:
    dirs = LayerDirs(tmp_path / "overlay")
    image_layer = dirs.new_cache_id()
    dirs.extract(image_layer, io.BytesIO(busybox_rootfs_tar()))
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(tmp_path / "runc"))
    made: list[str] = []
    state = {"dirs": dirs, "image": image_layer, "runtime": runtime, "tmp": tmp_path, "made": made}
    try:
        yield state
    finally:
        for cid in made:
            subprocess.run([runtime.path, "--root", runtime.root, "delete", "-f", cid], capture_output=True)
        for entry in (tmp_path / "overlay").iterdir():
            if (entry / "merged").exists():
                dirs.unmount(entry.name)
        for parent in Path("/sys/fs/cgroup").glob("*/dockyard-test"):
            parent.rmdir()


async def _create(lab: dict[str, object], cid: str, args: tuple[str, ...], *, stdin: bool = False, tty: bool = False) -> tuple[conmon.ConmonRequest, conmon.Created]:
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
    req = conmon.ConmonRequest(
        container_id=cid, name=cid, runtime_path=runtime.path, runtime_args=runtime.global_args,
        bundle=bundle, log_path=bundle / "ctr.log", exit_dir=tmp / "exits", persist_dir=bundle / "persist",
        tty=tty, stdin=stdin, stdin_once=True,
    )  # fmt: skip
    lab["made"].append(cid)  # type: ignore[attr-defined]
    return req, await conmon.create(req)


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
        assert conmon.read_exit_code(req.exit_dir, req.container_id) == 3
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
        assert conmon.read_exit_code(req.exit_dir, req.container_id) == 137
        await runtime.delete(req.container_id, force=True)
        assert not process.send(0)

    asyncio.run(scenario())


def test_create_failure_reports_the_runtime_error(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        with pytest.raises(Exception) as info:
            await _create(lab, "it-missing", ("/no/such/binary",))
        assert "no such file or directory" in str(info.value)

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
