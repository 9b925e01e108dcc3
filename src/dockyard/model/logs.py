"""Container logs as values: the driver and its options, a query, a record.

The options follow dockerd's json-file and local drivers (names, units, wording of the
errors), with one difference on purpose: logs are capped by default (5 files of 20 MiB)
where dockerd lets a json-file log grow without bound (moby#8911).
"""

from __future__ import annotations

import enum
import functools
import itertools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import quote_plus

from dockyard.errors import InvalidArgument
from dockyard.model.containers import LogConfig
from dockyard.model.goparsers import from_human_size, go_atoi, go_parse_bool, ram_in_bytes
from dockyard.model.times import format_ns, parse_ns


class LogDriver(enum.StrEnum):
    JSON_FILE = "json-file"
    LOCAL = "local"  # here the same on-disk format as json-file (dockerd's is protobuf)
    NONE = "none"


DEFAULT_DRIVER = LogDriver.JSON_FILE
DEFAULT_MAX_SIZE = 20 * 1024 * 1024  # local's default in dockerd; ours for json-file too
DEFAULT_MAX_FILE = 5

# Accepted by every driver and filtered out before the driver's own check, as in dockerd.
# `mode`/`max-buffer-size` change nothing here: conmon never blocks a container on its log.
_BUILTIN_OPTS = frozenset({"mode", "max-buffer-size"})
_CACHE_OPTS = frozenset({"cache-disabled", "cache-max-file", "cache-max-size", "cache-compress",
                         "cache-labels", "cache-labels-regex", "cache-env", "cache-env-regex",
                         "cache-tag"})  # fmt: skip
# Attributes for every record (`--log-opt labels=...`): accepted, not yet written.
_ATTR_OPTS = frozenset({"env", "env-regex", "labels", "labels-regex", "tag"})
_FILE_OPTS = frozenset({"max-file", "max-size", "compress"}) | _ATTR_OPTS


@dataclass(frozen=True)
class LogOptions:
    """How one container's log is kept: the driver, and the rotation in force."""

    driver: LogDriver = DEFAULT_DRIVER
    max_size: int = DEFAULT_MAX_SIZE  # a file is rotated once it has reached this size
    max_file: int = DEFAULT_MAX_FILE  # files kept, the one being written included
    compress: bool = False  # rotated files gzipped (`<log>.1.gz`, ...)
    # What inspect shows as HostConfig.LogConfig.Config: the user's options merged with the
    # daemon's defaults, as dockerd stores them at create.
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def kept(self) -> bool:
        """Whether a log is written at all (`none` keeps nothing, and cannot be read)."""
        return self.driver is not LogDriver.NONE


# ---- options ---------------------------------------------------------------------------


def _driver(name: str) -> LogDriver:
    try:
        return LogDriver(name)
    except ValueError:
        raise InvalidArgument(f"logger: no log driver named '{name}' is registered") from None


def _check_common(config: Mapping[str, str]) -> None:
    """What dockerd's ValidateLogOpts checks before the driver's own validator."""
    mode = config.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidArgument(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in config:
        if mode != "non-blocking":
            raise InvalidArgument("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
        try:
            ram_in_bytes(config["max-buffer-size"])
        except ValueError as exc:
            raise InvalidArgument(f"error parsing option max-buffer-size: {exc}") from None
    disabled = config.get("cache-disabled", "")
    if disabled:
        try:
            go_parse_bool(disabled)
        except ValueError:
            raise InvalidArgument(f"invalid value for option cache-disabled: {disabled}") from None


def _unknown(config: Mapping[str, str]) -> str | None:
    allowed = _FILE_OPTS | _BUILTIN_OPTS | _CACHE_OPTS
    return next((k for k in sorted(config) if k not in allowed), None)


def _json_file(config: Mapping[str, str]) -> tuple[int, int, bool]:
    """jsonfilelog.New's checks, in its order; unset values take dockyard's defaults."""
    max_size = -1
    if "max-size" in config:
        try:
            max_size = from_human_size(config["max-size"])
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if max_size <= 0:
            raise InvalidArgument("max-size must be a positive number")
    max_file = 0
    if "max-file" in config:
        try:
            max_file = go_atoi(config["max-file"])
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
    if max_size == -1:
        max_size = DEFAULT_MAX_SIZE  # dockerd: no limit at all
    if max_file == 0:
        # dockerd keeps one file when only max-size is set; with neither, our default cap.
        max_file = 1 if "max-size" in config else DEFAULT_MAX_FILE
    compress = False
    if "compress" in config:
        try:
            compress = go_parse_bool(config["compress"])
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if compress and max_file == 1:
            raise InvalidArgument("compress cannot be true when max-file is less than 2 or max-size is not set")
    return max_size, max_file, compress


def _local(config: Mapping[str, str]) -> tuple[int, int, bool]:
    """local's newConfig and validateConfig: 20 MiB x 5, compressed, unless told otherwise."""
    max_size, max_file, compress = DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, True
    if "max-size" in config:
        value = config["max-size"]
        try:
            max_size = from_human_size(value)
        except ValueError as exc:
            raise InvalidArgument(f"invalid value for max-size: {value}: {exc}") from None
    if "max-file" in config:
        value = config["max-file"]
        try:
            max_file = go_atoi(value)
        except ValueError as exc:
            raise InvalidArgument(f"invalid value for max-file: {value}: {exc}") from None
    if "compress" in config:
        try:
            compress = go_parse_bool(config["compress"])
        except ValueError as exc:
            raise InvalidArgument(f"invalid boolean value for compress: {exc}") from None
    if max_size < 0:
        raise InvalidArgument("max-size must not be negative")
    if max_file < 0:
        raise InvalidArgument("max-file must not be negative")
    if compress and max_file <= 1:
        raise InvalidArgument("compression cannot be enabled when max file count is 1")
    return max_size, max(max_file, 1), compress


def log_options(driver: str, config: Mapping[str, str], defaults: LogConfig | None = None) -> LogOptions:
    """A container's log options from its HostConfig.LogConfig and the daemon's defaults
    (daemon.json `log-driver`/`log-opts`), checked as dockerd checks them at create.

    As dockerd: no driver means the daemon's; the daemon's options fill in the ones not
    given when the driver is the daemon's own. Raises InvalidArgument (400) with dockerd's
    wording. The engine stores `LogConfig(result.driver, result.config)` with the
    container, and at each start calls this again on what it stored (no defaults).
    """
    defaults = defaults or LogConfig()
    default_driver = defaults.type or DEFAULT_DRIVER
    name = driver or default_driver
    merged = dict(config)
    if name == default_driver:
        for key, value in defaults.config.items():
            merged.setdefault(key, value)
    for key, value in defaults.config.items():  # logcache.MergeDefaultLogConfig
        if key in _CACHE_OPTS:
            merged.setdefault(key, value)
    frozen = MappingProxyType(merged)
    chosen = _driver(name)
    if chosen is LogDriver.NONE:
        return LogOptions(driver=chosen, max_size=0, max_file=0, config=frozen)
    _check_common(merged)
    unknown = _unknown(merged)
    if unknown is not None:
        if chosen is LogDriver.JSON_FILE:
            raise InvalidArgument(f"unknown log opt '{unknown}' for json-file log driver")
        raise InvalidArgument(f"unknown log opt '{unknown}' for log driver {chosen}")
    max_size, max_file, compress = (_json_file if chosen is LogDriver.JSON_FILE else _local)(merged)
    return LogOptions(chosen, max_size, max_file, compress, frozen)


def daemon_log_config(driver: str, config: Mapping[str, str]) -> LogConfig:
    """daemon.json's `log-driver` and `log-opts`, checked at daemon start as dockerd does."""
    try:
        if config:
            log_options(driver, config)
        else:
            _driver(driver or DEFAULT_DRIVER)
    except InvalidArgument as exc:
        raise InvalidArgument(f"failed to set log opts: {exc.message}") from None
    return LogConfig(driver or DEFAULT_DRIVER, MappingProxyType(dict(config)))


# dockerd's ErrReadLogsNotSupported (a 501) for `docker logs` of a `none` container.
READ_NOT_SUPPORTED = "configured logging driver does not support reading"


# ---- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    """What `docker logs` asks for. As dockerd: `tail` takes the last records of the files
    first; then `since` drops records until the first one at or after it (later ones pass
    even if their clocks went back), `until` ends the stream at the first record after it,
    and the stream choice filters what remains."""

    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0  # 0 = from the start
    until_ns: int = 0  # 0 = no end
    tail: int | None = None  # None (or negative) = all records
    # The reader may hand out runs of one stream joined into one record, without a time:
    # for reads that need neither -t nor --details nor per-record frames.
    joined: bool = False

    @property
    def runs_will_do(self) -> bool:
        """Nothing in the query needs records one by one (or their times)."""
        return self.joined and not self.since_ns and not self.until_ns and self.tail_count is None

    @property
    def tail_count(self) -> int | None:
        return None if self.tail is None or self.tail < 0 else self.tail


_FRACTION_ZEROS = b"000000000"


@functools.lru_cache(maxsize=4096)
def _epoch_seconds(head: bytes) -> int:
    """'2026-12-01T10:00:00' (UTC) -> unix seconds; records of one second share it."""
    return int(datetime.fromisoformat(head.decode("ascii")).replace(tzinfo=UTC).timestamp())


def stamp_ns(stamp: bytes) -> int:
    """An RFC 3339 time from a log file -> unix nanoseconds (0 when unreadable).

    Ours are UTC with `Z` and a fraction of 0-9 digits: parsed without datetime per record.
    """
    if len(stamp) >= 20 and stamp[-1:] == b"Z" and stamp[19:20] in (b".", b"Z"):
        fraction = stamp[20:-1]
        if len(fraction) <= 9 and (not fraction or fraction.isdigit()):
            try:
                seconds = _epoch_seconds(stamp[:19])
            except ValueError:
                return 0
            return seconds * 1_000_000_000 + (int(fraction + _FRACTION_ZEROS[len(fraction):]) if fraction else 0)
    return parse_ns(stamp.decode("ascii", "replace"))


class LogRecord(NamedTuple):
    """One record of a container's log.

    A NamedTuple rather than a frozen dataclass: `docker logs` of a big log makes a million
    of these a second, and a tuple is built three times faster; it is just as immutable.
    """

    stream: str  # "stdout" | "stderr"
    data: bytes  # the bytes the container wrote; a full line ends with b"\n", a partial one not
    stamp: bytes  # the time as the file holds it (RFC 3339, UTC)
    attrs: tuple[tuple[str, str], ...] = ()  # `--log-opt labels/env/tag` attributes, sorted

    @property
    def time_ns(self) -> int:
        return stamp_ns(self.stamp)

    def fixed_stamp(self) -> bytes:
        """The time as `docker logs -t` prints it: nine fraction digits, UTC
        (`2026-12-01T10:00:00.120000000Z`); fast for our own files' stamps."""
        s = self.stamp
        if len(s) >= 20 and s[-1:] == b"Z" and s[19:20] in (b".", b"Z") and len(s) <= 30:
            fraction = s[20:-1]
            return s[:19] + b"." + fraction + _FRACTION_ZEROS[len(fraction):] + b"Z"
        return format_ns(self.time_ns).encode()

    def details(self) -> bytes:
        """What `docker logs --details` puts before the data: `k=v,k2=v2 ` (just a space
        when there are no attributes), query-escaped as dockerd does."""
        return ",".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in self.attrs).encode() + b" "


class LogWindow:
    """The query applied to records as they are read, batch by batch, in file order.

    Pure but stateful across batches: `since` is met once, and `until` ends the read
    (`ended`) for the rest of the history and any follow after it, as dockerd's forwarder.
    """

    def __init__(self, query: LogQuery) -> None:
        self._since = query.since_ns
        self._until = query.until_ns
        self._streams: str | None = None  # both
        if not (query.stdout and query.stderr):
            self._streams = "stdout" if query.stdout else "stderr" if query.stderr else ""
        self.ended = False

    @property
    def since_pending(self) -> int:
        """The `since` still to be met (0 once met, or when none was asked)."""
        return self._since

    def admit(self, batch: list[LogRecord]) -> list[LogRecord]:
        if self.ended:
            return []
        if self._since:
            since = self._since
            first = next((i for i, r in enumerate(batch) if r.time_ns >= since), None)
            if first is None:
                return []
            self._since = 0
            batch = batch[first:]
        if self._until:
            until = self._until
            end = next((i for i, r in enumerate(batch) if r.time_ns > until), None)
            if end is not None:
                self.ended = True
                batch = batch[:end]
        if self._streams is not None:
            wanted = self._streams
            batch = [r for r in batch if r.stream == wanted]
        return batch


_STREAM = operator.itemgetter(0)
_DATA = operator.itemgetter(1)


def stream_runs(
    batch: Sequence[LogRecord], *, timestamps: bool = False, details: bool = False, merge: bool = True
) -> list[tuple[str, bytes]]:
    """The batch as `docker logs` sends it: consecutive records of one stream joined, each
    record's data after its `-t` time and `--details` attributes when asked.

    One stdcopy frame per run instead of one per record: the same bytes to the client,
    and far less work on both sides (the docker CLI writes out each frame by itself).
    """
    if not batch:
        return []
    if not merge:
        # One piece per record, as dockerd frames them: a follower (docker-py's
        # logs(stream=True, follow=True), testcontainers' wait for a line) sees each line alone.
        if timestamps or details:
            return [
                (r.stream, (r.fixed_stamp() + b" " if timestamps else b"") + (r.details() if details else b"") + r.data)
                for r in batch
            ]
        return [(r.stream, r.data) for r in batch]
    if timestamps or details:
        def render(r: LogRecord) -> bytes:
            head = (r.fixed_stamp() + b" " if timestamps else b"") + (r.details() if details else b"")
            return head + r.data

        return [(stream, b"".join(map(render, group))) for stream, group in itertools.groupby(batch, _STREAM)]
    streams = list(map(_STREAM, batch))
    first = streams[0]
    if streams.count(first) == len(streams):
        return [(first, b"".join(map(_DATA, batch)))]
    return [(stream, b"".join(map(_DATA, group))) for stream, group in itertools.groupby(batch, _STREAM)]
