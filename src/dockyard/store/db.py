"""The one SQLite database: connection, numbered migrations, short transactions.

Writes happen on the event loop thread: each is one small transaction, far
cheaper than a thread hop. WAL lets readers in other threads proceed.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from dockyard.errors import Internal, StorageFull

log = logging.getLogger(__name__)

_SQLITE_FULL = 13


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("dockyard.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text()))
    return sorted(found)


class Database:
    def __init__(self, path: Path) -> None:
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise Internal(f"cannot open database {path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives a daemon crash; only a power cut can lose the last ones.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        current = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for number, sql in _migrations():
            if number <= current:
                continue
            log.info("applying database migration %04d", number)
            self._conn.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) == _SQLITE_FULL or "disk is full" in str(exc):
                raise StorageFull(f"the database cannot grow: no space left on device ({exc})") from exc
            raise

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self._conn.close()
