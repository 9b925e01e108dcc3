"""runtime.logwriter and runtime.logfile: LogPath written and rotated as dockerd's
json-file driver does (names, max-size rule, gzip with lastTime), and read back oldest
first across the rotated files with tail, since and until."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from pathlib import Path

import pytest

from dockyard.model.logs import LogDriver, LogOptions, LogQuery, LogWindow
from dockyard.model.times import parse_ns
from dockyard.runtime.jsonlog import encode_record
from dockyard.runtime.logfile import (
    GzipSource,
    LogFiles,
    PlainSource,
    close_sources,
    gzip_last_time,
    inspect_log_path,
    log_path,
    open_sources,
    read_history,
)
from dockyard.runtime.logwriter import LogWriter, WritePosition, compress_file, gzip_header

T0 = parse_ns("2026-12-01T10:00:00Z")


def _rec(i: int, stream: str = "stdout") -> bytes:
    return encode_record(stream, f"line {i}\n".encode(), T0 + i * 1_000_000 + 1)


def _records(a: int, b: int) -> bytes:
    return b"".join(_rec(i) for i in range(a, b))


def _read(files: LogFiles, query: LogQuery | None = None, end: int | None = None) -> list[bytes]:
    query = query or LogQuery()
    sources = open_sources(files, end)
    try:
        return [r.data for batch in read_history(sources, query, LogWindow(query)) for r in batch]
    finally:
        close_sources(sources)


def _lines(a: int, b: int) -> list[bytes]:
    return [f"line {i}\n".encode() for i in range(a, b)]


def _write(files: LogFiles, max_size: int, batches: list[bytes]) -> LogWriter:
    """Write as the shipper does: split at the rotation limit, rotate, go on."""

    async def main() -> LogWriter:
        writer = LogWriter(files, max_size)
        writer.open()
        for data in batches:
            rest = data
            while rest:
                now, rest = writer.split(rest)
                if not now:
                    await writer.rotate()
                    continue
                writer.append(now)
        await writer.aclose()
        return writer

    return asyncio.run(main())


# ---- names ---------------------------------------------------------------------------------


def test_paths_as_dockerd() -> None:
    d = Path("/data/containers/abc")
    assert log_path(d, "abc", LogDriver.JSON_FILE) == d / "abc-json.log"
    assert log_path(d, "abc", LogDriver.LOCAL) == d / "local-logs" / "container.log"
    assert log_path(d, "abc", LogDriver.NONE) is None
    assert inspect_log_path(d, "abc", LogDriver.JSON_FILE) == "/data/containers/abc/abc-json.log"
    assert inspect_log_path(d, "abc", LogDriver.LOCAL) == ""
    files = LogFiles.of(d, "abc", LogOptions(max_file=3, compress=True))
    assert files == LogFiles(d / "abc-json.log", 3, True)
    assert files.rotated(2) == d / "abc-json.log.2" and files.rotated(1, gz=True) == d / "abc-json.log.1.gz"
    assert LogFiles.of(d, "abc", LogOptions(driver=LogDriver.NONE)) is None


# ---- writing and rotating -------------------------------------------------------------------


def test_split_keeps_the_record_that_crosses_max_size(tmp_path: Path) -> None:
    writer = LogWriter(LogFiles(tmp_path / "c.log"), max_size=len(_records(0, 2)) + 1)
    writer.open()
    data = _records(0, 5)
    now, later = writer.split(data)
    assert now == _records(0, 3)  # the third starts below max-size: it goes in, as dockerd
    assert later == _records(3, 5)
    writer.append(now)
    assert writer.split(later) == (b"", later)  # at or past max-size: rotate first
    assert writer.position == WritePosition(0, len(now))


def test_rotation_names_and_order(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log", max_file=3)
    size = len(_rec(0)) * 10
    writer = _write(files, size, [_records(0, 25), _records(25, 45)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.log", "c.log.1", "c.log.2"]
    assert files.path.read_bytes() == _records(40, 45)
    assert files.rotated(1).read_bytes() == _records(30, 40)
    assert files.rotated(2).read_bytes() == _records(20, 30)  # 0-19 fell off the end
    assert writer.position.seq == 4
    assert _read(files) == _lines(20, 45)


def test_max_file_one_replaces_the_file(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log", max_file=1)
    writer = LogWriter(files, len(_rec(0)))
    writer.open()
    writer.append(_rec(0))
    inode = writer.inode

    async def rotate() -> None:
        await writer.rotate()

    asyncio.run(rotate())
    assert writer.inode != inode and files.path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.log"]
    asyncio.run(writer.aclose())


def test_compressed_rotation(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log", max_file=4, compress=True)
    _write(files, len(_rec(0)) * 10, [_records(0, 35)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.log", "c.log.1.gz", "c.log.2.gz", "c.log.3.gz"]
    assert gzip.decompress(files.rotated(1, gz=True).read_bytes()) == _records(20, 30)
    head = files.rotated(1, gz=True).read_bytes()[:200]
    last = json.loads(_rec(29))["time"]
    assert gzip_last_time(head) == parse_ns(last) == T0 + 29_000_001
    assert head[3] & 0x04 and f'{{"lastTime":"{last}"}}'.encode() in head
    assert _read(files) == _lines(0, 35)


def test_a_compression_cut_short_is_finished_at_open(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log", max_file=3, compress=True)
    files.rotated(1).write_bytes(_records(0, 5))  # rotated, not yet compressed
    (tmp_path / "c.log.1.gz.tmp").write_bytes(b"half")
    writer = LogWriter(files, 1000)
    writer.open()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.log", "c.log.1.gz"]
    assert gzip.decompress(files.rotated(1, gz=True).read_bytes()) == _records(0, 5)
    # compressed but the plain file not yet removed: the gzip file is complete
    files.rotated(1).write_bytes(b"stale")
    LogWriter(files, 1000).open()
    assert not files.rotated(1).exists()
    asyncio.run(writer.aclose())


def test_truncate_only_shrinks(tmp_path: Path) -> None:
    writer = LogWriter(LogFiles(tmp_path / "c.log"), 1 << 20)
    writer.open()
    writer.append(_records(0, 3))
    writer.truncate(10**6)
    assert writer.position.size == len(_records(0, 3))
    writer.truncate(len(_rec(0)))
    assert (tmp_path / "c.log").read_bytes() == _rec(0)


def test_gzip_header_is_gos_layout() -> None:
    header = gzip_header(b"2026-12-01T10:00:00.5Z")
    assert header[:4] == b"\x1f\x8b\x08\x04" and header[9] == 0xFF
    assert header[12:] == b'{"lastTime":"2026-12-01T10:00:00.5Z"}'
    assert int.from_bytes(header[10:12], "little") == len(header) - 12
    assert gzip_last_time(header) == T0 + 500_000_000
    assert gzip_last_time(b"\x1f\x8b\x08\x00" + b"\x00" * 8) is None


def test_compress_file_without_a_known_stamp_reads_the_last_record(tmp_path: Path) -> None:
    plain = tmp_path / "x.1"
    plain.write_bytes(_records(0, 3))
    compress_file(plain, b"")
    assert gzip_last_time((tmp_path / "x.1.gz").read_bytes()[:200]) == T0 + 2_000_001
    assert not plain.exists()


# ---- reading --------------------------------------------------------------------------------


@pytest.fixture
def rotated(tmp_path: Path) -> LogFiles:
    """0-9 in .2.gz, 10-19 in .1.gz, 20-25 in LogPath (and a line being written)."""
    files = LogFiles(tmp_path / "c.log", max_file=3, compress=True)
    _write(files, len(_rec(0)) * 10, [_records(0, 26)])
    with files.path.open("ab") as f:
        f.write(_rec(26)[:-7])
    return files


def test_sources_oldest_first(rotated: LogFiles) -> None:
    sources = open_sources(rotated)
    try:
        assert [s.name for s in sources] == ["c.log.2.gz", "c.log.1.gz", "c.log"]
        assert isinstance(sources[0], GzipSource) and isinstance(sources[2], PlainSource)
    finally:
        close_sources(sources)


def test_read_all_across_files(rotated: LogFiles) -> None:
    assert _read(rotated) == _lines(0, 26)


@pytest.mark.parametrize("tail", [0, 1, 5, 6, 7, 16, 25, 26, 27, 1000])
def test_tail_across_files(rotated: LogFiles, tail: int) -> None:
    assert _read(rotated, LogQuery(tail=tail)) == _lines(max(0, 26 - tail), 26)


def test_since_and_until(rotated: LogFiles) -> None:
    assert _read(rotated, LogQuery(since_ns=T0 + 15_000_001)) == _lines(15, 26)
    assert _read(rotated, LogQuery(until_ns=T0 + 12_000_001)) == _lines(0, 13)
    window = LogQuery(since_ns=T0 + 8_000_001, until_ns=T0 + 21_000_001)
    assert _read(rotated, window) == _lines(8, 22)
    assert _read(rotated, LogQuery(since_ns=T0 + 24_000_001, tail=5)) == _lines(24, 26)


def test_since_skips_gzip_files_by_their_header(rotated: LogFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    inflated: list[str] = []
    original = GzipSource._inflated

    def spy(self: GzipSource):  # type: ignore[no-untyped-def]
        inflated.append(self.name)
        return original(self)

    monkeypatch.setattr(GzipSource, "_inflated", spy)
    assert _read(rotated, LogQuery(since_ns=T0 + 12_000_001)) == _lines(12, 26)
    assert inflated == ["c.log.1.gz"]  # .2.gz ended before `since`: never inflated


def test_end_bounds_the_current_file(rotated: LogFiles) -> None:
    assert _read(rotated, end=len(_records(20, 23))) == _lines(0, 23)


def test_streams_are_filtered_after_tail(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log")
    files.path.write_bytes(_rec(0) + _rec(1) + _rec(2, "stderr"))
    assert _read(files, LogQuery(stderr=False)) == [b"line 0\n", b"line 1\n"]
    assert _read(files, LogQuery(stderr=False, tail=1)) == []  # dockerd: the last record is stderr's
    assert _read(files, LogQuery(stdout=False, tail=1)) == [b"line 2\n"]


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert _read(LogFiles(tmp_path / "none.log", max_file=5)) == []


def test_open_files_survive_rotation_and_removal(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log", max_file=2)
    files.path.write_bytes(_records(0, 3))
    sources = open_sources(files)
    try:
        os.rename(files.path, files.rotated(1))
        files.rotated(1).unlink()
        data = [r.data for b in read_history(sources, LogQuery(), LogWindow(LogQuery())) for r in b]
        assert data == _lines(0, 3)
    finally:
        close_sources(sources)


def test_big_log_in_blocks(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "c.log")
    with files.path.open("wb") as f:
        for start in range(0, 60000, 1000):
            f.write(_records(start, start + 1000))  # ~4.5 MB: several blocks
    sources = open_sources(files)
    try:
        batches = list(read_history(sources, LogQuery(), LogWindow(LogQuery())))
        assert len(batches) > 3
        assert [r.data for b in batches for r in b] == _lines(0, 60000)
    finally:
        close_sources(sources)
    assert _read(files, LogQuery(tail=3)) == _lines(59997, 60000)
