"""Log shipping with a real container: conmon + runc writing the k8s-file spool (rotated by
conmon's --log-size-max), the shipper turning it into dockerd's json-file at LogPath.

The shipper is stopped while the container keeps writing (the daemon going away) and a
new one takes over: every line is in LogPath exactly once, across conmon's and LogPath's
rotations, and a follower started after the restart sees every line until the end.
"""

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
from dockyard.model.logs import LogQuery
from dockyard.runtime import monitor as monitors
from dockyard.runtime.logfile import LogFiles
from dockyard.runtime.logship import LogShipping
from dockyard.runtime.oci import OciRuntime
from dockyard.runtime.spec import SpecInput, build_spec
from tests.conftest import busybox_rootfs_tar, monitor_under_test

LINES = 3000
# About 1000 lines (55 KB of spool) a second at most: with a 32 KiB spool, conmon cannot
# rotate twice during the 0.3 s the shipper is away (which would lose the middle file).
WRITER = f"i=1; while [ $i -le {LINES} ]; do echo line $i; [ $((i % 100)) = 0 ] && sleep 0.1; i=$((i+1)); done"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, object]]:
    dirs = LayerDirs(tmp_path / "overlay")
    image_layer = dirs.new_cache_id()
    dirs.extract(image_layer, io.BytesIO(busybox_rootfs_tar()))
    runtime = OciRuntime("runc", shutil.which("runc") or "/usr/sbin/runc", str(tmp_path / "runc"))
    made: list[str] = []
    monitors: list[int] = []
    try:
        yield {"dirs": dirs, "image": image_layer, "runtime": runtime, "tmp": tmp_path, "made": made, "monitors": monitors}
    finally:
        for cid in made:
            subprocess.run([runtime.path, "--root", runtime.root, "delete", "-f", cid], capture_output=True, check=False)
        for pid in monitors:
            try:
                handle = ProcessHandle(pid)
            except ProcessLookupError:
                continue
            handle.send(9)
            handle.close()
        for entry in (tmp_path / "overlay").iterdir():
            if (entry / "merged").exists():
                dirs.unmount(entry.name)
        for parent in Path("/sys/fs/cgroup").glob("*/dockyard-logtest"):
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


async def _container(lab: dict[str, object], cid: str, args: tuple[str, ...], *, log: bool = True,
                     log_size_max: int = 0) -> tuple[monitors.MonitorRequest, monitors.Created]:  # fmt: skip
    dirs: LayerDirs = lab["dirs"]  # type: ignore[assignment]
    tmp: Path = lab["tmp"]  # type: ignore[assignment]
    runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
    rw = dirs.new_cache_id()
    dirs.create_rw(rw)
    rootfs = dirs.mount(rw, [lab["image"]])  # type: ignore[list-item]
    bundle = tmp / "run" / cid
    bundle.mkdir(parents=True)
    spec = build_spec(SpecInput(rootfs=str(rootfs), args=args, env=("PATH=/bin",), cwd="/", hostname=cid[:12],
                                cgroups_path=f"/dockyard-logtest/{cid}"))  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(spec))
    req = monitors.MonitorRequest(
        container_id=cid, name=cid, runtime_path=runtime.path, runtime_args=runtime.global_args, bundle=bundle,
        log_path=bundle / "ctr.log" if log else None, exit_dir=tmp / "exits", persist_dir=bundle / "persist",
        tty=False, stdin=False, stdin_once=False, log_size_max=log_size_max, monitor=monitor_under_test(),
    )  # fmt: skip
    lab["made"].append(cid)  # type: ignore[attr-defined]
    created = await monitors.create(req)
    lab["monitors"].append(created.monitor_pid)  # type: ignore[attr-defined]
    return req, created


def _logged(files: LogFiles) -> list[str]:
    import gzip

    out: list[str] = []
    for k in range(files.max_file - 1, 0, -1):
        for path, opener in ((files.rotated(k), open), (files.rotated(k, gz=True), gzip.open)):
            if path.exists():
                with opener(path, "rb") as f:
                    out += [json.loads(line)["log"] for line in f.read().splitlines()]
    out += [json.loads(line)["log"] for line in files.path.read_bytes().splitlines()]
    return out


def test_lines_written_while_the_shipper_is_away_are_all_shipped_once(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        tmp: Path = lab["tmp"]  # type: ignore[assignment]
        req, created = await _container(lab, "it-logship", ("sh", "-c", WRITER), log_size_max=32 * 1024)
        files = LogFiles(tmp / "data" / "it-logship-json.log", max_file=40, compress=True)
        monitor = ProcessHandle(created.monitor_pid)
        spool_inodes = set()
        async with LogShipping() as shipping:
            await shipping.start(req.container_id, req.bundle, files, 16 * 1024)
            await runtime.start(req.container_id)
            async with asyncio.timeout(20):
                while not files.path.exists() or len(_logged(files)) < 500:
                    spool_inodes.add(os.stat(req.bundle / "ctr.log").st_ino)
                    await asyncio.sleep(0.01)
        # The shipper is gone (its cursor saved); the container goes on writing.
        shipped_before = len(_logged(files))
        await asyncio.sleep(0.3)
        async with LogShipping() as shipping:
            await shipping.start(req.container_id, req.bundle, files, 16 * 1024)
            follower = shipping.reader(req.container_id, files, LogQuery(), follow=True)
            followed: list[bytes] = []

            async def follow() -> None:
                async for batch in follower:
                    followed.extend(r.data for r in batch)

            following = asyncio.create_task(follow())
            async with asyncio.timeout(60):
                while monitor.send(0):
                    spool_inodes.add(os.stat(req.bundle / "ctr.log").st_ino)
                    await asyncio.sleep(0.01)
                await monitor.wait()
            await shipping.finish(req.container_id)  # conmon exited: drain
            await asyncio.wait_for(following, 10)
        monitor.close()
        expected = [f"line {i}\n" for i in range(1, LINES + 1)]
        assert shipped_before < LINES  # the shipper really was away mid-run
        assert len(spool_inodes) >= 3  # conmon rotated its spool several times
        assert _logged(files) == expected
        assert [d.decode() for d in followed] == expected
        assert len(list(files.path.parent.glob("*.gz"))) >= 5  # LogPath rotated, compressed
        assert not (req.bundle / "ctr.log").exists()  # the spool went with the run
        assert monitors.read_exit_code(req.exit_dir, req.container_id) == 0

    asyncio.run(scenario())


def test_none_driver_keeps_no_log(lab: dict[str, object]) -> None:
    async def scenario() -> None:
        runtime: OciRuntime = lab["runtime"]  # type: ignore[assignment]
        req, created = await _container(lab, "it-nolog", ("sh", "-c", "echo gone; exit 3"), log=False)
        assert not any("ctr.log" in arg for arg in monitors.monitor_argv(req))
        monitor = ProcessHandle(created.monitor_pid)
        await runtime.start(req.container_id)
        await asyncio.wait_for(monitor.wait(), 10)
        monitor.close()
        assert monitors.read_exit_code(req.exit_dir, req.container_id) == 3
        assert not list(req.bundle.glob("ctr.log*"))

    asyncio.run(scenario())
