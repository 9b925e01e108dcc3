"""Pre-made network namespaces: created with loopback up, handed out, released."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from dockyard.network.netns import NetnsPool, create_netns, release_netns


def _links(path: Path) -> str:
    return subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_create_and_release(tmp_path: Path) -> None:
    path = tmp_path / "ns"
    create_netns(path)
    try:
        assert os.path.ismount(path)
        assert "lo: <LOOPBACK,UP" in _links(path)
        assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino
        assert os.readlink("/proc/self/ns/net") == os.readlink(f"/proc/{os.getpid()}/ns/net")  # we did not move
    finally:
        release_netns(path)
    assert not path.exists()


def test_pool_hands_out_distinct_namespaces_and_refills(tmp_path: Path) -> None:
    async def scenario() -> None:
        pool = NetnsPool(tmp_path / "netns", size=2)
        stale = tmp_path / "netns" / "left-by-a-crash"
        create_netns(stale)
        taken: list[Path] = []
        try:
            async with pool:
                pool.keep_only(in_use=set())
                assert not stale.exists()  # nobody used it: released at once
                for _ in range(3):
                    taken.append(await pool.take())
                assert len({os.stat(p).st_ino for p in taken}) == 3
                for _ in range(100):  # refilled in the background
                    spare = [p for p in (tmp_path / "netns").iterdir() if p not in taken]
                    if len(spare) == 2:
                        break
                    await asyncio.sleep(0.02)
                assert len(spare) == 2
            assert all(not p.exists() for p in spare)  # leaving the pool releases its spares
        finally:
            for path in taken:
                await pool.release(str(path))
            for left in (tmp_path / "netns").iterdir():
                release_netns(left)

    asyncio.run(scenario())
