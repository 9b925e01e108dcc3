"""model.logs: log drivers and their options as dockerd checks them, queries, records."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.containers import LogConfig
from dockyard.model.goparsers import from_human_size, go_atoi, go_parse_bool, ram_in_bytes
from dockyard.model.logs import (
    DEFAULT_MAX_FILE,
    DEFAULT_MAX_SIZE,
    LogDriver,
    LogOptions,
    LogQuery,
    LogRecord,
    LogWindow,
    daemon_log_config,
    log_options,
    stamp_ns,
    stream_runs,
)
from dockyard.model.times import parse_ns

# ---- Go's parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("10", 10), ("10b", 10), ("10B", 10), ("1k", 1000), ("1kb", 1000), ("1KB", 1000), ("1kib", 1000),
     ("10m", 10_000_000), ("10M", 10_000_000), ("1g", 10**9), ("1.5k", 1500), ("2t", 2 * 10**12),
     ("1p", 10**15), ("10 m", 10_000_000), ("0.5", 0), ("1e3", 1000), (".5k", 500), ("10 ", 10)],
)  # fmt: skip
def test_from_human_size_is_decimal(text: str, size: int) -> None:
    assert from_human_size(text) == size


def test_ram_in_bytes_is_binary() -> None:
    assert ram_in_bytes("10m") == 10 * 1024 * 1024
    assert ram_in_bytes("1KiB") == 1024
    assert ram_in_bytes("3") == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("abc", "invalid size: 'abc'"), ("", "invalid size: ''"), ("m", "invalid size: 'm'"),
     ("-1", "invalid size: '-1'"), ("-5m", "invalid size: '-5m'"),
     ("10x", "invalid suffix: 'x'"), ("10mm", "invalid suffix: 'mm'"), ("10kbb", "invalid suffix: 'kbb'"),
     ("10Kbytes", "invalid suffix: 'Kbytes'"), ("10bb", "invalid suffix: 'bb'"), ("10mi", "invalid suffix: 'mi'"),
     ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
     ("1_0m", 'strconv.ParseFloat: parsing "1_0": invalid syntax'),
     ("1e999", 'strconv.ParseFloat: parsing "1e999": value out of range')],
)  # fmt: skip
def test_from_human_size_errors_as_go_units(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        from_human_size(text)
    assert str(caught.value) == message


def test_go_atoi() -> None:
    assert go_atoi("5") == 5 and go_atoi("+5") == 5 and go_atoi("-2") == -2 and go_atoi("007") == 7
    for bad in ("", "x", "1.5", " 1", "1_0", "0x10"):
        with pytest.raises(ValueError, match=r'^strconv.Atoi: parsing ".*": invalid syntax$'):
            go_atoi(bad)
    with pytest.raises(ValueError, match="value out of range"):
        go_atoi("99999999999999999999")


def test_go_parse_bool() -> None:
    assert all(go_parse_bool(t) for t in ("1", "t", "T", "TRUE", "true", "True"))
    assert not any(go_parse_bool(f) for f in ("0", "f", "F", "FALSE", "false", "False"))
    with pytest.raises(ValueError, match=r'^strconv.ParseBool: parsing "yes": invalid syntax$'):
        go_parse_bool("yes")


# ---- log_options -------------------------------------------------------------------------


def _opts(driver: str = "", defaults: LogConfig | None = None, **config: str) -> LogOptions:
    return log_options(driver, {k.replace("_", "-"): v for k, v in config.items()}, defaults)


def _error(driver: str = "", defaults: LogConfig | None = None, **config: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        _opts(driver, defaults, **config)
    return caught.value.message


def test_default_is_json_file_capped_at_five_files_of_20_mib() -> None:
    options = _opts()
    assert options == LogOptions(LogDriver.JSON_FILE, DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE, False, options.config)
    assert (options.max_size, options.max_file) == (20 * 1024 * 1024, 5)
    assert dict(options.config) == {} and options.kept


def test_json_file_options() -> None:
    assert _opts("json-file", max_size="10m", max_file="3").max_size == 10_000_000
    assert _opts("json-file", max_size="10m", max_file="3").max_file == 3
    # dockerd keeps one file when only max-size is given
    assert (_opts(max_size="1k").max_size, _opts(max_size="1k").max_file) == (1000, 1)
    # max-file alone: dockerd ignores it (no limit); here the default size applies
    assert (_opts(max_file="2").max_size, _opts(max_file="2").max_file) == (DEFAULT_MAX_SIZE, 2)
    assert _opts(max_size="1m", max_file="2", compress="true").compress
    assert _opts(compress="true").compress  # our default cap has five files
    assert not _opts(compress="false").compress


@pytest.mark.parametrize(
    ("config", "message"),
    [({"bogus": "1"}, "unknown log opt 'bogus' for json-file log driver"),
     ({"max-size": "abc"}, "invalid size: 'abc'"),
     ({"max-size": "0"}, "max-size must be a positive number"),
     ({"max-size": "0.1"}, "max-size must be a positive number"),
     ({"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
     ({"max-file": "0"}, "max-file cannot be less than 1"),
     ({"max-size": "1m", "max-file": "1", "compress": "true"},
      "compress cannot be true when max-file is less than 2 or max-size is not set"),
     ({"max-size": "1m", "compress": "1"},
      "compress cannot be true when max-file is less than 2 or max-size is not set"),
     ({"compress": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
     ({"mode": "fast"}, "logger: logging mode not supported: fast"),
     ({"max-buffer-size": "4m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
     ({"mode": "non-blocking", "max-buffer-size": "x"}, "error parsing option max-buffer-size: invalid size: 'x'"),
     ({"cache-disabled": "nope"}, "invalid value for option cache-disabled: nope")],
)  # fmt: skip
def test_json_file_errors_in_dockerds_words(config: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        log_options("json-file", config)
    assert caught.value.message == message


def test_accepted_options_that_change_nothing_yet() -> None:
    options = _opts(mode="non-blocking", max_buffer_size="4m", labels="a,b", env="X", tag="{{.Name}}",
                    cache_disabled="true")  # fmt: skip
    assert options.driver is LogDriver.JSON_FILE and options.max_file == DEFAULT_MAX_FILE
    assert options.config["labels"] == "a,b"


def test_local_driver_defaults_and_checks() -> None:
    local = _opts("local")
    assert (local.driver, local.max_size, local.max_file, local.compress) == (LogDriver.LOCAL, DEFAULT_MAX_SIZE, 5, True)
    assert _opts("local", max_size="1m", max_file="2", compress="false").max_size == 1_000_000
    assert _opts("local", max_file="1", compress="false").max_file == 1
    assert _opts("local", max_file="0", compress="false").max_file == 1  # dockerd: one file
    assert _error("local", bogus="1") == "unknown log opt 'bogus' for log driver local"
    assert _error("local", max_size="x") == "invalid value for max-size: x: invalid size: 'x'"
    assert _error("local", max_file="x") == 'invalid value for max-file: x: strconv.Atoi: parsing "x": invalid syntax'
    assert _error("local", max_file="-1", compress="false") == "max-file must not be negative"
    assert _error("local", compress="x") == 'invalid boolean value for compress: strconv.ParseBool: parsing "x": invalid syntax'
    assert _error("local", max_file="1") == "compression cannot be enabled when max file count is 1"


def test_none_takes_any_options_and_keeps_nothing() -> None:
    none = _opts("none", whatever="x")
    assert none.driver is LogDriver.NONE and not none.kept


@pytest.mark.parametrize("driver", ["syslog", "journald", "bogus", "JSON-FILE"])
def test_unknown_driver(driver: str) -> None:
    assert _error(driver) == f"logger: no log driver named '{driver}' is registered"


def test_daemon_defaults_merge_as_dockerd() -> None:
    defaults = daemon_log_config("json-file", {"max-size": "5m", "max-file": "2"})
    merged = _opts("", defaults, max_file="4")
    assert (merged.max_size, merged.max_file) == (5_000_000, 4)  # the container's own wins
    assert dict(merged.config) == {"max-size": "5m", "max-file": "4"}  # what inspect shows
    # another driver than the daemon's: the daemon's options do not apply
    assert dict(_opts("local", defaults).config) == {}
    # the daemon's driver is the default one
    local_default = daemon_log_config("local", {})
    assert _opts("", local_default).driver is LogDriver.LOCAL
    assert _opts("json-file", local_default).driver is LogDriver.JSON_FILE
    # cache-* options of the daemon reach every driver
    cached = LogConfig("json-file", MappingProxyType({"cache-disabled": "true"}))
    assert dict(_opts("local", cached).config) == {"cache-disabled": "true"}


def test_daemon_config_is_checked_at_start() -> None:
    assert daemon_log_config("", {}) == LogConfig("json-file", {})
    with pytest.raises(InvalidArgument) as caught:
        daemon_log_config("json-file", {"max-size": "zz"})
    assert caught.value.message == "failed to set log opts: invalid size: 'zz'"
    with pytest.raises(InvalidArgument, match="no log driver named 'gelf' is registered"):
        daemon_log_config("gelf", {})


# ---- records, stamps, windows ------------------------------------------------------------

T = "2026-11-27T19:52:41"
T_NS = parse_ns(T + "Z")


@pytest.mark.parametrize(
    ("stamp", "ns"),
    [(T + "Z", T_NS), (T + ".5Z", T_NS + 500_000_000), (T + ".000000001Z", T_NS + 1),
     (T + ".123456789Z", T_NS + 123456789), (T + ".123+01:00", T_NS - 3600 * 10**9 + 123_000_000),
     ("garbage", 0), (T + ".x1Z", 0)],
)  # fmt: skip
def test_stamp_ns(stamp: str, ns: int) -> None:
    assert stamp_ns(stamp.encode()) == ns


def test_record_fixed_stamp_and_details() -> None:
    record = LogRecord("stdout", b"x\n", (T + ".12Z").encode())
    assert record.fixed_stamp() == (T + ".120000000Z").encode()
    assert LogRecord("stdout", b"", (T + "Z").encode()).fixed_stamp() == (T + ".000000000Z").encode()
    assert LogRecord("stdout", b"", (T + ".5+01:00").encode()).fixed_stamp() == b"2026-11-27T18:52:41.500000000Z"
    assert record.time_ns == T_NS + 120_000_000
    assert record.details() == b" "
    tagged = LogRecord("stdout", b"", b"", (("a b", "1&2"), ("z", "é")))
    assert tagged.details() == b"a+b=1%262,z=%C3%A9 "


def _records(*seconds: int, stream: str = "stdout") -> list[LogRecord]:
    return [LogRecord(stream, f"{s}\n".encode(), f"2026-11-27T19:52:{s:02d}Z".encode()) for s in seconds]


def _at(second: int) -> int:
    return parse_ns(f"2026-11-27T19:52:{second:02d}Z")


def test_window_since_is_met_once_as_dockerd() -> None:
    window = LogWindow(LogQuery(since_ns=_at(5)))
    assert window.admit(_records(1, 2)) == []
    assert window.since_pending == _at(5)
    # 5 meets it; 3 after it passes although its clock went back
    assert [r.data for r in window.admit(_records(4, 5, 3, 6))] == [b"5\n", b"3\n", b"6\n"]
    assert window.since_pending == 0
    assert [r.data for r in window.admit(_records(1))] == [b"1\n"]


def test_window_until_ends_the_read() -> None:
    window = LogWindow(LogQuery(until_ns=_at(5)))
    assert [r.data for r in window.admit(_records(4, 5, 6, 1))] == [b"4\n", b"5\n"]
    assert window.ended
    assert window.admit(_records(1)) == []


def test_window_streams() -> None:
    mixed = _records(1) + _records(2, stream="stderr")
    assert [r.stream for r in LogWindow(LogQuery()).admit(mixed)] == ["stdout", "stderr"]
    assert [r.stream for r in LogWindow(LogQuery(stderr=False)).admit(mixed)] == ["stdout"]
    assert [r.stream for r in LogWindow(LogQuery(stdout=False)).admit(mixed)] == ["stderr"]
    assert LogWindow(LogQuery(stdout=False, stderr=False)).admit(mixed) == []


def test_query_tail_count() -> None:
    assert LogQuery().tail_count is None
    assert LogQuery(tail=-1).tail_count is None
    assert LogQuery(tail=0).tail_count == 0
    assert LogQuery(tail=7).tail_count == 7


def test_stream_runs_join_consecutive_records_of_a_stream() -> None:
    out = _records(1, 2)
    err = _records(3, stream="stderr")
    batch = out + err + _records(4)
    assert stream_runs(batch) == [("stdout", b"1\n2\n"), ("stderr", b"3\n"), ("stdout", b"4\n")]
    assert stream_runs(out) == [("stdout", b"1\n2\n")]
    assert stream_runs([]) == []
    stamped = stream_runs(out + err, timestamps=True)
    assert stamped == [("stdout", b"2026-11-27T19:52:01.000000000Z 1\n2026-11-27T19:52:02.000000000Z 2\n"),
                       ("stderr", b"2026-11-27T19:52:03.000000000Z 3\n")]  # fmt: skip
    assert stream_runs(err, details=True) == [("stderr", b" 3\n")]
    assert stream_runs(err, timestamps=True, details=True) == [("stderr", b"2026-11-27T19:52:03.000000000Z  3\n")]


def test_stream_runs_keep_records_apart_when_asked() -> None:
    from dockyard.model.logs import LogRecord, stream_runs

    batch = [LogRecord("stdout", b"a\n", b"2026-12-01T00:00:00Z"), LogRecord("stdout", b"b\n", b"2026-12-01T00:00:01Z")]
    assert stream_runs(batch) == [("stdout", b"a\nb\n")]
    assert stream_runs(batch, merge=False) == [("stdout", b"a\n"), ("stdout", b"b\n")]
    assert stream_runs(batch, merge=False, timestamps=True)[1] == ("stdout", b"2026-12-01T00:00:01.000000000Z b\n")
