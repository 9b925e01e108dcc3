"""`dockyard system check [--repair]`: the data root's database, content store and layer
directories compared (model/storecheck.py decides), with the daemon stopped."""

from __future__ import annotations

from pathlib import Path

from dockyard.errors import NotFound
from dockyard.layers.overlay import LayerDirs, chain_ids
from dockyard.layers.tarreplay import BrokenLayer
from dockyard.linux.lockfile import LockFile
from dockyard.model.images import parse_image_config
from dockyard.model.storecheck import IndexFacts, LayerFacts, Plan, StoreView, check
from dockyard.store.content import ContentStore
from dockyard.store.db import Database
from dockyard.store.images import ImageRepository, container_refs, delete_layers

_NOT_LAYERS = ("empty",)


def _rebuilds(dirs: LayerDirs, cache_id: str, digest: str) -> bool:
    """Whether the layer's directory and index still give back its tar (read through)."""
    try:
        with dirs.open_tar(cache_id, digest) as tar:
            while tar.read(1 << 20):
                pass
    except BrokenLayer:
        return False
    return True


def _view(repo: ImageRepository, db: Database, content: ContentStore, dirs: LayerDirs, verify: bool) -> StoreView:
    blobs = frozenset(content.digests())
    images: dict[str, tuple[str, ...]] = {}
    for image in repo.images():
        try:
            images[image.id] = tuple(chain_ids(parse_image_config(content.read(image.id), image.id).diff_ids))
        except Exception:  # noqa: BLE001 - a config that is gone or broken: the image is broken
            images[image.id] = ()
    layers: dict[str, LayerFacts] = {}
    rows = {r.chain_id: r for r in repo.layers()}
    for chain, row in rows.items():
        depth, parent = 0, row.parent
        while parent is not None and parent in rows and depth < 1000:
            depth, parent = depth + 1, rows[parent].parent
        layers[chain] = LayerFacts(row.diff_id, row.cache_id, depth)
    held: dict[str, IndexFacts] = {}
    for entry in dirs.root.iterdir():
        if entry.name in _NOT_LAYERS or not entry.is_dir():
            continue
        digest = ""
        if dirs.has_index(entry.name):
            try:
                digest = dirs.index_digest(entry.name)
            except BrokenLayer:
                digest = "?"
            else:
                if verify and not _rebuilds(dirs, entry.name, digest):
                    digest = "!"
        held[entry.name] = IndexFacts(dirs.diff(entry.name).is_dir(), digest)
    refs = container_refs(db)
    return StoreView(images, layers, held, blobs, frozenset(i for i, _ in refs), frozenset(d for _, d in refs))


def _repair(plan: Plan, repo: ImageRepository, db: Database, content: ContentStore, dirs: LayerDirs) -> None:
    for image_id in plan.remove_images:
        repo.delete_image(image_id, [])
    delete_layers(db, list(plan.remove_layers))
    for cache_id in plan.remove_dirs:
        dirs.remove(cache_id)
    for digest in plan.remove_blobs:
        content.delete(digest)


def check_store(data_root: Path, repair: bool, verify: bool = False) -> Plan:
    """The findings (and, with `repair`, their fixing) for a data root no daemon is using;
    `verify` rebuilds every layer's tar from its directory and checks its diff id."""
    if not (data_root / "dockyard.db").is_file():
        raise NotFound(f"no dockyard data root at {data_root}")
    lock = LockFile(data_root / "dockyard.lock")
    lock.acquire()  # Conflict while a daemon runs on it
    try:
        db = Database(data_root / "dockyard.db")
        try:
            repo = ImageRepository(db)
            content = ContentStore(data_root / "content")
            dirs = LayerDirs(data_root / "overlay")
            plan = check(_view(repo, db, content, dirs, verify))
            if repair:
                _repair(plan, repo, db, content, dirs)
            return plan
        finally:
            db.close()
    finally:
        lock.release()
