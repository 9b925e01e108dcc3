"""tasks.Tasks: a component's background work, whose failures stay its own."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dockyard.tasks import Tasks


def test_a_failing_task_is_logged_and_its_siblings_go_on(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[str]:
        done: list[str] = []

        async def fails() -> None:
            raise RuntimeError("boom")

        async def works() -> None:
            await asyncio.sleep(0.01)
            done.append("works")

        async with Tasks("component") as tasks:
            tasks.spawn(fails(), "fails")
            tasks.spawn(works(), "works")
            await asyncio.sleep(0.05)
        return done

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(main()) == ["works"]
    assert "component: background task fails failed" in caplog.text
    assert "boom" in caplog.text


def test_leaving_cancels_what_still_runs() -> None:
    async def main() -> tuple[bool, bool]:
        started = asyncio.Event()
        cancelled = False

        async def forever() -> None:
            nonlocal cancelled
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled = True
                raise

        async with Tasks("component") as tasks:
            task = tasks.spawn(forever(), "forever")
            await started.wait()
        return cancelled, task.cancelled()

    assert asyncio.run(main()) == (True, True)


def test_no_task_starts_outside_the_lifetime() -> None:
    async def main() -> None:
        tasks = Tasks("component")

        async def work() -> None:
            pass

        with pytest.raises(RuntimeError, match="outside its lifetime"):
            tasks.spawn(work(), "early")
        async with tasks:
            assert tasks.active
        assert not tasks.active
        with pytest.raises(RuntimeError):
            tasks.spawn(work(), "late")

    asyncio.run(main())


def test_a_cancelled_parent_is_not_swallowed() -> None:
    async def main() -> None:
        async def body() -> None:
            async with Tasks("component") as tasks:
                tasks.spawn(asyncio.sleep(10), "sleep")
                await asyncio.sleep(10)

        outer = asyncio.ensure_future(body())
        await asyncio.sleep(0.01)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer

    asyncio.run(main())
