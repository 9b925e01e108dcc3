"""A container's json-file log on disk: LogPath and its rotated files, read oldest first.

Names as dockerd's: `<id>-json.log`, then `<id>-json.log.1` (the newest rotated file) to
`.<max-file - 1>`, with `.gz` when compressed. A gzip file carries the time of its last
record in its header (`{"lastTime":...}` in FEXTRA, as dockerd writes it), so a `since`
after it skips the file without inflating it.

Reading is in blocks of about a megabyte, whatever the size of the log: memory stays
flat, and `tail` reads backwards from the end (only inflating a gzip file to count it).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard.model.logs import LogDriver, LogOptions, LogQuery, LogRecord, LogWindow, stamp_ns
from dockyard.runtime.jsonlog import decode, decode_runs

BLOCK = 1 << 20


@dataclass(frozen=True)
class LogFiles:
    """Where one container's log lives, and how many rotated files may be beside it."""

    path: Path
    max_file: int = 1
    compress: bool = False

    @staticmethod
    def of(container_dir: Path, container_id: str, options: LogOptions) -> LogFiles | None:
        path = log_path(container_dir, container_id, options.driver)
        return None if path is None else LogFiles(path, options.max_file, options.compress)

    def rotated(self, k: int, *, gz: bool = False) -> Path:
        return self.path.with_name(f"{self.path.name}.{k}{'.gz' if gz else ''}")


def log_path(container_dir: Path, container_id: str, driver: LogDriver) -> Path | None:
    """dockerd's places: `<container dir>/<id>-json.log` for json-file (what inspect's
    LogPath names and kubelet reads), `<container dir>/local-logs/container.log` for local."""
    if driver is LogDriver.JSON_FILE:
        return container_dir / f"{container_id}-json.log"
    if driver is LogDriver.LOCAL:
        return container_dir / "local-logs" / "container.log"
    return None


def inspect_log_path(container_dir: Path, container_id: str, driver: LogDriver) -> str:
    """inspect's LogPath: dockerd sets it for json-file only."""
    return str(log_path(container_dir, container_id, driver) or "") if driver is LogDriver.JSON_FILE else ""


# ---- sources: one file each --------------------------------------------------------------


class LogSource(Protocol):
    name: str

    def last_ns(self) -> int | None:
        """The time of the file's last record when it is cheap to know, else None."""

    def tail(self, count: int) -> int:
        """Keep only the last `count` records; returns how many the file holds of them."""

    def chunks(self) -> Iterator[bytes]:
        """The kept records as blocks of whole lines."""

    def close(self) -> None: ...


def read_lines(fd: int, start: int, end: int) -> Iterator[bytes]:
    """Blocks of whole lines from [start, end) of a file; a last line without its newline
    (still being written, or cut by a crash) is not returned."""
    pos, rest = start, b""
    while pos < end:
        data = os.pread(fd, min(BLOCK, end - pos), pos)
        if not data:
            return
        pos += len(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest += data
            continue
        yield rest + data[:cut]
        rest = data[cut:]


class PlainSource:
    """A plain file, read by pread on an fd that stays valid after a rotation or removal."""

    def __init__(self, fd: int, name: str, end: int | None = None) -> None:
        self.fd = fd
        self.name = name
        self.start = 0
        self.end = os.fstat(fd).st_size if end is None else end

    def last_ns(self) -> int | None:
        if self.end <= self.start:
            return None
        data = os.pread(self.fd, min(65536, self.end - self.start), self.end - min(65536, self.end - self.start))
        lines = data.split(b"\n")
        last = lines[-2] if len(lines) >= 2 and not lines[-1] else None
        if last is None:
            return None
        records = decode(last + b"\n")
        return records[0].time_ns if records else None

    def tail(self, count: int) -> int:
        # Newlines counted back from the end: the first ends the last record, and the
        # record `count` from the end starts after newline `count + 1`.
        seen, end, pos = 0, self.start, self.end
        while pos > self.start:
            step = min(BLOCK, pos - self.start)
            pos -= step
            block = os.pread(self.fd, step, pos)
            i = len(block)
            while (i := block.rfind(b"\n", 0, i)) >= 0:
                seen += 1
                if seen == 1:
                    end = pos + i + 1
                if seen == count + 1:
                    self.start, self.end = pos + i + 1, end
                    return count
        self.end = end
        return seen

    def chunks(self) -> Iterator[bytes]:
        return read_lines(self.fd, self.start, self.end)

    def close(self) -> None:
        os.close(self.fd)


def gzip_last_time(head: bytes) -> int | None:
    """The `lastTime` dockerd keeps in a rotated gzip file's FEXTRA field."""
    if len(head) < 12 or head[:3] != b"\x1f\x8b\x08" or not head[3] & 0x04:
        return None
    size = int.from_bytes(head[10:12], "little")
    try:
        doc = json.loads(head[12 : 12 + size])
    except ValueError:
        return None
    stamp = doc.get("lastTime") if isinstance(doc, dict) else None
    return stamp_ns(stamp.encode()) or None if isinstance(stamp, str) else None


class GzipSource:
    """A rotated, compressed file: inflated as it is read, a block at a time."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self._skip = 0  # records to pass over before the kept ones
        self._keep: int | None = None

    def last_ns(self) -> int | None:
        return gzip_last_time(os.pread(self.fd, 4096, 0))

    def _inflated(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj(31)
        pos = 0
        while not inflater.eof:
            data = inflater.unconsumed_tail or os.pread(self.fd, BLOCK, pos)
            if not inflater.unconsumed_tail:
                if not data:
                    return  # cut short: keep what inflated
                pos += len(data)
            try:
                out = inflater.decompress(data, BLOCK)
            except zlib.error:
                return
            if out:
                yield out

    def tail(self, count: int) -> int:
        total = sum(block.count(b"\n") for block in self._inflated())
        kept = max(0, min(count, total))
        self._skip, self._keep = total - kept, kept
        return kept

    def chunks(self) -> Iterator[bytes]:
        skip, rest = self._skip, b""
        for block in self._inflated():
            data = rest + block
            while skip and data:
                i = data.find(b"\n")
                if i < 0:
                    break
                data, skip = data[i + 1 :], skip - 1
            cut = data.rfind(b"\n") + 1
            if skip or cut == 0:
                rest = data
                continue
            yield data[:cut]
            rest = data[cut:]

    def close(self) -> None:
        os.close(self.fd)


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def open_rotated(files: LogFiles, k: int) -> LogSource | None:
    """Rotated file `k` (1 = the newest), plain or gzip. The plain name is tried first: a
    compression in progress removes it only after the gzip file is complete."""
    fd = _open(files.rotated(k))
    if fd is not None:
        return PlainSource(fd, files.rotated(k).name)
    fd = _open(files.rotated(k, gz=True))
    return None if fd is None else GzipSource(fd, files.rotated(k, gz=True).name)


def open_sources(files: LogFiles, current_end: int | None = None) -> list[LogSource]:
    """Every file of the log, oldest first, opened now (nothing is read yet): a rotation or
    the container's removal after this does not take anything away from the reader.

    `current_end` bounds LogPath at what its writer has finished writing.
    """
    sources: list[LogSource] = []
    try:
        for k in range(files.max_file - 1, 0, -1):
            found = open_rotated(files, k)
            if found is not None:
                sources.append(found)
        fd = _open(files.path)
        if fd is not None:
            sources.append(PlainSource(fd, files.path.name, current_end))
    except BaseException:
        close_sources(sources)
        raise
    return sources


def close_sources(sources: list[LogSource]) -> None:
    for source in sources:
        source.close()


def plan_tail(sources: list[LogSource], count: int | None) -> list[LogSource]:
    """The sources that hold the last `count` records, each cut to its share (blocking)."""
    if count is None:
        return sources
    kept: list[LogSource] = []
    remaining = count
    for source in reversed(sources):
        if remaining <= 0:
            break
        remaining -= source.tail(remaining)
        kept.append(source)
    return kept[::-1]


def read_history(sources: list[LogSource], query: LogQuery, window: LogWindow) -> Iterator[list[LogRecord]]:
    """The records the query wants, in batches, oldest first (blocking: iterate it in a
    thread). The window is left as the history ends, for a follow to go on with it."""
    for source in plan_tail(sources, query.tail_count):
        since = window.since_pending
        if since:
            last = source.last_ns()
            if last is not None and last < since:
                continue
        runs = query.runs_will_do
        for chunk in source.chunks():
            batch = window.admit((decode_runs(chunk) if runs else None) or decode(chunk))
            if batch:
                yield batch
            if window.ended:
                return


# follow, open_log, read_batch, read_records, tail_offset: conmon's k8s-file, read by
# today's engine and routes until they move to runtime.logship.
__all__ = [
    "BLOCK",
    "GzipSource",
    "LogFiles",
    "LogQuery",
    "LogRecord",
    "LogSource",
    "PlainSource",
    "close_sources",
    "gzip_last_time",
    "inspect_log_path",
    "log_path",
    "open_rotated",
    "open_sources",
    "plan_tail",
    "read_history",
    "read_lines",
]
