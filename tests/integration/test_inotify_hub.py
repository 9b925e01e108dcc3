"""One inotify instance for every watch: events reach the right watches, and watches of
one directory with different masks do not disturb each other (no root needed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dockyard.linux.inotify import IN_MOVED_TO, Inotify


async def _fires(watch_changed: asyncio.Future[None] | asyncio.Task[None], within: float = 1.0) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(watch_changed), within)
        return True
    except TimeoutError:
        return False


def test_an_event_wakes_the_watch_of_its_directory_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()

    async def main() -> tuple[bool, bool]:
        inotify = Inotify()
        try:
            wa, wb = inotify.watch(a), inotify.watch(b)
            ta, tb = asyncio.create_task(wa.changed()), asyncio.create_task(wb.changed())
            await asyncio.sleep(0)
            (a / "f").write_bytes(b"x")
            fired = await _fires(ta), await _fires(tb, 0.2)
            tb.cancel()
            wa.close()
            wb.close()
            return fired
        finally:
            inotify.close()

    assert asyncio.run(main()) == (True, False)


def test_two_masks_on_one_directory(tmp_path: Path) -> None:
    """A write wakes the full watch, not the rename-only one; a rename wakes both; closing
    one leaves the other working."""

    async def main() -> list[bool]:
        inotify = Inotify()
        seen = []
        try:
            full, renames = inotify.watch(tmp_path), inotify.watch(tmp_path, IN_MOVED_TO)
            (tmp_path / "f").write_bytes(b"x")
            seen.append(await _fires(asyncio.ensure_future(full.changed())))
            seen.append(await _fires(asyncio.ensure_future(renames.changed()), 0.2))
            full.drain()
            renames.drain()
            os.rename(tmp_path / "f", tmp_path / "g")
            seen.append(await _fires(asyncio.ensure_future(full.changed())))
            seen.append(await _fires(asyncio.ensure_future(renames.changed())))
            full.close()
            renames.drain()
            os.rename(tmp_path / "g", tmp_path / "h")
            seen.append(await _fires(asyncio.ensure_future(renames.changed())))
            renames.close()
        finally:
            inotify.close()
        return seen

    assert asyncio.run(main()) == [True, False, True, True, True]


def test_drain_forgets_and_wake_ends_a_wait(tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool]:
        inotify = Inotify()
        try:
            w = inotify.watch(tmp_path)
            (tmp_path / "f").write_bytes(b"x")
            w.drain()
            after_drain = await _fires(asyncio.ensure_future(w.changed()), 0.2)
            waiting = asyncio.ensure_future(w.changed())
            await asyncio.sleep(0)
            w.wake()
            woken = await _fires(waiting, 0.2)
            w.close()
            return after_drain, woken
        finally:
            inotify.close()

    assert asyncio.run(main()) == (False, True)


def test_a_deleted_directory_wakes_its_watch_and_closes_cleanly(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()

    async def main() -> bool:
        inotify = Inotify()
        try:
            w = inotify.watch(d)
            w.drain()
            d.rmdir()
            fired = await _fires(asyncio.ensure_future(w.changed()))
            w.close()  # the kernel dropped the watch already: nothing to remove
            return fired
        finally:
            inotify.close()

    assert asyncio.run(main())


def test_many_watches_use_one_instance(tmp_path: Path) -> None:
    """fs.inotify.max_user_instances is 128: 300 watches must not need 300 instances."""

    async def main() -> int:
        before = _instances()
        inotify = Inotify()
        watches = []
        try:
            for i in range(300):
                d = tmp_path / str(i)
                d.mkdir()
                watches.append(inotify.watch(d))
            return _instances() - before
        finally:
            for w in watches:
                w.close()
            inotify.close()

    assert asyncio.run(main()) == 1


def _instances() -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _link(fd) == "anon_inode:inotify")


def _link(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return ""
