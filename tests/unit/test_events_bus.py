"""The event bus and its SQLite history: persistence, trimming, replay, live follow, slow clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine.events import EventBus
from dockyard.model.events import Event, EventFilter, EventWindow
from dockyard.model.filters import Filters
from dockyard.store.db import Database
from dockyard.store.events import EventRange, EventRepository


class Clock:
    def __init__(self, start: int = 1_700_000_000_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1_000_000  # 1 ms per reading
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dockyard.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(db_path)
    yield database
    database.close()


def collect(bus: EventBus, window: EventWindow, match: EventFilter | None = None, n: int | None = None,
            timeout: float = 5) -> list[Event]:  # fmt: skip
    async def run() -> list[Event]:
        out: list[Event] = []
        async with asyncio.timeout(timeout):
            async for e in bus.follow(window, match.matches if match else (lambda _: True)):
                out.append(e)
                if n is not None and len(out) >= n:
                    break
        return out

    return asyncio.run(run())


PAST = EventWindow(0, None, False)


def past_only(bus: EventBus) -> list[Event]:
    return collect(bus, EventWindow(0, 2**62, True))


# ---- the repository ------------------------------------------------------------------------------


def test_rows_round_trip(db: Database) -> None:
    repo = EventRepository(db)
    e = Event.of("container", "die", "c1", {"exitCode": "3", "name": "x"}, 123, seq=1)
    repo.append(e)
    assert repo.page(EventRange()) == [e]
    assert repo.last_seq() == 1 and repo.first_seq() == 1 and repo.count() == 1


def test_empty_repository(db: Database) -> None:
    repo = EventRepository(db)
    assert repo.last_seq() == 0 and repo.first_seq() == 0 and repo.page(EventRange()) == []


def test_trim_keeps_the_newest(db: Database) -> None:
    repo = EventRepository(db, keep=10, trim_every=5)
    for seq in range(1, 31):
        repo.append(Event.of("container", "start", f"c{seq}", {}, seq, seq=seq))
        assert repo.count() <= 10 + 5
    assert repo.count() == 10
    assert [e.seq for e in repo.page(EventRange())] == list(range(21, 31))


def test_page_ranges(db: Database) -> None:
    repo = EventRepository(db)
    for seq in range(1, 11):
        repo.append(Event.of("container", "start", "c", {}, seq * 10, seq=seq))
    assert [e.seq for e in repo.page(EventRange(after_seq=3, upto_seq=6))] == [4, 5, 6]
    assert [e.seq for e in repo.page(EventRange(since_ns=35, until_ns=70))] == [4, 5, 6, 7]
    assert [e.seq for e in repo.page(EventRange(), limit=3)] == [1, 2, 3]


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        EventRepository(Database(Path(":memory:")), keep=0)


# ---- publish and replay --------------------------------------------------------------------------


def test_publish_numbers_and_stores(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    a = bus.publish("container", "create", "c1", {"name": "x"})
    b = bus.publish("container", "start", "c1", {"name": "x"})
    assert (a.seq, b.seq) == (1, 2) and b.time_nano > a.time_nano
    assert past_only(bus) == [a, b]


def test_history_survives_a_restart(db_path: Path) -> None:
    first = Database(db_path)
    bus = EventBus(EventRepository(first), clock=Clock())
    before = [bus.publish("container", action, "c1", {"name": "x"}) for action in ("create", "start", "die")]
    first.close()

    second = Database(db_path)
    try:
        bus = EventBus(EventRepository(second), clock=Clock(1_800_000_000_000_000_000))
        after = bus.publish("container", "destroy", "c1", {"name": "x"})
        assert after.seq == 4  # numbering carries on
        assert past_only(bus) == [*before, after]
    finally:
        second.close()


def test_migration_is_recorded(db: Database) -> None:
    assert db.query("PRAGMA user_version")[0][0] >= 2


def test_replay_window_and_filter(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    events = [bus.publish("container" if i % 2 else "image", "tag", f"x{i}", {"name": f"n{i}"}) for i in range(10)]
    window = EventWindow(events[2].time_nano, events[7].time_nano, True)
    assert collect(bus, window) == events[2:8]
    only_images = EventFilter.parse(Filters.of({"type": ["image"]}))
    assert collect(bus, window, only_images) == [e for e in events[2:8] if e.type == "image"]


def test_replay_of_more_than_one_page(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    published = [bus.publish("container", "start", f"c{i}", {}) for i in range(1234)]
    assert past_only(bus) == published


def test_no_replay_without_since_or_until(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    bus.publish("container", "start", "old", {})

    async def run() -> list[Event]:
        out: list[Event] = []

        async def consume() -> None:
            async for e in bus.follow(EventWindow()):
                out.append(e)
                return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        bus.publish("container", "stop", "new", {})
        await asyncio.wait_for(task, 5)
        return out

    assert [e.actor_id for e in asyncio.run(run())] == ["new"]


def test_without_a_repository_history_is_in_memory() -> None:
    bus = EventBus(clock=Clock())
    e = bus.publish("container", "start", "c", {})
    assert past_only(bus) == [e]


# ---- live ----------------------------------------------------------------------------------------


def test_replay_then_live_without_gap_or_repeat(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    old = [bus.publish("container", "start", f"old{i}", {}) for i in range(3)]

    async def run() -> list[Event]:
        out: list[Event] = []

        async def consume() -> None:
            async for e in bus.follow(PAST):
                out.append(e)
                if len(out) == 3:
                    # Published while the replay is being read: must come once, in order.
                    bus.publish("container", "stop", "during", {})
                if len(out) == 5:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        bus.publish("container", "die", "after", {})
        await asyncio.wait_for(task, 5)
        return out

    got = asyncio.run(run())
    assert got[:3] == old
    assert [e.actor_id for e in got[3:]] == ["during", "after"]
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]


def test_live_events_are_filtered(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())
    match = EventFilter.parse(Filters.of({"event": ["die"]}))

    async def run() -> list[str]:
        out: list[str] = []

        async def consume() -> None:
            async for e in bus.follow(EventWindow(), match.matches):
                out.append(e.action)
                return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        for action in ("start", "kill", "die"):
            bus.publish("container", action, "c", {})
        await asyncio.wait_for(task, 5)
        return out

    assert asyncio.run(run()) == ["die"]


def test_until_in_the_future_ends_the_stream(db: Database) -> None:
    bus = EventBus(EventRepository(db))
    until = time.time_ns() + 200_000_000
    t0 = time.monotonic()
    assert collect(bus, EventWindow(None, until, False)) == []
    assert 0.15 < time.monotonic() - t0 < 3


def test_listeners_are_counted_and_released(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())

    async def run() -> tuple[int, int]:
        gen = bus.follow(EventWindow())
        task = asyncio.create_task(gen.__anext__())
        await asyncio.sleep(0.01)
        during = bus.listeners
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await gen.aclose()
        return during, bus.listeners

    assert asyncio.run(run()) == (1, 0)


def test_close_ends_followers(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock())

    async def run() -> list[Event]:
        async def consume() -> list[Event]:
            return [e async for e in bus.follow(EventWindow())]

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        bus.close()
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(run()) == []


# ---- slow subscribers ------------------------------------------------------------------------------


def test_a_slow_subscriber_misses_nothing_and_its_queue_stays_bounded(db: Database) -> None:
    bus = EventBus(EventRepository(db), clock=Clock(), queue_size=8)

    async def run() -> tuple[list[int], int]:
        got: list[int] = []
        longest = 0
        gen = bus.follow(EventWindow())
        first = asyncio.create_task(gen.__anext__())
        await asyncio.sleep(0.01)
        for i in range(100):  # the subscriber reads nothing meanwhile
            bus.publish("container", "start", f"c{i}", {})
            longest = max(longest, *(len(s.queue) for s in bus._subscribers))
        got.append((await first).seq)
        while len(got) < 100:
            got.append((await gen.__anext__()).seq)
            if len(got) == 50:
                for i in range(30):  # more while it catches up from the store
                    bus.publish("container", "stop", f"d{i}", {})
        while len(got) < 130:
            got.append((await gen.__anext__()).seq)
        await gen.aclose()
        return got, longest

    got, longest = asyncio.run(run())
    assert got == list(range(1, 131))
    assert longest <= 8


def test_a_subscriber_behind_the_trimmed_history_is_disconnected(db: Database) -> None:
    bus = EventBus(EventRepository(db, keep=20, trim_every=1), clock=Clock(), queue_size=4)

    async def run() -> list[int]:
        got: list[int] = []
        gen = bus.follow(EventWindow())
        first = asyncio.create_task(gen.__anext__())
        await asyncio.sleep(0.01)
        for i in range(60):
            bus.publish("container", "start", f"c{i}", {})
        got.append((await first).seq)
        async for e in gen:
            got.append(e.seq)
        return got

    got = asyncio.run(run())
    assert got == [1, 2, 3, 4]  # what its queue held; then the stream ends instead of skipping


def test_publish_survives_a_broken_store(db_path: Path) -> None:
    database = Database(db_path)
    bus = EventBus(EventRepository(database), clock=Clock())
    database.query("DROP TABLE events")

    async def run() -> Event:
        gen = bus.follow(EventWindow())
        nxt = asyncio.create_task(gen.__anext__())
        await asyncio.sleep(0.01)
        bus.publish("container", "start", "c", {})  # logged, not raised
        got = await asyncio.wait_for(nxt, 5)
        await gen.aclose()
        return got

    try:
        assert asyncio.run(run()).actor_id == "c"
    finally:
        database.close()

