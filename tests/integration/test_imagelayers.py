"""engine/imagelayers.py: a layer whose unpacking was cancelled leaves no directory; an old
store's layer tar blob goes with the last layer that needs it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
import threading
from pathlib import Path

from dockyard.engine.imagelayers import ImageLayers
from dockyard.layers.overlay import LayerDirs
from dockyard.store.content import ContentStore
from dockyard.store.db import Database
from dockyard.store.images import ImageRepository, LayerRow


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layers(tmp_path: Path) -> tuple[ImageLayers, LayerDirs, ContentStore, Database]:
    db = Database(tmp_path / "dockyard.db")
    content = ContentStore(tmp_path / "content")
    dirs = LayerDirs(tmp_path / "overlay")
    return ImageLayers(ImageRepository(db), content, dirs), dirs, content, db


def _made(dirs: LayerDirs) -> set[str]:
    return {p.name for p in dirs.root.iterdir()} - {"empty"}


def test_a_cancelled_unpack_leaves_no_directory(tmp_path: Path) -> None:
    layers, dirs, _, db = _layers(tmp_path)
    go = threading.Event()
    started = threading.Event()

    def unpack() -> tuple[LayerRow, bool]:
        started.set()
        go.wait(10)
        return layers.add_blocking(None, io.BytesIO(_tar("a", b"a" * 5000)), None)

    async def main() -> None:
        task = asyncio.create_task(layers.add(unpack))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        await asyncio.sleep(0.05)
        go.set()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("not cancelled")

    asyncio.run(main())
    assert _made(dirs) == set()
    db.close()


def test_an_old_tar_blob_goes_with_its_last_layer(tmp_path: Path) -> None:
    layers, dirs, content, db = _layers(tmp_path)
    tar = _tar("old", b"from before tar-split")
    diff_id = content.put(tar)
    row, new = layers.add_blocking(None, io.BytesIO(tar), diff_id)
    assert new and row.diff_id == diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    asyncio.run(layers.register([row]))
    (dirs.root / row.cache_id / "tar-split").unlink()  # as a layer stored before indexes
    saved = layers.tar(diff_id)
    with saved.open() as f:
        assert saved.size == len(tar) and f.read() == tar
    layers.remove_files_blocking(layers.forget([row.chain_id]))
    assert not content.exists(diff_id) and _made(dirs) == set()
    db.close()
