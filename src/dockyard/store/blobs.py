"""Rows of where layers' compressed blobs are in registries (migration 0006)."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.store.db import Database


@dataclass(frozen=True)
class BlobLocation:
    diff_id: str  # the layer's uncompressed digest
    digest: str  # its compressed blob's digest in that repository
    size: int
    media_type: str
    registry: str  # "127.0.0.1:5000", "docker.io"
    repository: str  # the path: "library/busybox"


class BlobLocations:
    def __init__(self, db: Database) -> None:
        self._db = db

    def of(self, diff_id: str) -> list[BlobLocation]:
        """Every known location of a layer, the most recently seen first."""
        rows = self._db.query(
            "SELECT * FROM blob_locations WHERE diff_id = ? ORDER BY seen_at DESC, rowid DESC", (diff_id,)
        )
        return [BlobLocation(r["diff_id"], r["digest"], r["size"], r["media_type"], r["registry"], r["repository"])
                for r in rows]  # fmt: skip

    def add(self, locations: list[BlobLocation], seen_at: str) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO blob_locations (diff_id, digest, size, media_type, registry, repository, seen_at) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (diff_id, digest, registry, repository) "
                "DO UPDATE SET seen_at = excluded.seen_at, size = excluded.size, media_type = excluded.media_type",
                [(x.diff_id, x.digest, x.size, x.media_type, x.registry, x.repository, seen_at) for x in locations],
            )

    def remove(self, location: BlobLocation) -> None:
        """The registry said it does not have it (any more)."""
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM blob_locations WHERE diff_id = ? AND digest = ? AND registry = ? AND repository = ?",
                (location.diff_id, location.digest, location.registry, location.repository),
            )
