"""A coroutine started inside a protocol callback, and handed to a task once it must wait.

A connection answers a request on the spot when its handler needs no I/O (`GET /_ping`,
`GET /containers/json`): no task wake-up, no extra turn of the event loop. The handler is an ordinary
coroutine, so it is started by hand, the way Python 3.12's eager tasks start theirs: with
the connection's task entered as the current task, so that `asyncio.timeout`, `TaskGroup`
and `current_task()` see the task that will carry on. If the coroutine finishes without
waiting, its value is there at once; if it waits, it becomes a `Handoff`, awaited by that
task, which takes over from the first thing it waits on. Either way it runs exactly once,
start to end, in that one task.

asyncio has no public way to enter a task outside its own step (3.12's eager start is one
only for a new task), so `asyncio.tasks._enter_task`/`_leave_task` are used; where they are
missing, nothing is run by hand and every coroutine is handed over unstarted.
"""

from __future__ import annotations

import asyncio
from asyncio import tasks as _asyncio_tasks
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ENTER: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] | None = getattr(
    _asyncio_tasks, "_enter_task", None
)
_LEAVE: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] | None = getattr(
    _asyncio_tasks, "_leave_task", None
)
_UNSTARTED = object()
_CANCEL = object()  # instead of resuming the coroutine, throw a CancelledError into it


class Handoff(Generic[T]):
    """The rest of a coroutine that waits: awaiting this (in the task) drives it on."""

    __slots__ = ("_coro", "_waits_on")

    def __init__(self, coro: Coroutine[Any, None, T], waits_on: object = _UNSTARTED) -> None:
        self._coro = coro
        self._waits_on = waits_on  # what it yielded: the future the awaiting task now waits on

    def __await__(self) -> Generator[Any, None, T]:
        coro, waits_on = self._coro, self._waits_on
        try:
            if waits_on is _UNSTARTED:
                waits_on = coro.send(None)
            elif waits_on is _CANCEL:
                waits_on = coro.throw(asyncio.CancelledError())
            while True:
                try:
                    yield waits_on
                except BaseException as exc:  # noqa: BLE001 - thrown in by the task (a cancellation): passed on
                    waits_on = coro.throw(exc)
                else:
                    waits_on = coro.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """A cancellation of the task that arrived before it took this over (an asyncio.timeout
        entered before the coroutine first waited expires at once): it belongs to the coroutine.
        As a task does it: what the coroutine waits on is cancelled, so it raises where it waits."""
        waits_on = self._waits_on
        if not (isinstance(waits_on, asyncio.Future) and waits_on.cancel()):
            # not started, yielded nothing (asyncio.sleep(0)), or what it waits on is done:
            # raised where it resumes, as a task's _must_cancel does
            self._waits_on = _CANCEL

    def close(self) -> None:
        """The task that was to take it over will not: end it where it stands."""
        self._coro.close()


def start(coro: Coroutine[Any, None, T], task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> T | Handoff[T]:
    """Run `coro` as `task` until it first waits: its value if it finished, else its Handoff.

    An exception it raises before waiting is raised here."""
    if _ENTER is None or _LEAVE is None:
        return Handoff(coro)
    current = asyncio.current_task(loop)
    if current is not None and current is not task:
        return Handoff(coro)  # another task is running: not ours to borrow the slot
    entered = current is None
    if entered:
        _ENTER(loop, task)
    try:
        waits_on = coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        if entered:
            _LEAVE(loop, task)
    return Handoff(coro, waits_on)
