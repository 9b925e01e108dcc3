"""runtime.logship with conmon played by the test (k8s-file lines appended to the spool,
rotated by rename as conmon does): shipping, resuming after the daemon stopped or was
killed mid-write, exactly once, following across rotations, and the end of a container."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dockyard.model.logs import LogQuery, LogRecord
from dockyard.runtime import logship
from dockyard.runtime.logfile import LogFiles
from dockyard.runtime.logship import LogShipping
from dockyard.runtime.logwriter import LogWriter
from dockyard.runtime.spool import Cursor


class FakeConmon:
    """Writes the spool as conmon 2.1 does (O_APPEND; rotation = new file renamed over)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def write(self, count: int, stream: str = "stdout", text: str = "line") -> None:
        lines = []
        for _ in range(count):
            lines.append(f"2026-12-01T10:00:00.{self.n:09d}+00:00 {stream} F {text} {self.n}\n".encode())
            self.n += 1
        with (self.directory / "ctr.log").open("ab") as f:
            f.write(b"".join(lines))

    def partial(self, text: str) -> None:
        with (self.directory / "ctr.log").open("ab") as f:
            f.write(f"2026-12-01T10:00:00.{self.n:09d}+00:00 stdout P {text}\n".encode())
        self.n += 1

    def rotate(self) -> None:
        tmp = self.directory / "ctr.log.tmp"
        tmp.write_bytes(b"")
        os.rename(tmp, self.directory / "ctr.log")


def _expected(a: int, b: int, text: str = "line") -> list[bytes]:
    return [f"{text} {i}\n".encode() for i in range(a, b)]


def _logged(files: LogFiles) -> list[bytes]:
    """Every record in LogPath and its rotated files, oldest first (plain files only)."""
    out = []
    for k in range(files.max_file - 1, 0, -1):
        if files.rotated(k).exists():
            out += [json.loads(line)["log"].encode() for line in files.rotated(k).read_bytes().splitlines()]
    if files.path.exists():
        out += [json.loads(line)["log"].encode() for line in files.path.read_bytes().splitlines()]
    return out


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


@pytest.fixture
def where(tmp_path: Path) -> tuple[Path, LogFiles]:
    return tmp_path / "run" / "c1", LogFiles(tmp_path / "data" / "c1" / "c1-json.log", max_file=3)


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


def test_ships_and_finishes(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        conmon.write(3)
        async with LogShipping() as shipping:
            shipper = await shipping.start("c1", spool_dir, files, 1 << 20)
            await _until(lambda: len(_logged(files)) == 3)
            conmon.write(2, stream="stderr")
            conmon.partial("no newline")
            await shipping.finish("c1")
            assert shipper.finished and shipping.shipper("c1") is None
        lines = files.path.read_bytes().splitlines()
        assert json.loads(lines[0]) == {"log": "line 0\n", "stream": "stdout", "time": "2026-12-01T10:00:00Z"}
        assert json.loads(lines[3])["stream"] == "stderr"
        assert json.loads(lines[5]) == {"log": "no newline", "stream": "stdout", "time": "2026-12-01T10:00:00.000000005Z"}
        assert sorted(os.listdir(spool_dir)) == []  # the spool is gone with the run

    _run(main)


def test_daemon_away_resumes_without_loss_or_repeat(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(100)
            await _until(lambda: len(_logged(files)) == 100)
        # the daemon is gone; the container goes on, and conmon rotates its spool once
        conmon.write(50)
        conmon.rotate()
        conmon.write(50)
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(10)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 210)

    _run(main)


def test_killed_mid_write_each_record_once(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(20)
            await _until(lambda: len(_logged(files)) == 20)
        # A kill -9 between writing records and saving the cursor: records in LogPath
        # that the cursor does not count (the shipper will ship them again).
        conmon.write(5)
        with files.path.open("ab") as f:
            f.write(b'{"log":"line 20\\n","stream":"stdout","time":"2026-12-01T10:00:00.00000002Z"}\n{"log":"li')
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 25)

    _run(main)


def test_killed_after_rotating_logpath_before_the_cursor(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(10)
            await _until(lambda: len(_logged(files)) == 10)
        conmon.write(5)
        # LogPath rotated (old one to .1), a new one begun, then the kill.
        os.rename(files.path, files.rotated(1))
        files.path.write_bytes(b'{"log":"line 10\\n","stream":"stdout","time":"2026-12-01T10:00:00.00000001Z"}\n')
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 15)

    _run(main)


def test_two_spool_rotations_while_away_lose_the_middle_file(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(5)
            await _until(lambda: len(_logged(files)) == 5)
        conmon.write(5)  # 5-9: rest of the held file, kept
        conmon.rotate()
        conmon.write(5)  # 10-14: nobody holds this file: lost at the next rotation
        conmon.rotate()
        conmon.write(5)  # 15-19
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 10) + _expected(15, 20)

    _run(main)


def test_a_burst_of_spool_rotations_while_the_shipper_is_busy(where: tuple[Path, LogFiles], monkeypatch: pytest.MonkeyPatch) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)
    original = LogWriter.append

    def slow(self: LogWriter, data: bytes) -> None:
        time.sleep(0.3)  # a slow disk: the shipping loop is held up
        original(self, data)

    monkeypatch.setattr(LogWriter, "append", slow)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(1)
            await asyncio.sleep(0.05)  # the first append is under way
            for _ in range(5):  # conmon rotates five times meanwhile
                conmon.rotate()
                conmon.write(10)
                await asyncio.sleep(0.02)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 51)

    _run(main)


def test_logpath_rotation_while_shipping(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 2000)
            for _ in range(10):
                conmon.write(10)
                await asyncio.sleep(0.01)
            await shipping.finish("c1")
        names = sorted(p.name for p in files.path.parent.iterdir())
        assert names == ["c1-json.log", "c1-json.log.1", "c1-json.log.2"]
        kept = _logged(files)
        assert kept == _expected(100 - len(kept), 100)
        assert all(files.rotated(k).stat().st_size < 2000 + 200 for k in (1, 2))

    _run(main)


async def _collect(reader: logship.LogReader) -> list[LogRecord]:
    return [r async for batch in reader for r in batch]


def test_follow_across_rotations_until_the_end(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    files = LogFiles(files.path, max_file=5)
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 3000)
            conmon.write(30)
            # Written and counted: a reader bounds LogPath at the shipper's position, which
            # follows its write by a moment (lines past it are new to a reader, not history).
            shipper = shipping.shipper("c1")
            assert shipper is not None
            await _until(lambda: len(_logged(files)) == 30 and shipper.position.size == files.path.stat().st_size)
            follower = asyncio.create_task(_collect(shipping.reader("c1", files, LogQuery(), follow=True)))
            tail = asyncio.create_task(_collect(shipping.reader("c1", files, LogQuery(tail=2), follow=True)))
            for _ in range(6):
                conmon.write(15)
                await asyncio.sleep(0.02)
            await shipping.finish("c1")
            got = await asyncio.wait_for(follower, 5)
            assert [r.data for r in got] == _expected(0, 120)
            assert [r.data for r in await asyncio.wait_for(tail, 5)] == _expected(28, 120)
            # a reader after the end: the history, and no follow
            assert len(await _collect(shipping.reader("c1", files, LogQuery(), follow=True))) == 120

    _run(main)


def test_slow_follower_misses_nothing_kept(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    files = LogFiles(files.path, max_file=4)
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1500)
            conmon.write(1)
            await _until(lambda: len(_logged(files)) == 1)
            reader = shipping.reader("c1", files, LogQuery(), follow=True)
            got = [r.data for r in await reader.__anext__()]
            conmon.write(40)  # two LogPath rotations before the follower reads again
            await _until(lambda: shipping.shipper("c1").position.seq >= 2)  # type: ignore[union-attr]
            await shipping.finish("c1")
            async for batch in reader:
                got += [r.data for r in batch]
            assert got == _expected(0, 41)

    _run(main)


def test_follow_ends_at_until(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(3)
            await _until(lambda: len(_logged(files)) == 3)
            until = LogQuery(until_ns=LogRecord("stdout", b"", b"2026-12-01T10:00:00.000000005Z").time_ns)
            follower = asyncio.create_task(_collect(shipping.reader("c1", files, until, follow=True)))
            conmon.write(5)
            got = await asyncio.wait_for(follower, 5)  # ends without the container's end
            assert [r.data for r in got] == _expected(0, 6)
            await shipping.finish("c1")

    _run(main)


def test_reader_of_a_running_container_stops_at_the_written_position(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(4)
            await _until(lambda: len(_logged(files)) == 4)
            reader = shipping.reader("c1", files, LogQuery(), follow=False)
            with files.path.open("ab") as f:  # a write in progress, beyond the position
                f.write(b'{"log":"half')
            assert [r.data for r in await _collect(reader)] == _expected(0, 4)
            os.truncate(files.path, shipping.shipper("c1").position.size)  # type: ignore[union-attr]
            await shipping.finish("c1")

    _run(main)


def test_drain_a_stopped_containers_spool_and_discard(where: tuple[Path, LogFiles], tmp_path: Path) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        conmon.write(7)
        async with LogShipping() as shipping:
            await shipping.drain("c1", spool_dir, files, 1 << 20)
            assert _logged(files) == _expected(0, 7)
            await shipping.drain("c1", spool_dir, files, 1 << 20)  # nothing left: no-op
            other = FakeConmon(tmp_path / "run" / "c2")
            other.write(3)
            await shipping.start("c2", other.directory, LogFiles(tmp_path / "c2.log"), 1 << 20)
            await _until(lambda: (tmp_path / "c2.log").exists() and (tmp_path / "c2.log").stat().st_size > 0)
            await shipping.discard("c2")
            assert shipping.shipper("c2") is None and os.listdir(other.directory) == []

    _run(main)


def test_a_failing_write_is_retried_from_the_cursor(where: tuple[Path, LogFiles], monkeypatch: pytest.MonkeyPatch) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)
    monkeypatch.setattr(logship, "_RETRY_FIRST", 0.01)
    failures = {"left": 2}
    original = LogWriter.append

    def flaky(self: LogWriter, data: bytes) -> None:
        if failures["left"]:
            failures["left"] -= 1
            original(self, data[: len(data) // 2])  # half written, then the disk is full
            raise OSError(28, "No space left on device")
        original(self, data)

    monkeypatch.setattr(LogWriter, "append", flaky)

    async def main() -> None:
        async with LogShipping() as shipping:
            conmon.write(50)
            await shipping.start("c1", spool_dir, files, 1 << 20)
            await _until(lambda: failures["left"] == 0)
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 50)  # the torn write was cut off, then redone

    _run(main)


def test_cursor_is_saved_beside_the_spool(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(3)
            await _until(lambda: len(_logged(files)) == 3)
            cursor = Cursor.decode((spool_dir / "ctr.log.cursor").read_bytes())
            assert cursor == Cursor(
                os.stat(spool_dir / "ctr.log").st_ino, (spool_dir / "ctr.log").stat().st_size,
                files.path.stat().st_ino, files.path.stat().st_size,
            )  # fmt: skip
        assert (spool_dir / "ctr.log.held.0").exists()  # left for the next daemon

    _run(main)


def test_killed_before_the_first_cursor_of_a_run(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    files.path.parent.mkdir(parents=True)
    earlier = b'{"log":"an earlier run\\n","stream":"stdout","time":"2026-12-01T09:00:00Z"}\n'
    files.path.write_bytes(earlier)

    async def main() -> None:
        async with LogShipping() as shipping:
            shipper = await shipping.start("c1", spool_dir, files, 1 << 20)
            await shipper.ready.wait()  # opened, nothing written yet
        # the first write happened, the kill came before its cursor
        with files.path.open("ab") as f:
            f.write(b'{"log":"line 0\\n","stream":"stdout","time":"2026-12-01T10:00:00Z"}\n')
        conmon = FakeConmon(spool_dir)
        conmon.write(3)
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            await shipping.finish("c1")
        assert _logged(files) == [b"an earlier run\n", *_expected(0, 3)]

    _run(main)


def test_a_new_run_waits_for_the_previous_one_to_drain(where: tuple[Path, LogFiles]) -> None:
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            first = await shipping.start("c1", spool_dir, files, 1 << 20)
            conmon.write(5)
            finishing = asyncio.create_task(shipping.finish("c1"))
            await asyncio.sleep(0)
            second = await shipping.start("c1", spool_dir, files, 1 << 20)  # the container restarts
            assert first.finished and second is not first
            assert not (spool_dir / "ctr.log").exists()  # the first run's spool is gone
            conmon.write(3)  # the new conmon's spool
            await finishing
            await shipping.finish("c1")
        assert _logged(files) == _expected(0, 8)

    _run(main)


def test_catch_up_ships_what_the_spool_holds_before_a_read(where: tuple[Path, LogFiles]) -> None:
    """`start` then `logs`: what the monitor spooled just before the request is in the answer."""
    spool_dir, files = where
    conmon = FakeConmon(spool_dir)

    async def main() -> None:
        async with LogShipping() as shipping:
            await shipping.start("c1", spool_dir, files, 1 << 20)
            for round_ in range(20):
                conmon.write(3)
                await shipping.catch_up("c1")  # no sleep between the write and the read
                reader = shipping.reader("c1", files, LogQuery(), follow=False)
                assert len(await _collect(reader)) == 3 * (round_ + 1)
            await shipping.finish("c1")
            await shipping.catch_up("c1")  # finished: returns at once

    _run(main)
