"""conmon's k8s-file read directly (runtime.k8sfile, today's engine): parsing, queries,
reading and following."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dockyard.model.logs import LogQuery, LogRecord
from dockyard.model.times import parse_ns
from dockyard.runtime.k8sfile import follow, parse_line, read_records, wants

T0 = "2026-11-27T19:52:41.652377680+00:00"
T0_NS = parse_ns(T0)


def _line(ts: str, stream: str, tag: str, text: str) -> bytes:
    return f"{ts} {stream} {tag} {text}\n".encode()


def _ts(second: int) -> str:
    return f"2026-11-27T19:52:{second:02d}.000000000+00:00"


def _ns(second: int) -> int:
    return parse_ns(_ts(second))


def _rec(ns: int, stream: str, data: bytes) -> LogRecord:
    """The record parse_line makes of a line stamped `ns` (in this file's format)."""
    return LogRecord(stream, data, _stamp(ns).encode())


def _stamp(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"2026-11-27T19:52:{seconds - _BASE:02d}.{nanos:09d}+00:00"


_BASE = parse_ns("2026-11-27T19:52:00+00:00") // 1_000_000_000


# ---- parse_line ------------------------------------------------------------------------


def test_parse_full_stdout_line() -> None:
    record = parse_line(b"2026-11-27T19:52:41.652377680+00:00 stdout F out\n")
    assert record == _rec(T0_NS, "stdout", b"out\n")
    assert T0_NS == 1795809161 * 1_000_000_000 + 652377680


def test_parse_without_trailing_newline() -> None:
    assert parse_line(b"2026-11-27T19:52:41.652377680+00:00 stdout F out") == _rec(T0_NS, "stdout", b"out\n"
    )


def test_parse_partial_record_gets_no_newline() -> None:
    assert parse_line(f"{T0} stdout P no newline yet\n".encode()) == _rec(T0_NS, "stdout", b"no newline yet"
    )


def test_parse_stderr() -> None:
    record = parse_line(f"{T0} stderr F oops\n".encode())
    assert record is not None
    assert record.stream == "stderr"
    assert record.data == b"oops\n"


@pytest.mark.parametrize("raw", [f"{T0} stdout F\n", f"{T0} stdout F \n"])
def test_parse_empty_full_line(raw: str) -> None:
    assert parse_line(raw.encode()) == _rec(T0_NS, "stdout", b"\n")


def test_parse_empty_partial_line() -> None:
    assert parse_line(f"{T0} stdout P \n".encode()) == _rec(T0_NS, "stdout", b"")


def test_parse_text_keeps_spaces_and_binary() -> None:
    record = parse_line(f"{T0} stdout F  two  spaces ".encode() + b"\xff\x00\n")
    assert record is not None
    assert record.data == b" two  spaces \xff\x00\n"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n", b"garbage", b"2026-11-27T19:52:41Z stdout", f"{T0} stdin F x\n".encode(),
     f"{T0} STDOUT F x\n".encode(), f"{T0}\tstdout F x\n".encode()],
)  # fmt: skip
def test_parse_malformed_is_none(raw: bytes) -> None:
    assert parse_line(raw) is None


# ---- LogQuery --------------------------------------------------------------------------


OUT = _rec(_ns(10), "stdout", b"o\n")
ERR = _rec(_ns(20), "stderr", b"e\n")


def test_query_default_wants_everything() -> None:
    assert wants(LogQuery(), OUT) and wants(LogQuery(), ERR)


def test_query_streams() -> None:
    assert wants(LogQuery(stderr=False), OUT)
    assert not wants(LogQuery(stderr=False), ERR)
    assert not wants(LogQuery(stdout=False), OUT)
    assert wants(LogQuery(stdout=False), ERR)
    assert not wants(LogQuery(stdout=False, stderr=False), OUT)


def test_query_since_is_inclusive() -> None:
    assert wants(LogQuery(since_ns=_ns(10)), OUT)
    assert not wants(LogQuery(since_ns=_ns(10) + 1), OUT)
    assert wants(LogQuery(since_ns=_ns(10) + 1), ERR)


def test_query_until_is_inclusive() -> None:
    assert wants(LogQuery(until_ns=_ns(20)), ERR)
    assert not wants(LogQuery(until_ns=_ns(20) - 1), ERR)
    assert wants(LogQuery(until_ns=_ns(20) - 1), OUT)


def test_query_since_and_until_window() -> None:
    query = LogQuery(since_ns=_ns(15), until_ns=_ns(25))
    assert not wants(query, OUT)
    assert wants(query, ERR)


# ---- read_records ----------------------------------------------------------------------


def _write_log(path: Path, seconds: range) -> None:
    data = b""
    for s in seconds:
        stream = "stdout" if s % 2 == 0 else "stderr"
        data += _line(_ts(s), stream, "F", f"line {s}")
    path.write_bytes(data)


def test_read_all(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    _write_log(log, range(6))
    records, offset = read_records(log, LogQuery())
    assert [r.data for r in records] == [f"line {s}\n".encode() for s in range(6)]
    assert [r.stream for r in records] == ["stdout", "stderr"] * 3
    assert offset == log.stat().st_size


def test_read_missing_file(tmp_path: Path) -> None:
    assert read_records(tmp_path / "none.log", LogQuery()) == ([], 0)


def test_read_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"")
    assert read_records(log, LogQuery()) == ([], 0)


def test_read_filters_streams(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    _write_log(log, range(6))
    records, _ = read_records(log, LogQuery(stderr=False))
    assert [r.data for r in records] == [b"line 0\n", b"line 2\n", b"line 4\n"]
    records, _ = read_records(log, LogQuery(stdout=False))
    assert [r.data for r in records] == [b"line 1\n", b"line 3\n", b"line 5\n"]


def test_read_since_until(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    _write_log(log, range(10))
    records, _ = read_records(log, LogQuery(since_ns=_ns(3), until_ns=_ns(6)))
    assert [r.data for r in records] == [b"line 3\n", b"line 4\n", b"line 5\n", b"line 6\n"]


@pytest.mark.parametrize(
    ("tail", "expected"), [(None, 10), (3, 3), (1, 1), (100, 10), (0, 0), (-1, 0)]
)
def test_read_tail(tmp_path: Path, tail: int | None, expected: int) -> None:
    log = tmp_path / "ctr.log"
    _write_log(log, range(10))
    records, offset = read_records(log, LogQuery(tail=tail))
    assert [r.data for r in records] == [f"line {s}\n".encode() for s in range(10 - expected, 10)]
    assert offset == log.stat().st_size  # tail never changes where following starts


def test_read_tail_counts_after_filter(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    _write_log(log, range(10))
    records, _ = read_records(log, LogQuery(stdout=False, tail=2))
    assert [r.data for r in records] == [b"line 7\n", b"line 9\n"]


def test_read_trailing_incomplete_line_is_held_back(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    complete = _line(_ts(1), "stdout", "F", "one") + _line(_ts(2), "stdout", "P", "par")
    log.write_bytes(complete + f"{_ts(3)} stdout F half-writ".encode())
    records, offset = read_records(log, LogQuery())
    assert [r.data for r in records] == [b"one\n", b"par"]
    assert offset == len(complete)


def test_read_skips_malformed_and_blank_lines(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"junk\n\n" + _line(_ts(1), "stderr", "F", "ok") + b"x y\n")
    records, offset = read_records(log, LogQuery())
    assert records == [_rec(_ns(1), "stderr", b"ok\n")]
    assert offset == log.stat().st_size


def test_read_partial_then_full_records(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(
        _line(_ts(1), "stdout", "P", "hel")
        + _line(_ts(1), "stdout", "P", "lo ")
        + _line(_ts(1), "stdout", "F", "world")
    )
    records, _ = read_records(log, LogQuery())
    assert b"".join(r.data for r in records) == b"hello world\n"


# ---- follow ----------------------------------------------------------------------------


def test_follow_appended_lines_until_finished(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(_line(_ts(0), "stdout", "F", "old"))
    _, offset = read_records(log, LogQuery())

    async def main() -> list[LogRecord]:
        state = {"finished": False}
        got: list[LogRecord] = []

        async def consume() -> None:
            async for record in follow(
                log, offset, LogQuery(stderr=False), lambda: state["finished"]
            ):
                got.append(record)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # first poll: nothing new yet
        with log.open("ab") as f:
            f.write(_line(_ts(1), "stdout", "F", "new 1"))
            f.write(_line(_ts(2), "stderr", "F", "filtered"))
            f.write(f"{_ts(3)} stdout F spl".encode())  # half a line
        await asyncio.sleep(0.06)
        with log.open("ab") as f:
            f.write(b"it\n")
            f.write(_line(_ts(4), "stdout", "P", "last"))
        state["finished"] = True
        await asyncio.wait_for(task, timeout=2)
        return got

    got = asyncio.run(main())
    assert [r.data for r in got] == [b"new 1\n", b"split\n", b"last"]
    assert [r.time_ns for r in got] == [_ns(1), _ns(3), _ns(4)]


def test_follow_filters_until(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"".join(_line(_ts(s), "stdout", "F", f"l{s}") for s in range(5)))

    async def main() -> list[bytes]:
        return [r.data async for r in follow(log, 0, LogQuery(until_ns=_ns(2)), lambda: True)]

    assert asyncio.run(asyncio.wait_for(main(), timeout=2)) == [b"l0\n", b"l1\n", b"l2\n"]


def test_follow_stops_once_past_until(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"".join(_line(_ts(s), "stdout", "F", f"l{s}") for s in range(5)))

    async def main() -> list[bytes]:
        return [r.data async for r in follow(log, 0, LogQuery(until_ns=_ns(2)), lambda: False)]

    assert asyncio.run(asyncio.wait_for(main(), timeout=0.3)) == [b"l0\n", b"l1\n", b"l2\n"]


def test_follow_missing_file_ends(tmp_path: Path) -> None:
    async def main() -> list[LogRecord]:
        return [r async for r in follow(tmp_path / "gone.log", 0, LogQuery(), lambda: False)]

    assert asyncio.run(asyncio.wait_for(main(), timeout=2)) == []


def test_follow_already_finished_drains_then_ends(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    first = _line(_ts(1), "stdout", "F", "seen")
    log.write_bytes(first + _line(_ts(2), "stdout", "F", "unseen"))

    async def main() -> list[bytes]:
        return [r.data async for r in follow(log, len(first), LogQuery(), lambda: True)]

    assert asyncio.run(asyncio.wait_for(main(), timeout=2)) == [b"unseen\n"]


# ---- batches and tail offsets (the daemon's path for large logs) -----------------------

from dockyard.runtime.k8sfile import read_batch, tail_offset


def _big_log(tmp_path: Path, n: int) -> Path:
    log = tmp_path / "big.log"
    with log.open("wb") as f:
        for i in range(n):
            stream = "stderr" if i % 3 == 0 else "stdout"
            f.write(f"2026-11-27T19:52:41.{i:09d}+00:00 {stream} F line {i}\n".encode())
        f.write(b"2026-11-27T19:52:42.000000000+00:00 stdout F unfinish")  # no newline yet
    return log


def test_read_batch_walks_the_whole_log_in_steps(tmp_path: Path) -> None:
    log = _big_log(tmp_path, 40000)  # about 2.5 MB: several batches
    seen, offset = [], 0
    with log.open("rb") as f:
        while True:
            batch, after = read_batch(f, offset, LogQuery(stderr=False))
            seen += batch
            if after == offset:
                break
            offset = after
    assert len(seen) == 40000 - len(range(0, 40000, 3))
    assert all(r.stream == "stdout" for r in seen)
    assert seen[-1].data == b"line 39998\n"
    assert offset == log.stat().st_size - len(b"2026-11-27T19:52:42.000000000+00:00 stdout F unfinish")


@pytest.mark.parametrize("count", [1, 5, 100, 30000])
def test_tail_offset_finds_the_last_records(tmp_path: Path, count: int) -> None:
    log = _big_log(tmp_path, 40000)
    query = LogQuery(stdout=False)  # stderr: every third line
    with log.open("rb") as f:
        start = tail_offset(f, query, count)
        records, offset = [], start
        while True:
            batch, after = read_batch(f, offset, query)
            records += batch
            if after == offset:
                break
            offset = after
    expected = [f"line {i}\n".encode() for i in range(0, 40000, 3)][-count:]
    assert [r.data for r in records] == expected


def test_tail_offset_edges(tmp_path: Path) -> None:
    log = _big_log(tmp_path, 10)
    with log.open("rb") as f:
        assert tail_offset(f, LogQuery(), 0) == log.stat().st_size
        assert tail_offset(f, LogQuery(), 1000) == 0  # fewer records than asked: from the start
