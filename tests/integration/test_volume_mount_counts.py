"""engine/volumes.py with real mounts: a volume's filesystem is mounted by its first running
user and unmounted after the last, kept for adopted users across a restart, and a removal
never leaves a row without its data."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dockyard.engine.events import EventBus
from dockyard.engine.volumes import CreateRequest, VolumeService
from dockyard.errors import Internal
from dockyard.store.db import Database
from dockyard.store.events import EventRepository
from dockyard.store.volumes import VolumeRepository
from dockyard.volumes.local import LocalVolumes

TMPFS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
A, B = "a" * 64, "b" * 64


def _service(tmp_path: Path) -> tuple[VolumeService, Database, LocalVolumes]:
    db = Database(tmp_path / "dockyard.db")
    local = LocalVolumes(tmp_path / "volumes")
    return VolumeService(VolumeRepository(db), local, EventBus(EventRepository(db))), db, local


@pytest.fixture(autouse=True)
def _no_mount_left(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield
    prefix = str(tmp_path) + "/"
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in left:
        os.system(f"umount -l {point}")
    assert left == []


def test_first_user_mounts_last_user_unmounts(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db, local = _service(tmp_path)
        try:
            await volumes.start()
            await volumes.create(CreateRequest("tv", options=TMPFS))
            await volumes.create(CreateRequest("plain"))
            await volumes.mount_for(A, ["tv", "plain", "tv"])
            assert local.is_mounted("tv") and not local.is_mounted("plain")
            (local.mountpoint("tv") / "f").write_text("x")
            await volumes.mount_for(B, ["tv"])
            assert volumes.holders("tv") == {A, B}
            await volumes.unmount_for(A, ["tv", "plain"])
            assert local.is_mounted("tv") and (local.mountpoint("tv") / "f").exists()  # B still runs
            await volumes.unmount_for(B, ["tv"])
            assert not local.is_mounted("tv") and os.listdir(local.mountpoint("tv")) == []
        finally:
            db.close()

    asyncio.run(scenario())


def test_a_failed_mount_leaves_nothing_mounted(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db, local = _service(tmp_path)
        try:
            await volumes.start()
            await volumes.create(CreateRequest("good", options=TMPFS))
            await volumes.create(CreateRequest("bad", options={**TMPFS, "o": "size=bogus"}))
            with pytest.raises(Internal, match="data: size=bogus: invalid argument$"):
                await volumes.mount_for(A, ["good", "bad"])
            assert not local.is_mounted("good") and volumes.holders("good") == frozenset()
        finally:
            db.close()

    asyncio.run(scenario())


def test_restart_keeps_adopted_mounts_and_unmounts_idle_ones(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db, local = _service(tmp_path)
        await volumes.start()
        for name in ("held", "idle"):
            await volumes.create(CreateRequest(name, options=TMPFS))
        await volumes.mount_for(A, ["held"])
        await volumes.mount_for(B, ["idle"])
        (local.mountpoint("held") / "f").write_text("kept")
        db.close()  # the daemon dies: the mounts stay
        again, db, local = _service(tmp_path)
        try:
            await again.start()
            again.adopt(A, ["held"])  # A still runs; B ended while the daemon was away
            await again.unmount_idle()
            assert local.is_mounted("held") and (local.mountpoint("held") / "f").read_text() == "kept"
            assert not local.is_mounted("idle")
            await again.unmount_for(A, ["held"])
            assert not local.is_mounted("held")
        finally:
            db.close()

    asyncio.run(scenario())


def test_remove_unmounts_and_a_failed_row_delete_keeps_the_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db, local = _service(tmp_path)
        try:
            await volumes.start()
            await volumes.create(CreateRequest("mounted", options=TMPFS))
            await volumes.mount_for(A, ["mounted"])
            await volumes.create(CreateRequest("kept"))
            (local.mountpoint("kept") / "f").write_text("data")
            await volumes.remove("mounted")
            assert not (tmp_path / "volumes" / "mounted").exists()

            def refuse(name: str) -> None:
                raise Internal("database is locked")

            volumes._repo.delete = refuse  # type: ignore[method-assign]
            with pytest.raises(Internal, match="database is locked"):
                await volumes.remove("kept")
            assert volumes.get("kept") and (local.mountpoint("kept") / "f").read_text() == "data"
            assert sorted(os.listdir(tmp_path / "volumes")) == ["kept"]
        finally:
            db.close()

    asyncio.run(scenario())


def test_start_up_finishes_a_removal_cut_short_and_never_adopts_its_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db, local = _service(tmp_path)
        await volumes.start()
        await volumes.create(CreateRequest("cut"))
        (local.mountpoint("cut") / "f").write_text("old")
        local.set_aside("cut")
        volumes._repo.delete("cut")  # the daemon died here: row gone, data set aside
        db.close()
        again, db, local = _service(tmp_path)
        try:
            await again.start()
            assert os.listdir(tmp_path / "volumes") == []
            await again.create(CreateRequest("cut"))
            assert os.listdir(local.mountpoint("cut")) == []
        finally:
            db.close()

    asyncio.run(scenario())
