"""The event bus behind GET /events: publish, replay the stored history, follow live.

Every published event gets the next sequence number and is written to the database (one short
transaction) before live subscribers see it, so a follower can always fall back on the table:

- `follow` first replays the stored events of the window (seq up to the moment it subscribed),
  then the live ones from its queue: nothing is lost or repeated between the two.
- Each subscriber's queue is bounded. A slow client whose queue fills up is not sent more
  through it; once it has drained the queue, the events it missed are read back from the
  database (paged) and it carries on live. Memory stays bounded and nothing is dropped, unless
  the client falls so far behind that the history was trimmed past it: then its stream ends
  (dockerd instead drops events for a subscriber that is 100 ms late).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path

from dockyard.errors import Internal
from dockyard.model.events import Event, EventWindow
from dockyard.store.db import Database
from dockyard.store.events import EventRange, EventRepository

__all__ = ["Event", "EventBus"]

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 1024  # live events one subscriber may have waiting (dockerd's buffer size)
_PAGE = 500  # stored events read per query during a replay or catch-up


class _Subscriber:
    def __init__(self, match: Callable[[Event], bool], size: int) -> None:
        self.match = match
        self.size = size
        self.queue: deque[Event] = deque()
        self.lagging = False  # the queue overflowed: missed events are read back from the store
        self.closed = False
        self.wakeup = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.lagging or not self.match(event):
            return
        if len(self.queue) >= self.size:
            self.lagging = True
        else:
            self.queue.append(event)
        self.wakeup.set()


class EventBus:
    def __init__(
        self,
        repo: EventRepository | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        queue_size: int = DEFAULT_QUEUE,
    ) -> None:
        # Without a repository (tests, tools) the history lives in memory for this process.
        self._repo = repo if repo is not None else EventRepository(Database(Path(":memory:")))
        self._clock = clock
        self._queue_size = queue_size
        self._seq = self._repo.last_seq()
        self._subscribers: set[_Subscriber] = set()

    def publish(
        self, type_: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        """Number, store and broadcast one event. Call it on the event loop thread."""
        self._seq += 1
        event = Event.of(type_, action, actor_id, attributes, self._clock(), self._seq)
        try:
            self._repo.append(event)
        except Internal:
            # The change it reports has happened: live subscribers still hear of it.
            log.exception("event %s %s not stored", type_, action)
        for subscriber in self._subscribers:
            subscriber.offer(event)
        return event

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every follower (daemon shutdown)."""
        for subscriber in self._subscribers:
            subscriber.closed = True
            subscriber.wakeup.set()

    async def follow(
        self, window: EventWindow, match: Callable[[Event], bool] = lambda _: True
    ) -> AsyncGenerator[Event, None]:
        """The stored events in `window` that `match`, then live ones until `window` ends."""
        subscriber = _Subscriber(match, self._queue_size)
        self._subscribers.add(subscriber)
        cursor = self._seq  # up to here from the store, after it from the queue
        try:
            if window.replays:
                stored = EventRange(0, cursor, window.since_ns, window.until_ns)
                async with contextlib.aclosing(self._stored(stored, match)) as replay:
                    async for event in replay:
                        yield event
            if window.only_past:
                return
            while not subscriber.closed:
                if subscriber.queue:
                    event = subscriber.queue.popleft()
                    if event.seq > cursor:
                        cursor = event.seq
                        yield event
                    continue
                if subscriber.lagging:
                    upto = self._seq
                    subscriber.lagging = False  # events after `upto` come through the queue again
                    if self._repo.first_seq() > cursor + 1:
                        log.warning("events subscriber fell behind the stored history; disconnecting")
                        return
                    async with contextlib.aclosing(self._stored(EventRange(cursor, upto), match)) as missed:
                        async for event in missed:
                            yield event
                    cursor = max(cursor, upto)
                    continue
                subscriber.wakeup.clear()
                remaining = window.remaining_s(self._clock())
                if remaining == 0.0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        await subscriber.wakeup.wait()
                except TimeoutError:
                    return
        finally:
            self._subscribers.discard(subscriber)

    async def _stored(self, selection: EventRange, match: Callable[[Event], bool]) -> AsyncGenerator[Event, None]:
        after = selection.after_seq
        while True:
            page = self._repo.page(EventRange(after, selection.upto_seq, selection.since_ns, selection.until_ns), _PAGE)
            for event in page:
                if match(event):
                    yield event
            if len(page) < _PAGE:
                return
            after = page[-1].seq
            await asyncio.sleep(0)  # a long replay must not hold the event loop
