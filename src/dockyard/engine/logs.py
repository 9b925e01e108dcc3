"""Container logs: dockerd's json-file at LogPath, shipped from conmon's spool, and read back.

conmon writes each container's output to a spool in the exec root; the log shipping
component (runtime/logship.py) turns it into dockerd's json-file lines at LogPath, rotated
as the container's log options say, and resumes from its cursor after a daemon restart, so
nothing written while the daemon was away is lost. `docker logs` reads LogPath and its
rotated files, and follows the shipper for new records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.table import ContainerTable
from dockyard.errors import Conflict, InvalidArgument, Unsupported
from dockyard.model.containers import Container, ContainerStatus, LogConfig
from dockyard.model.logs import (
    READ_NOT_SUPPORTED,
    LogOptions,
    LogQuery,
    LogRecord,
    log_options,
    stream_runs,
)
from dockyard.runtime.logfile import LogFiles, inspect_log_path
from dockyard.runtime.logship import LogShipping
from dockyard.runtime.spool import SPOOL_MAX, SPOOL_NAME

logger = logging.getLogger(__name__)

_ENDED_WAIT = 5.0  # seconds an exit waits for its last log lines to be written

__all__ = ["LogQuery", "LogRecord", "LogService", "LogStream", "parse_tail", "parse_unix_time", "stream_runs"]


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
    """`tail`: a count, or all. As dockerd, what is not a number means all."""
    try:
        count = int(value)
    except ValueError:
        return None
    return count if count >= 0 else None


@dataclass(frozen=True)
class LogStream:
    container: Container  # as it was when the log was opened
    batches: AsyncIterator[list[LogRecord]]


@dataclass(frozen=True)
class ContainerLog:
    """Where one container's log goes this run: its spool, and its files (None: `none`)."""

    options: LogOptions
    files: LogFiles | None
    spool_dir: Path

    @property
    def spool(self) -> Path | None:
        """Where conmon writes the output (None: it keeps none)."""
        return self.spool_dir / SPOOL_NAME if self.files is not None else None

    # conmon starts a new spool file past this size (the shipper follows it): what bounds
    # the output kept while the daemon is away.
    spool_max: int = SPOOL_MAX


class LogService:
    def __init__(
        self,
        table: ContainerTable,
        shipping: LogShipping,
        files: Callable[[str], ContainerFiles],
        defaults: LogConfig,
    ) -> None:
        self._table = table
        self._shipping = shipping
        self._files = files
        self._defaults = defaults  # daemon.json log-driver / log-opts

    # ---- create and inspect ------------------------------------------------------------

    def config_for_create(self, requested: LogConfig) -> LogConfig:
        """The log config a new container keeps: checked, with the daemon's defaults merged
        in as dockerd stores them (400 with dockerd's words)."""
        options = log_options(requested.type, requested.config, self._defaults)
        return LogConfig(options.driver.value, options.config)

    def of(self, c: Container) -> ContainerLog:
        options = log_options(c.spec.host.log_config.type, c.spec.host.log_config.config, self._defaults)
        files = self._files(c.id)
        return ContainerLog(options, LogFiles.of(files.data, c.id, options), files.bundle)

    def log_path(self, c: Container) -> str:
        """inspect's LogPath: the json-file log, kubelet reads it directly; "" otherwise."""
        return inspect_log_path(self._files(c.id).data, c.id, self.of(c).options.driver)

    # ---- the container's runs ----------------------------------------------------------

    async def started(self, c: Container, log: ContainerLog) -> None:
        """conmon created the container (its process waits for start): ship its spool."""
        if log.files is not None:
            await self._shipping.start(c.id, log.spool_dir, log.files, log.options.max_size)

    async def failed_start(self, c: Container) -> None:
        await self._shipping.discard(c.id)

    async def ended(self, c: Container) -> None:
        """Its conmon exited: LogPath holds everything once this returns (before `wait`
        answers). A run the daemon did not see end ships what its spool still holds."""
        log = self.of(c)
        if self._shipping.shipper(c.id) is not None:
            finishing = self._shipping.finish(c.id)
        elif log.files is not None:
            finishing = self._shipping.drain(c.id, log.spool_dir, log.files, log.options.max_size)
        else:
            return
        try:
            # Bounded: a log that cannot be written (a full disk) must not hold the exit back.
            # Only the waiting is given up: its shipper (a task of its own) goes on trying,
            # and the spool keeps what it has not written.
            async with asyncio.timeout(_ENDED_WAIT):
                await finishing
        except TimeoutError:
            logger.warning("container %s: its log is not all written yet; the exit is recorded anyway", c.id[:12])

    async def resumed(self, c: Container) -> None:
        """A running container adopted at start-up: its shipper resumes from its cursor."""
        await self.started(c, self.of(c))

    async def removed(self, c: Container) -> None:
        await self._shipping.discard(c.id, self._files(c.id).bundle)

    # ---- reading -----------------------------------------------------------------------

    async def open(self, ref: str, query: LogQuery, follow: bool) -> LogStream:
        c = self._table.resolve(ref)
        if not (query.stdout or query.stderr):
            raise InvalidArgument("You must choose at least one stream")
        if c.state.status in (ContainerStatus.DEAD, ContainerStatus.REMOVING):
            raise Conflict("can not get logs from container which is dead or marked for removal")
        # What the container wrote before this request is in the answer (`start` then `logs`).
        await self._shipping.catch_up(c.id)
        return LogStream(c, self.records(c, query, follow))

    def records(self, c: Container, query: LogQuery, follow: bool = False) -> AsyncIterator[list[LogRecord]]:
        """The log opened now, before the caller answers: a removal right after (docker-py
        reads `run` output only after it removed the container) cannot lose it."""
        log = self.of(c)
        if log.files is None:
            raise Unsupported(READ_NOT_SUPPORTED)
        return self._shipping.reader(c.id, log.files, query, follow and c.state.running)
