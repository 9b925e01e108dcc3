"""api/handoff: a coroutine started by hand as a task, then carried on by that task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dockyard.api.handoff import Handoff, start


async def _host(work: asyncio.Queue[Handoff[Any] | None]) -> list[Any]:
    """A stand-in for the connection's task: awaits what it is handed, collects the results."""
    results = []
    while (item := await work.get()) is not None:
        try:
            results.append(await item)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results.append(exc)
    return results


def _run_from_callback(make: Any, *, then: Any = None) -> tuple[Any, list[Any]]:
    """Start make() from a plain loop callback (as data_received is), as the host task;
    a Handoff goes to the host. Returns what start() gave and what the host collected."""

    async def main() -> tuple[Any, list[Any]]:
        queue: asyncio.Queue[Handoff[Any] | None] = asyncio.Queue()
        host = asyncio.create_task(_host(queue))
        loop = asyncio.get_running_loop()
        started: asyncio.Future[Any] = loop.create_future()

        def callback() -> None:
            try:
                outcome = start(make(host), host, loop)
            except Exception as exc:  # noqa: BLE001 - for the test to see
                started.set_exception(exc)
            else:
                started.set_result(outcome)
                if isinstance(outcome, Handoff):
                    queue.put_nowait(outcome)
            queue.put_nowait(None)

        loop.call_soon(callback)
        results = await host
        outcome = await started
        if then is not None:
            then(outcome, results)
        return outcome, results

    return asyncio.run(main())


def test_a_coroutine_that_never_waits_gives_its_value_at_once() -> None:
    seen: list[Any] = []

    async def work(host: asyncio.Task[Any]) -> str:
        seen.append(asyncio.current_task() is host)
        return "done"

    outcome, results = _run_from_callback(work)
    assert outcome == "done" and results == []
    assert seen == [True]  # it ran as the host task


def test_a_coroutine_that_waits_is_carried_on_by_the_task() -> None:
    seen: list[Any] = []

    async def work(host: asyncio.Task[Any]) -> str:
        seen.append(asyncio.current_task() is host)
        await asyncio.sleep(0.01)
        seen.append(asyncio.current_task() is host)
        await asyncio.sleep(0)  # a bare yield, too
        return "later"

    outcome, results = _run_from_callback(work)
    assert isinstance(outcome, Handoff)
    assert results == ["later"] and seen == [True, True]


def test_an_error_before_the_first_wait_is_raised_by_start() -> None:
    async def work(host: asyncio.Task[Any]) -> None:
        raise ValueError("early")

    with pytest.raises(ValueError, match="early"):
        _run_from_callback(work)


def test_an_error_after_the_first_wait_reaches_the_task() -> None:
    async def work(host: asyncio.Task[Any]) -> None:
        await asyncio.sleep(0)
        raise ValueError("late")

    _, results = _run_from_callback(work)
    assert [str(e) for e in results] == ["late"]


@pytest.mark.parametrize("wait", ["future", "bare yield"])
def test_a_timeout_entered_before_the_first_wait_and_expired_before_the_task_takes_over(wait: str) -> None:
    """asyncio.timeout(0) cancels the task at once: the cancellation lands before the task
    awaits the handoff, and must still end up where the coroutine waits (a TimeoutError
    there), not in the task (docker stop -t 0 once closed its connection unanswered)."""

    async def work(host: asyncio.Task[Any]) -> str:
        try:
            async with asyncio.timeout(0):
                if wait == "future":
                    await asyncio.Event().wait()
                else:
                    while True:
                        await asyncio.sleep(0)
        except TimeoutError:
            return "timed out"
        return "not reached"

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[Handoff[str]] = loop.create_future()

        async def host() -> Any:
            while True:  # as the connection's _run: idle on a future, the request handed to it
                try:
                    return await (await asyncio.shield(handed))
                except asyncio.CancelledError:
                    if not handed.done():
                        raise
                    handed.result().cancel()

        task = asyncio.create_task(host())
        await asyncio.sleep(0)  # the host is idle

        def callback() -> None:
            outcome = start(work(task), task, loop)
            assert isinstance(outcome, Handoff)
            loop.call_soon(handed.set_result, outcome)  # the cancellation is queued first

        loop.call_soon(callback)
        return await task

    assert asyncio.run(main()) == "timed out"


def test_a_task_group_opened_before_the_first_wait_belongs_to_the_task() -> None:
    async def work(host: asyncio.Task[Any]) -> list[int]:
        async with asyncio.TaskGroup() as group:
            a = group.create_task(asyncio.sleep(0.01, 1))
            b = group.create_task(asyncio.sleep(0, 2))
        return [a.result(), b.result()]

    outcome, results = _run_from_callback(work)
    assert isinstance(outcome, Handoff) and results == [[1, 2]]


def test_cancelling_the_task_reaches_the_coroutine_where_it_waits() -> None:
    cleaned: list[str] = []

    async def work(host: asyncio.Task[Any]) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("finally")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Handoff[Any] | None] = asyncio.Queue()
        host = asyncio.create_task(_host(queue))
        outcome = start(work(host), host, loop)  # from the test's own task: not entered, handed over
        assert isinstance(outcome, Handoff)
        queue.put_nowait(outcome)
        await asyncio.sleep(0.01)
        host.cancel()
        with pytest.raises(asyncio.CancelledError):
            await host

    asyncio.run(main())
    assert cleaned == ["finally"]
