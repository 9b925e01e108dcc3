"""The background tasks of one component, in a TaskGroup that lives as long as it does.

Each component that runs work in the background (exit watchers, restarts, the trash, the
netns pool, API connections) owns one `Tasks`, entered when the daemon enters the component
and left when it leaves it. A task that fails is logged with its name and ends alone: it
never cancels its siblings, and never stops the daemon. Leaving cancels what still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Tasks:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._group: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Self:
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        for task in list(self._running):
            task.cancel()
        if group is None:
            return
        if kind is not None and not issubclass(kind, asyncio.CancelledError):
            # Children are cancelled and never fail (guarded), so the group has nothing to add;
            # handed the body's error it would wrap it in an ExceptionGroup, one more level for
            # every component an error unwinds through on its way out of the daemon.
            await group.__aexit__(None, None, None)
        else:
            await group.__aexit__(kind, exc, tb)

    @property
    def active(self) -> bool:
        return self._group is not None

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T | None]:
        """Run `work` in the background; its failure is logged, not raised."""
        if self._group is None:
            work.close()
            raise RuntimeError(f"{self._owner}: no task may start outside its lifetime ({name})")
        task = self._group.create_task(self._guarded(work, name), name=f"{self._owner}:{name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _guarded(self, work: Coroutine[Any, Any, T], name: str) -> T | None:
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: background task %s failed", self._owner, name)
            return None


class Component:
    """A component with background work: entering it opens its Tasks, leaving ends them.
    Subclasses set `self._tasks` in their constructor and extend these when they do more."""

    _tasks: Tasks

    async def __aenter__(self) -> Self:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(kind, exc, tb)


WorkQueue = asyncio.Queue[T | BaseException | None]


async def queued_stream(
    tasks: Tasks, work: Callable[[WorkQueue[T]], Coroutine[Any, Any, None]], name: str
) -> AsyncGenerator[T, None]:
    """What a worker puts on its queue, yielded as it comes (a pull's or a push's progress).

    The worker runs in `tasks`, not in a task group around the `yield`: a consumer that goes
    away (a client gone) closes this generator, which must cancel its worker only; a
    GeneratorExit inside a task group ends the daemon. An exception the worker queues is
    raised once it has closed its queue with None."""
    queue: WorkQueue[T] = asyncio.Queue()
    failure: BaseException | None = None
    worker = tasks.spawn(work(queue), name)
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                failure = item  # raised once the worker has said all it had to say
                continue
            yield item
    finally:
        if not worker.done():
            worker.cancel()
            await asyncio.wait([worker])
    if failure is not None:
        raise failure


@contextlib.contextmanager
def first_error() -> Iterator[None]:
    """A task group's failure as its first error itself (what a progress stream reports),
    not the ExceptionGroup around it."""
    try:
        yield
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group
