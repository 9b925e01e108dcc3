"""`docker logs` and attach's replay: a container's log, read and optionally followed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.table import ContainerTable
from dockyard.errors import InvalidArgument
from dockyard.model.containers import Container
from dockyard.runtime.logfile import LogQuery, LogRecord, follow, open_log, read_batch, tail_offset

__all__ = ["LogQuery", "LogRecord", "LogService", "LogStream", "parse_tail", "parse_unix_time"]


def parse_unix_time(value: str) -> int:
    """'1700000000', '1700000000.5' or '' -> unix nanoseconds (0 = unset)."""
    if not value:
        return 0
    seconds, _, fraction = value.partition(".")
    try:
        return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])
    except ValueError as exc:
        raise InvalidArgument(f"invalid time value {value!r}") from exc


def parse_tail(value: str) -> int | None:
    if value in ("", "all"):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidArgument(f"invalid tail value {value!r}") from exc


@dataclass(frozen=True)
class LogStream:
    container: Container  # as it was when the log was opened
    records: AsyncIterator[LogRecord]


class LogService:
    def __init__(self, table: ContainerTable, files: Callable[[str], ContainerFiles]) -> None:
        self._table = table
        self._files = files

    def open(self, ref: str, query: LogQuery, follow_new: bool) -> LogStream:
        c = self._table.resolve(ref)
        return LogStream(c, self.records(c, query, follow_new))

    def records(self, c: Container, query: LogQuery, follow_new: bool) -> AsyncIterator[LogRecord]:
        """The log opened now, before the caller answers: a removal right after
        (docker-py reads `run` output only after it removed the container) cannot lose it."""
        log_file = open_log(self._files(c.id).log)

        def finished() -> bool:
            current = self._table.get(c.id)
            return current is None or not current.state.running

        async def stream() -> AsyncIterator[LogRecord]:
            if log_file is None:
                return
            with log_file:
                offset = 0
                if query.tail is not None:
                    offset = await asyncio.to_thread(tail_offset, log_file, query, query.tail)
                while True:
                    batch, after = await asyncio.to_thread(read_batch, log_file, offset, query)
                    for record in batch:
                        yield record
                    if after == offset:
                        break  # nothing more in the file yet
                    offset = after
                if follow_new:
                    async for record in follow(log_file, offset, query, finished):
                        yield record

        return stream()
