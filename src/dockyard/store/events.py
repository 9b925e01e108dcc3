"""Event rows: the bounded history behind `GET /events?since=&until=`.

Each publish is one short transaction on the event loop thread (WAL, synchronous=NORMAL:
tens of microseconds). The table keeps the newest `keep` rows: every `trim_every` inserts,
the same transaction deletes the rows older than that, so the table never holds more than
keep + trim_every rows and the trim cost is spread thin.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from dockyard.errors import Internal
from dockyard.model.events import Event
from dockyard.store.db import Database

DEFAULT_KEEP = 10_000
DEFAULT_TRIM_EVERY = 100


@dataclass(frozen=True)
class EventRange:
    """Rows with after_seq < seq <= upto_seq (None: no upper bound) whose time is in
    [since_ns, until_ns] (None: unbounded)."""

    after_seq: int = 0
    upto_seq: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None


class EventRepository:
    def __init__(self, db: Database, *, keep: int = DEFAULT_KEEP, trim_every: int = DEFAULT_TRIM_EVERY) -> None:
        if keep < 1 or trim_every < 1:
            raise ValueError("keep and trim_every must be positive")
        self._db = db
        self._keep = keep
        self._trim_every = trim_every
        self._since_trim = 0

    def last_seq(self) -> int:
        rows = self._db.query("SELECT MAX(seq) AS seq FROM events")
        return int(rows[0]["seq"] or 0)

    def first_seq(self) -> int:
        """The oldest stored seq, 0 when the table is empty."""
        rows = self._db.query("SELECT MIN(seq) AS seq FROM events")
        return int(rows[0]["seq"] or 0)

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) AS n FROM events")[0]["n"])

    def append(self, event: Event) -> None:
        """Store one event (its seq given by the bus); trim the oldest every trim_every."""
        row = (
            event.seq, event.time_nano, event.type, event.action, event.actor_id,
            json.dumps(dict(event.attributes), separators=(",", ":")), event.scope,
        )  # fmt: skip
        self._since_trim += 1
        trim = self._since_trim >= self._trim_every
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO events (seq, time_nano, type, action, actor_id, attributes, scope)"
                    " VALUES (?,?,?,?,?,?,?)",
                    row,
                )
                if trim:
                    conn.execute("DELETE FROM events WHERE seq <= ?", (event.seq - self._keep,))
        except sqlite3.Error as exc:
            raise Internal(f"cannot record event: {exc}") from exc
        if trim:
            self._since_trim = 0

    def page(self, selection: EventRange, limit: int = 500) -> list[Event]:
        """Up to `limit` events of the range, oldest (lowest seq) first."""
        sql = ["SELECT * FROM events WHERE seq > ?"]
        params: list[object] = [selection.after_seq]
        if selection.upto_seq is not None:
            sql.append("AND seq <= ?")
            params.append(selection.upto_seq)
        if selection.since_ns is not None:
            sql.append("AND time_nano >= ?")
            params.append(selection.since_ns)
        if selection.until_ns is not None:
            sql.append("AND time_nano <= ?")
            params.append(selection.until_ns)
        sql.append("ORDER BY seq LIMIT ?")
        params.append(limit)
        try:
            rows = self._db.query(" ".join(sql), tuple(params))
        except sqlite3.Error as exc:
            raise Internal(f"cannot read events: {exc}") from exc
        return [_event(r) for r in rows]


def _event(row: sqlite3.Row) -> Event:
    try:
        attributes = json.loads(row["attributes"])
    except ValueError:
        attributes = {}
    if not isinstance(attributes, dict):
        attributes = {}
    return Event.of(
        row["type"], row["action"], row["actor_id"],
        {str(k): str(v) for k, v in attributes.items()}, row["time_nano"], row["seq"], row["scope"],
    )  # fmt: skip
