"""Network rows: the spec as codec JSON."""

from __future__ import annotations

from dockyard.model.networks import Network, NetworkSpec
from dockyard.store import codec
from dockyard.store.db import Database


class NetworkRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[Network]:
        rows = self._db.query("SELECT * FROM networks")
        return [Network(r["id"], r["created"], codec.loads(NetworkSpec, r["spec"])) for r in rows]

    def add(self, n: Network) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO networks (id, name, created, spec) VALUES (?,?,?,?)",
                (n.id, n.name, n.created, codec.dumps(n.spec)),
            )

    def delete(self, network_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))
