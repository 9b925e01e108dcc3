"""network/bridge's retired bridges on the real kernel: a bridge set down by `network rm` carries
the daemon's marker, so one a crash left behind is deleted at the next start, and only it."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.network.bridge import Bridges, retired_marker
from dockyard.network.netlink import Netlink

pytestmark = pytest.mark.root


def _link(name: str) -> tuple[bool, str] | None:
    with Netlink() as nl:
        link = nl.link(name)
    return None if link is None else (link.up, link.alias)


@pytest.fixture
def names() -> Iterator[list[str]]:
    made = [f"dyrt{os.urandom(4).hex()}" for _ in range(3)]
    try:
        yield made
    finally:
        for name in made:
            subprocess.run(["ip", "link", "delete", name], capture_output=True)


def test_a_retired_bridge_is_swept_and_others_are_not(names: list[str], tmp_path: Path) -> None:
    mine, theirs = Bridges(retired_marker(tmp_path / "a")), Bridges(retired_marker(tmp_path / "b"))
    gone, kept, other = names

    async def scenario() -> None:
        for name in names:
            await mine.ensure(name, ())
        await mine.retire(gone)  # the crash came before its deletion
        await mine.retire(kept)  # ... and this one's network is still in the database
        await theirs.retire(other)  # another daemon's
        assert _link(gone) == (False, retired_marker(tmp_path / "a"))
        assert await mine.sweep([kept]) == [gone]
        assert _link(gone) is None
        assert _link(other) == (False, retired_marker(tmp_path / "b"))  # not ours: left alone
        await mine.ensure(kept, ())  # wanted again: up, and no longer marked
        assert _link(kept) == (True, "")
        assert await mine.sweep([]) == []
        assert await Bridges().sweep([]) == []  # no marker: nothing is ever swept

    asyncio.run(scenario())
