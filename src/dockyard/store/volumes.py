"""Volume rows: the record as codec JSON, keyed by name."""

from __future__ import annotations

from dockyard.model.volumes import Volume
from dockyard.store import codec
from dockyard.store.db import Database


class VolumeRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[Volume]:
        return [codec.loads(Volume, r["spec"]) for r in self._db.query("SELECT spec FROM volumes")]

    def add(self, v: Volume) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO volumes (name, spec) VALUES (?,?)", (v.name, codec.dumps(v)))

    def delete(self, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
