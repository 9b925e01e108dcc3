"""Log shipping: conmon's spool in the exec root -> dockerd's json-file at LogPath.

One LogShipper per running container reads the spool from its cursor, turns the lines
into json-file records, appends them to LogPath (rotating it) and saves the cursor after
each write. A daemon that stops (or is killed) and comes back resumes from the cursor, so
what the container wrote meanwhile is shipped. Records written after the last saved
cursor are cut off LogPath when a shipper resumes, then shipped again: each record is in
LogPath exactly once, also after a kill -9 in the middle of a write or a rotation.

Readers (`docker logs`, attach's logs=1) read the files; followers are woken by the
shipper each time its write position moves, and read the new records from the file: no
polling, no per-follower buffer that a slow client could grow, and across a rotation the
follower finishes the file it holds open before it takes the next (moby#37646).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from dockyard.linux.inotify import IN_MOVED_TO, DirectoryWatch, Inotify
from dockyard.model.logs import LogQuery, LogRecord, LogWindow
from dockyard.runtime.jsonlog import SpoolEncoder, decode
from dockyard.runtime.logfile import (
    LogFiles,
    LogSource,
    PlainSource,
    close_sources,
    open_rotated,
    open_sources,
    read_history,
    read_lines,
)
from dockyard.runtime.logwriter import LogWriter, WritePosition
from dockyard.runtime.spool import Spool

log = logging.getLogger(__name__)

_RETRY_FIRST, _RETRY_MAX = 0.5, 30.0
# How long a `docker logs` waits for what the monitor has spooled to be shipped: an inotify
# round and a write, milliseconds; bounded for a shipper stuck on a full disk.
_CATCH_UP = 0.5


@dataclass(frozen=True)
class _Chunk:
    records: bytes  # json-file lines
    spool: bytes  # the k8s-file lines they came from
    skipped: int  # unreadable spool lines left out


class LogShipper:
    """Ships one container's spool to its LogPath until the container's conmon is gone."""

    def __init__(self, container_id: str, spool_dir: Path, files: LogFiles, max_size: int, inotify: Inotify) -> None:
        self.container_id = container_id
        self._inotify = inotify
        self.files = files
        self.spool = Spool(spool_dir)
        self.writer = LogWriter(files, max_size)
        self._encoder = SpoolEncoder()
        self._watch: DirectoryWatch | None = None
        self._opened = False
        self._gone = False  # conmon has exited: ship what is left, then end
        self.ready = asyncio.Event()  # LogPath is open: readers may take a position
        self.done = asyncio.Event()  # everything shipped; no record will follow
        self._moved = asyncio.Event()
        self._position = WritePosition(0, 0)
        self.shipped_bytes = 0  # spool bytes consumed (for figures)
        # catch_up's bookkeeping: reads begun, the last begun before the spool was found empty
        self._reads = 0
        self._idle_through = 0
        self._idle = asyncio.Event()

    @property
    def position(self) -> WritePosition:
        """How far LogPath holds whole records: moved on the event loop after each write
        (a write in progress in a thread is not counted yet)."""
        return self._position

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    @property
    def finishing(self) -> bool:
        """conmon is gone: the shipper drains the spool and ends."""
        return self._gone

    async def moved(self, seen: WritePosition) -> None:
        """Return once the write position is past `seen`, or the shipper has finished."""
        while self.position == seen and not self.done.is_set():
            await self._moved.wait()

    def _publish(self) -> None:
        self._position = self.writer.position
        self._moved.set()
        self._moved = asyncio.Event()

    async def catch_up(self, timeout: float) -> None:
        """Return once what the spool held when asked is in LogPath (or after `timeout`):
        the shipper follows the monitor by an inotify round, and a `docker logs` right
        after the container wrote must show it. Returns at once when shipping has ended."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ready.wait()
                want = self._reads + 1  # a read that begins after this moment
                if self._watch is not None:
                    self._watch.wake()
                while self._idle_through < want and not self.done.is_set():
                    await self._idle.wait()

    def _went_idle(self, read: int) -> None:
        self._idle_through = read
        self._idle.set()
        self._idle = asyncio.Event()

    def writer_gone(self) -> None:
        """conmon exited: no more lines will come; drain and end."""
        self._gone = True
        if self._watch is not None:
            self._watch.wake()

    # -- the work --

    def _open(self) -> None:
        saved = self.spool.open()
        self.writer.open()
        if saved is not None:
            if self.writer.inode == saved.log_inode:
                self.writer.truncate(saved.log_size)
            else:
                # Rotated after the cursor was saved: the new LogPath holds only
                # records the cursor does not count yet.
                self.writer.truncate(0)
        # Saved before the first write too: records a kill leaves uncounted are cut off.
        self.spool.save(self.writer.inode, self.writer.position.size)

    def _read(self, final: bool) -> _Chunk:
        self.spool.notice()  # first: a newer file seen now means ours is complete
        spool = self.spool.read(final=final)
        if not spool:
            return _Chunk(b"", b"", 0)
        records, skipped = self._encoder.encode(spool)
        return _Chunk(records, spool, skipped)

    def _commit(self, records: bytes, spool_bytes: int) -> None:
        before = self.writer.position.size
        try:
            self.writer.append(records)
        except BaseException:
            with contextlib.suppress(OSError):
                self.writer.truncate(before)  # no torn record: the retry writes it whole
            raise
        self.spool.consumed(spool_bytes)
        self.spool.save(self.writer.inode, self.writer.position.size)

    def _finish_or_advance(self) -> _Chunk:
        chunk = self._read(True)
        if not chunk.spool:
            self.spool.advance()
            self.spool.save(self.writer.inode, self.writer.position.size)
        return chunk

    async def _ship(self, chunk: _Chunk) -> None:
        rest = chunk.records
        done = 0  # spool bytes of the records committed so far
        spool_lines: list[bytes] | None = None
        taken = 0  # spool lines committed so far (counted only when a rotation cuts in)
        while rest:
            if chunk.skipped:
                now, rest = rest, b""  # lines do not map one to one: no cut inside
            else:
                now, rest = self.writer.split(rest)
            if not now:
                await self.writer.rotate()
                self._publish()
                continue
            if rest:  # records map one to one to spool lines: count the cut's bytes
                if spool_lines is None:
                    spool_lines = chunk.spool.split(b"\n")
                count = now.count(b"\n")
                spool_bytes = sum(map(len, spool_lines[taken : taken + count])) + count
                taken += count
            else:
                spool_bytes = len(chunk.spool) - done
            done += spool_bytes
            await asyncio.to_thread(self._commit, now, spool_bytes)
            self._publish()
        if not chunk.records:  # only unreadable lines: step over them
            await asyncio.to_thread(self._commit, b"", len(chunk.spool))
        if chunk.skipped:
            log.warning("container %s: %d unreadable spool lines left out", self.container_id[:12], chunk.skipped)
        self.shipped_bytes += len(chunk.spool)

    async def run(self) -> None:
        """Ship until conmon is gone and the spool is drained; resumable after an error."""
        if not self._opened:
            await asyncio.to_thread(self._open)
            self._watch = self._inotify.watch(self.spool.directory)
            self._opened = True  # only once both are there: a retry opens again what failed
            self.ready.set()
            self._publish()
        async with asyncio.TaskGroup() as group:
            noticing = group.create_task(self._notice_new_files())
            try:
                await self._ship_until_gone()
            finally:
                noticing.cancel()

    async def _notice_new_files(self) -> None:
        """Hold each new spool file as soon as conmon renames it in, even while the
        shipping loop is busy (a compression to wait for, a slow disk): a burst of
        conmon rotations then loses nothing."""
        watch = self._inotify.watch(self.spool.directory, IN_MOVED_TO)
        try:
            while True:
                watch.drain()
                self.spool.notice()  # a few syscalls, on the loop: no thread hop to wait for
                await watch.changed()
        finally:
            watch.close()

    async def _ship_until_gone(self) -> None:
        watch = self._watch
        assert watch is not None
        while True:
            watch.drain()  # what happened so far is answered by the reads below
            gone = self._gone
            self._reads += 1
            read = self._reads
            chunk = await asyncio.to_thread(self._read, False)
            if chunk.spool:
                await self._ship(chunk)
                continue
            if self.spool.newer():
                # conmon went on to a newer file, so ours is complete; a read begun after
                # seeing that gets all of it. Then go on to the next.
                chunk = await asyncio.to_thread(self._finish_or_advance)
                if chunk.spool:
                    await self._ship(chunk)
                continue
            if gone:
                chunk = await asyncio.to_thread(self._read, True)  # a line cut by conmon's end
                if chunk.spool:
                    await self._ship(chunk)
                    continue
                return
            self._went_idle(read)
            await watch.changed()

    async def close(self, *, remove_spool: bool) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if remove_spool:
            await asyncio.to_thread(self.spool.remove)
        else:
            self.spool.close()
        await self.writer.aclose()
        self.done.set()
        self._publish()
        self._went_idle(self._reads)


class LogShipping:
    """The shippers of all running containers, in one TaskGroup (entered by the daemon).

    A shipper that fails (a full disk, say) is logged and retried from its cursor; it
    never takes the daemon down.
    """

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._inotify: Inotify | None = None  # one instance for every shipper's watches
        self._shippers: dict[str, LogShipper] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Self:
        self._inotify = Inotify()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # At daemon shutdown shippers stop where they are: their cursors are saved, and
        # the next daemon resumes them (containers keep running under conmon).
        for task in self._tasks.values():
            task.cancel()
        assert self._group is not None
        passed = (kind, exc, tb) if kind is None or issubclass(kind, asyncio.CancelledError) else (None, None, None)
        try:
            await self._group.__aexit__(*passed)  # the error on its way out stays unwrapped (tasks.py)
        finally:
            if self._inotify is not None:
                self._inotify.close()

    async def start(self, container_id: str, spool_dir: Path, files: LogFiles, max_size: int) -> LogShipper:
        """Start shipping a container's spool: once conmon has created the container (before
        `runtime start`), and again for each running container after a daemon restart (it
        resumes from the cursor). A shipper still draining the container's previous run is
        waited for first: it removes its spool when done."""
        current = self._shippers.get(container_id)
        if current is not None and not current.finished:
            if not current.finishing:
                return current
            await current.done.wait()
        assert self._group is not None, "LogShipping is not entered"
        assert self._inotify is not None
        shipper = LogShipper(container_id, spool_dir, files, max_size, self._inotify)
        self._shippers[container_id] = shipper
        self._tasks[container_id] = self._group.create_task(self._run(shipper), name=f"logs-{container_id[:12]}")
        return shipper

    async def _run(self, shipper: LogShipper) -> None:
        delay = _RETRY_FIRST
        try:
            while True:
                try:
                    await shipper.run()
                    break
                except Exception as exc:  # noqa: BLE001 - the shipper's edge: log, retry from the cursor
                    if not shipper.spool.directory.exists():
                        log.info("container %s: its run directory is gone: nothing more to ship", shipper.container_id[:12])
                        break  # the container was removed meanwhile
                    log.error("container %s: shipping its log failed (retrying): %r", shipper.container_id[:12], exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
            await shipper.close(remove_spool=True)
        except asyncio.CancelledError:
            await shipper.close(remove_spool=False)
            raise
        finally:
            if self._shippers.get(shipper.container_id) is shipper:
                del self._shippers[shipper.container_id]
                del self._tasks[shipper.container_id]

    async def finish(self, container_id: str) -> None:
        """The container's conmon has exited: ship the rest and remove the spool. Returns
        when LogPath holds everything (await it before `wait` answers: docker-py reads
        `logs()` right after `wait()`)."""
        shipper = self._shippers.get(container_id)
        if shipper is None:
            return
        shipper.writer_gone()
        await shipper.done.wait()

    async def drain(self, container_id: str, spool_dir: Path, files: LogFiles, max_size: int) -> None:
        """Ship what a stopped container's spool still holds (the daemon was down when it
        exited); nothing to do when there is no spool."""
        if container_id not in self._shippers and not await asyncio.to_thread(Spool(spool_dir).exists):
            return
        await self.start(container_id, spool_dir, files, max_size)
        await self.finish(container_id)

    async def discard(self, container_id: str, spool_dir: Path | None = None) -> None:
        """The container is being removed: stop shipping and delete its spool."""
        task = self._tasks.get(container_id)
        shipper = self._shippers.get(container_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if shipper is not None:
            await asyncio.to_thread(shipper.spool.remove)
        elif spool_dir is not None:
            await asyncio.to_thread(Spool(spool_dir).remove)

    def shipper(self, container_id: str) -> LogShipper | None:
        return self._shippers.get(container_id)

    async def catch_up(self, container_id: str, timeout: float = _CATCH_UP) -> None:
        """What the container has written so far, shipped into its LogPath (see LogShipper)."""
        shipper = self._shippers.get(container_id)
        if shipper is not None and not shipper.finished:
            await shipper.catch_up(timeout)

    def reader(self, container_id: str, files: LogFiles, query: LogQuery, follow: bool) -> LogReader:
        """The container's log for `docker logs` and attach's logs=1, opened now: a
        rotation, or the container's removal, after this takes nothing from the reader.
        With `follow`, new records follow while the container's shipper runs."""
        shipper = self._shippers.get(container_id)
        if shipper is not None and shipper.finished:
            shipper = None
        return LogReader(files, query, shipper, follow=follow and shipper is not None)


class LogReader:
    """An async iterator of record batches; aclose() it if it is not read to its end."""

    def __init__(self, files: LogFiles, query: LogQuery, live: LogShipper | None, *, follow: bool) -> None:
        self._files = files
        self._query = query
        self._window = LogWindow(query)
        self._live = live
        self._follow = follow
        self._sources: list[LogSource] = []
        self._fd = -1  # LogPath, held for following
        self._start = WritePosition(0, 0)
        self._opened = False
        if live is None or live.ready.is_set() or not follow:
            self._snapshot()
        self._iterator: AsyncGenerator[list[LogRecord], None] = self._batches()

    def _snapshot(self) -> None:
        end = None
        if self._live is not None and self._live.ready.is_set():
            # A running shipper bounds LogPath at what it has finished writing.
            self._start = self._live.position
            end = self._start.size
        self._sources = open_sources(self._files, end)
        last = self._sources[-1] if self._sources else None
        if self._follow and isinstance(last, PlainSource) and last.name == self._files.path.name:
            self._fd = os.dup(last.fd)
        self._opened = True

    def __aiter__(self) -> LogReader:
        return self

    async def __anext__(self) -> list[LogRecord]:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        await self._iterator.aclose()
        self._release()

    def __del__(self) -> None:
        self._release()  # a reader dropped unread: its fds are plain ints, close them

    def _release(self) -> None:
        close_sources(self._sources)
        self._sources = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _admitted(self, chunks: Iterator[bytes]) -> Iterator[list[LogRecord]]:
        for chunk in chunks:
            batch = self._window.admit(decode(chunk))
            if batch:
                yield batch
            if self._window.ended:
                return

    async def _drive(self, batches: Iterator[list[LogRecord]]) -> AsyncIterator[list[LogRecord]]:
        """A blocking iterator of batches, advanced in a thread one batch at a time."""
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            yield batch

    async def _batches(self) -> AsyncGenerator[list[LogRecord], None]:
        try:
            if not self._opened:
                assert self._live is not None
                await self._live.ready.wait()
                self._snapshot()
            async for batch in self._drive(read_history(self._sources, self._query, self._window)):
                yield batch
            close_sources(self._sources)
            self._sources = []
            if self._follow and self._live is not None and not self._window.ended:
                async for batch in self._follow_live(self._live):
                    yield batch
        finally:
            self._release()

    async def _follow_live(self, shipper: LogShipper) -> AsyncIterator[list[LogRecord]]:
        seq, offset = self._start.seq, self._start.size
        if self._fd < 0:  # LogPath did not exist at the snapshot: it does now
            self._fd = os.open(self._files.path, os.O_RDONLY | os.O_CLOEXEC)
            seq, offset = shipper.position.seq, 0
        while not self._window.ended:
            position = shipper.position
            if position.seq == seq:
                if position.size > offset:
                    async for batch in self._drive(self._admitted(read_lines(self._fd, offset, position.size))):
                        yield batch
                    offset = position.size
                    continue
                if shipper.finished:
                    return
                await shipper.moved(position)
                continue
            # Rotated since: take the files now (no await between reading the position and
            # opening them), then finish the old file, the missed ones, and go on.
            missed: list[LogSource] = []
            for s in range(seq + 1, position.seq):
                k = position.seq - s
                found = open_rotated(self._files, k) if k < self._files.max_file else None
                if found is None:
                    log.warning("a follower of %s missed a rotated file", self._files.path)
                else:
                    missed.append(found)
            old = self._fd
            self._fd = os.open(self._files.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                old_end = os.fstat(old).st_size
                async for batch in self._drive(self._admitted(read_lines(old, offset, old_end))):
                    yield batch
                for source in missed:
                    async for batch in self._drive(self._admitted(source.chunks())):
                        yield batch
            finally:
                os.close(old)
                close_sources(missed)
            seq, offset = position.seq, 0
