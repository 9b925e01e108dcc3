"""Container rows: the merged spec and the last observed state, as codec JSON."""

from __future__ import annotations

from dockyard.model.containers import Container, ContainerSpec, ContainerState
from dockyard.model.health import Health
from dockyard.store import codec
from dockyard.store.db import Database


class ContainerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[Container]:
        return [
            Container(
                id=r["id"],
                name=r["name"],
                created=r["created"],
                image_id=r["image_id"],
                spec=codec.loads(ContainerSpec, r["spec"]),
                state=codec.loads(ContainerState, r["state"]),
                runtime=r["runtime"],
                rw_layer=r["rw_layer"],
                health=codec.loads(Health, r["health"]) if r["health"] else None,
            )
            for r in self._db.query("SELECT * FROM containers")
        ]

    def add(self, c: Container) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO containers (id, name, image_id, created, runtime, rw_layer, spec, state)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (c.id, c.name, c.image_id, c.created, c.runtime, c.rw_layer, codec.dumps(c.spec), codec.dumps(c.state)),
            )

    def save_state(self, container_id: str, state: ContainerState) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE containers SET state = ? WHERE id = ?", (codec.dumps(state), container_id))

    def save_spec(self, container_id: str, spec: ContainerSpec) -> None:
        """A changed spec (docker update), in one short transaction."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE containers SET spec = ? WHERE id = ?", (codec.dumps(spec), container_id))

    def save_health(self, container_id: str, health: Health | None) -> None:
        with self._db.transaction() as conn:
            text = codec.dumps(health) if health is not None else None
            conn.execute("UPDATE containers SET health = ? WHERE id = ?", (text, container_id))

    def rename(self, container_id: str, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE containers SET name = ? WHERE id = ?", (name, container_id))

    def save(self, c: Container) -> None:
        """Everything that changes after create (name, spec, state, health) in one write:
        how a change that found the disk full is written once there is room."""
        health = codec.dumps(c.health) if c.health is not None else None
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE containers SET name = ?, spec = ?, state = ?, health = ? WHERE id = ?",
                (c.name, codec.dumps(c.spec), codec.dumps(c.state), health, c.id),
            )

    def delete(self, container_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))
