"""Rows for images, tags and layers. The config blobs themselves live in ContentStore."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from dockyard.store.db import Database


@dataclass(frozen=True)
class LayerRow:
    chain_id: str
    diff_id: str
    parent: str | None
    cache_id: str
    size: int


@dataclass(frozen=True)
class ImageRow:
    id: str
    parent: str
    loaded_at: str
    top_layer: str | None


@dataclass(frozen=True)
class TagRow:
    name: str
    image_id: str
    tagged_at: str


class ImageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def layers(self) -> list[LayerRow]:
        return [
            LayerRow(r["chain_id"], r["diff_id"], r["parent"], r["cache_id"], r["size"])
            for r in self._db.query("SELECT * FROM layers")
        ]

    def images(self) -> list[ImageRow]:
        return [
            ImageRow(r["id"], r["parent"] or "", r["loaded_at"], r["top_layer"])
            for r in self._db.query("SELECT * FROM images")
        ]

    def tags(self) -> list[TagRow]:
        return [TagRow(r["name"], r["image_id"], r["tagged_at"]) for r in self._db.query("SELECT * FROM tags")]

    def add_layer(self, layer: LayerRow) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO layers (chain_id, diff_id, parent, cache_id, size) VALUES (?,?,?,?,?)",
                (layer.chain_id, layer.diff_id, layer.parent, layer.cache_id, layer.size),
            )

    def add_image(self, image: ImageRow, tags: list[TagRow]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO images (id, parent, loaded_at, top_layer) VALUES (?,?,?,?)",
                (image.id, image.parent or None, image.loaded_at, image.top_layer),
            )
            _put_tags(conn, tags)

    def add_image_tags(self, tags: list[TagRow]) -> None:
        with self._db.transaction() as conn:
            _put_tags(conn, tags)

    def remove_tags(self, names: list[str]) -> None:
        with self._db.transaction() as conn:
            for name in names:
                conn.execute("DELETE FROM tags WHERE name = ?", (name,))

    def delete_image(self, image_id: str, layers: list[str]) -> None:
        """Drop the image, its tags and the layers nothing else uses, in one transaction."""
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            for chain in layers:
                conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))


def _put_tags(conn: sqlite3.Connection, tags: list[TagRow]) -> None:
    """A tag names one image: tagging again moves it."""
    conn.executemany(
        "INSERT OR REPLACE INTO tags (name, image_id, tagged_at) VALUES (?,?,?)",
        [(t.name, t.image_id, t.tagged_at) for t in tags],
    )


def container_refs(db: Database) -> list[tuple[str, str]]:
    """(image id, writable layer dir) of every container: what `system check` must keep."""
    return [(r["image_id"], r["rw_layer"]) for r in db.query("SELECT image_id, rw_layer FROM containers")]


def delete_layers(db: Database, chains: list[str]) -> None:
    """Drop layer rows (children before parents), in one transaction."""
    with db.transaction() as conn:
        for chain in chains:
            conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
