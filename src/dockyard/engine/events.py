"""The event stream behind GET /events: publish, replay history, follow live."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

_HISTORY = 1024


@dataclass(frozen=True)
class Event:
    type: str  # container, image, network, volume, daemon
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time_nano: int = 0
    scope: str = "local"


class EventBus:
    def __init__(self) -> None:
        self._history: deque[Event] = deque(maxlen=_HISTORY)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, type_: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None) -> None:
        event = Event(type_, action, actor_id, dict(attributes or {}), time.time_ns())
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    async def follow(self, since_ns: int | None, until_ns: int | None) -> AsyncIterator[Event]:
        """Past events from `since`, then live ones until `until` (or forever)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            last = 0
            if since_ns is not None:
                for event in list(self._history):
                    if event.time_nano >= since_ns and (until_ns is None or event.time_nano <= until_ns):
                        last = event.time_nano
                        yield event
            if until_ns is not None and until_ns <= time.time_ns():
                return
            while True:
                timeout = None if until_ns is None else max(0.0, (until_ns - time.time_ns()) / 1e9)
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if event.time_nano <= last:
                    continue
                if until_ns is not None and event.time_nano > until_ns:
                    return
                yield event
        finally:
            self._subscribers.discard(queue)
