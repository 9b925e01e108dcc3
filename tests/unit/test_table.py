"""engine.table.ContainerTable: names, resolution, and the one place states change."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.engine.table import ContainerTable, ExitStatus
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.model.containers import Container, ContainerSpec, ContainerState, ContainerStatus
from dockyard.store.containers import ContainerRepository
from dockyard.store.db import Database


def _container(cid: str, name: str) -> Container:
    return Container(cid, name, "2026-12-01T00:00:00Z", "sha256:i", ContainerSpec("busybox", "h"),
                     ContainerState(), "runc", "rw" + cid[:4])  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "d.db")
    database.query("PRAGMA foreign_keys=OFF")  # no image rows in this test
    return database


def _table_with(db: Database, *containers: Container) -> ContainerTable:
    table = ContainerTable(ContainerRepository(db))
    for c in containers:
        table.reserve_name(c.name, c.id)
        table.add(c)
    return table


def test_resolve_by_id_name_slash_name_and_unique_prefix(db: Database) -> None:
    a, b = _container("aaaa1111" * 8, "web"), _container("aaab2222" * 8, "db")
    table = _table_with(db, a, b)
    assert table.resolve(a.id) == a
    assert table.resolve("web") == a
    assert table.resolve("/web") == a
    assert table.resolve("aaab") == b
    with pytest.raises(InvalidArgument, match="multiple IDs"):
        table.resolve("aaa")
    with pytest.raises(NotFound, match="No such container: ghost"):
        table.resolve("ghost")


def test_a_taken_name_is_a_conflict_with_dockerds_words(db: Database) -> None:
    table = _table_with(db, _container("a" * 64, "web"))
    with pytest.raises(Conflict, match='The container name "/web" is already in use by container "a{64}"'):
        table.reserve_name("web", "b" * 64)
    generated = table.reserve_name("", "b" * 64)
    assert generated and generated != "web"


def test_publish_enforces_the_state_table_and_persists(db: Database) -> None:
    c = _container("c" * 64, "xc")
    table = _table_with(db, c)
    running = table.publish(c.id, replace(c.state, status=ContainerStatus.RUNNING, pid=42))
    assert table.get(c.id) == running
    with pytest.raises(Conflict, match="cannot move a container from running to removing"):
        table.publish(c.id, replace(running.state, status=ContainerStatus.REMOVING))
    assert table.get(c.id) == running  # a refused move changes nothing
    # Same status, other fields: always allowed.
    table.publish(c.id, replace(running.state, restart_count=3))
    reloaded = ContainerTable(ContainerRepository(db))
    got = reloaded.get(c.id)
    assert got is not None and got.state.restart_count == 3 and got.state.status is ContainerStatus.RUNNING


def test_rename_moves_the_name(db: Database) -> None:
    c = _container("d" * 64, "old")
    table = _table_with(db, c, _container("e" * 64, "other"))
    with pytest.raises(Conflict):
        table.rename(c.id, "other")
    table.rename(c.id, "new")
    assert table.resolve("new").id == c.id
    with pytest.raises(NotFound):
        table.resolve("old")


def test_drop_resolves_waiters_with_the_last_exit_code(db: Database) -> None:
    async def main() -> tuple[ExitStatus, ExitStatus]:
        c = _container("f" * 64, "wf")
        table = _table_with(db, c)
        table.publish(c.id, replace(c.state, exit_code=3))
        removal, exit_ = table.removal(c.id), table.next_exit(c.id)
        table.drop(c.id)
        assert table.get(c.id) is None
        table.reserve_name("wf", "g" * 64)  # the name is free again
        return await removal, await exit_

    assert asyncio.run(main()) == (ExitStatus(3), ExitStatus(3))
