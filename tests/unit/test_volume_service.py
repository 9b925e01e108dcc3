"""engine/volumes.py on a temporary data root: claims of containers being created, all-or-nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dockyard.engine.events import EventBus
from dockyard.engine.volumes import CreateRequest, VolumeService
from dockyard.errors import Conflict
from dockyard.model.filters import Filters
from dockyard.store.db import Database
from dockyard.store.events import EventRepository
from dockyard.store.volumes import VolumeRepository
from dockyard.volumes.local import LocalVolumes


def _service(tmp_path: Path) -> tuple[VolumeService, Database]:
    db = Database(tmp_path / "dockyard.db")
    return VolumeService(VolumeRepository(db), LocalVolumes(tmp_path / "volumes"), EventBus(EventRepository(db))), db


def test_a_claimed_volume_cannot_go_until_the_claim_ends(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db = _service(tmp_path)
        try:
            await volumes.start()
            async with volumes.claimed("c" * 64, [("data", {}, {}), ("data", {}, {})]):
                assert (tmp_path / "volumes" / "data" / "_data").is_dir()
                with pytest.raises(Conflict, match=r"^remove data: volume is in use - \[c{64}\]$"):
                    await volumes.remove("data", force=True)
                assert (await volumes.prune(Filters.of({"all": ["true"]}), all_named=False)).names == ()
            assert volumes.get("data").labels is None  # made on first use: no labels, as dockerd
            assert (await volumes.prune(Filters.of({"all": ["true"]}), all_named=False)).names == ("data",)
            async with volumes.claimed("d" * 64, [("labelled", {"k": "v"}, {})]):
                pass
            assert volumes.get("labelled").labels == {"k": "v"}
            assert not (tmp_path / "volumes" / "data").exists()
        finally:
            db.close()

    asyncio.run(scenario())


def test_volumes_come_back_from_the_database(tmp_path: Path) -> None:
    async def scenario() -> None:
        volumes, db = _service(tmp_path)
        await volumes.start()
        made = await volumes.create(CreateRequest("kept", labels={"a": "b"}))
        anonymous = await volumes.create(CreateRequest())
        db.close()
        again, db = _service(tmp_path)
        try:
            await again.start()
            assert again.get("kept") == made
            assert again.get(anonymous.name).anonymous
        finally:
            db.close()

    asyncio.run(scenario())
