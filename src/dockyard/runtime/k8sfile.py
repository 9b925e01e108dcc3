"""conmon's k8s-file log read directly: `<RFC3339 time> <stdout|stderr> <F|P> <text>`.

`P` marks a partial line (the text had no newline yet); `F` a full one.

Legacy: today's engine still points conmon at LogPath and reads it with these. Once the
engine ships logs with runtime.logship (LogPath in dockerd's json-file format), this
module goes; runtime.spool reads the k8s-file spool there.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.model.logs import LogQuery, LogRecord

_POLL = 0.05
_BATCH = 1 << 20


def parse_line(line: bytes) -> LogRecord | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1], parts[2]
    text = parts[3] if len(parts) == 4 else b""
    if stream not in (b"stdout", b"stderr"):
        return None
    return LogRecord(stream.decode(), text + (b"" if tag == b"P" else b"\n"), stamp)


def wants(query: LogQuery, record: LogRecord) -> bool:
    if record.stream == "stdout" and not query.stdout:
        return False
    if record.stream == "stderr" and not query.stderr:
        return False
    if query.since_ns and record.time_ns < query.since_ns:
        return False
    return not (query.until_ns and record.time_ns > query.until_ns)


def _complete_lines(data: bytes) -> tuple[list[bytes], bytes]:
    lines = data.split(b"\n")
    return [line for line in lines[:-1] if line], lines[-1]


# A log is read by path, or through a file opened earlier: an open file keeps
# its content readable after the container (and its directory) is removed.
LogSource = Path | BinaryIO


def open_log(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


def _read_from(source: LogSource, offset: int, limit: int = -1) -> bytes | None:
    if isinstance(source, Path):
        try:
            with source.open("rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return None
    source.seek(offset)
    return source.read(limit)


def read_records(source: LogSource, query: LogQuery) -> tuple[list[LogRecord], int]:
    """What the file holds now (blocking), and the offset to follow from."""
    data = _read_from(source, 0)
    if data is None:
        return [], 0
    lines, rest = _complete_lines(data)
    offset = len(data) - len(rest)
    records: Iterator[LogRecord] = (r for r in map(parse_line, lines) if r is not None and wants(query, r))
    if query.tail is not None:
        if query.tail <= 0:
            return [], offset
        return list(deque(records, maxlen=query.tail)), offset
    return list(records), offset


def read_batch(source: BinaryIO, offset: int, query: LogQuery) -> tuple[list[LogRecord], int]:
    """The records in about the next megabyte after `offset` (blocking), and where to go on.

    Only whole lines are taken; an empty batch means the file holds nothing more yet.
    Reading in batches keeps memory flat however large a log grows.
    """
    source.seek(offset)
    lines = source.readlines(_BATCH)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # still being written
    records = []
    for line in lines:
        offset += len(line)
        record = parse_line(line)
        if record is not None and wants(query, record):
            records.append(record)
    return records, offset


def tail_offset(source: BinaryIO, query: LogQuery, count: int) -> int:
    """Where the last `count` records the query wants begin (blocking), found by reading
    backwards from the end: `docker logs --tail 10` of a huge log reads only its end."""
    end = source.seek(0, os.SEEK_END)
    if count <= 0:
        return end
    pos, buffer = end, b""
    while pos > 0:
        step = min(_BATCH, pos)
        pos -= step
        source.seek(pos)
        buffer = source.read(step) + buffer
        lines = buffer.split(b"\n")
        # lines[0] may be cut by the block edge (unless at the start); lines[-1] is unfinished.
        whole = lines[1:-1] if pos > 0 else lines[:-1]
        found, start = 0, len(buffer) - len(lines[-1])
        for line in reversed(whole):
            start -= len(line) + 1
            record = parse_line(line)
            if record is not None and wants(query, record):
                found += 1
                if found == count:
                    return pos + start
    return 0


async def follow(
    source: LogSource, offset: int, query: LogQuery, finished: Callable[[], bool]
) -> AsyncIterator[LogRecord]:
    """New records appended after `offset`, until `finished()` and the file is drained."""
    pending = b""
    while True:
        done = finished()
        data = _read_from(source, offset, _BATCH)
        if data is None:
            return
        offset += len(data)
        lines, pending = _complete_lines(pending + data)
        for line in lines:
            record = parse_line(line)
            if record is None:
                continue
            if query.until_ns and record.time_ns > query.until_ns:
                return
            if wants(query, record):
                yield record
        if done and not data:
            return
        if len(data) < _BATCH:
            await asyncio.sleep(_POLL)
