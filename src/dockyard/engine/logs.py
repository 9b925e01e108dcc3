"""`docker logs`: read a container's log file, optionally following it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dockyard.engine.containers import ContainerService
from dockyard.errors import InvalidArgument
from dockyard.runtime.logfile import LogQuery, LogRecord, follow, open_log, read_batch, tail_offset


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


class LogService:
    def __init__(self, containers: ContainerService) -> None:
        self._containers = containers

    def records(self, ref: str, query: LogQuery, follow_new: bool) -> AsyncIterator[LogRecord]:
        """The log opened now, before the caller answers: a removal right after
        (docker-py reads `run` output only after it removed the container) cannot lose it."""
        c = self._containers.resolve(ref)
        log_file = open_log(self._containers.files(c.id).log)

        def finished() -> bool:
            current = self._containers.get(c.id)
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
