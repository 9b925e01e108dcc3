"""runtime.spool: conmon's k8s-file read from a saved cursor, through conmon's renames."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.linux.sparse import allocated_bytes
from dockyard.runtime.spool import BLOCK, MAX_HELD, Cursor, Spool


def _line(i: int, text: str = "") -> bytes:
    return f"2026-12-01T10:00:00.{i:09d}+00:00 stdout F {text or f'line {i}'}\n".encode()


def _conmon_rotate(directory: Path) -> None:
    """What conmon's reopen_k8s_file does: a new file renamed over ctr.log."""
    tmp = directory / "ctr.log.tmp"
    tmp.write_bytes(b"")
    os.rename(tmp, directory / "ctr.log")


def _append(directory: Path, data: bytes) -> None:
    with (directory / "ctr.log").open("ab") as f:
        f.write(data)


def test_cursor_round_trip() -> None:
    cursor = Cursor(12, 345, 6789, 10)
    assert len(cursor.encode()) == 84
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(b"") is None and Cursor.decode(b"1 2 x 4") is None


def test_read_whole_lines_from_the_cursor(tmp_path: Path) -> None:
    _append(tmp_path, _line(1) + _line(2) + b"2026-12-01 stdout F half")
    spool = Spool(tmp_path)
    assert spool.open() is None
    chunk = spool.read()
    assert chunk == _line(1) + _line(2)
    spool.consumed(len(chunk))
    spool.save(log_inode=7, log_size=100)
    assert spool.read() == b""
    assert spool.read(final=True) == b"2026-12-01 stdout F half\n"  # the writer is gone
    spool.close()
    again = Spool(tmp_path)
    saved = again.open()
    assert saved == Cursor(os.stat(tmp_path / "ctr.log").st_ino, len(chunk), 7, 100)
    assert again.offset == len(chunk)
    again.close()


def _held(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("ctr.log.held.*"))


def test_the_read_file_is_held_by_a_link_across_conmons_rename(tmp_path: Path) -> None:
    _append(tmp_path, _line(1))
    spool = Spool(tmp_path)
    spool.open()
    first = spool.inode
    assert _held(tmp_path) == ["ctr.log.held.0"]
    assert os.stat(tmp_path / "ctr.log.held.0").st_ino == first
    chunk = spool.read()
    spool.consumed(len(chunk))
    spool.save(0, 0)
    spool.close()  # the daemon goes away; conmon goes on and rotates
    _append(tmp_path, _line(2))
    _conmon_rotate(tmp_path)
    _append(tmp_path, _line(3))
    resumed = Spool(tmp_path)
    resumed.open()
    assert resumed.inode == first and resumed.offset == len(chunk)
    assert resumed.newer() and _held(tmp_path) == ["ctr.log.held.0", "ctr.log.held.1"]
    assert resumed.read() == _line(2)  # the rest of the old file first
    resumed.consumed(len(_line(2)))
    assert resumed.read() == b""
    resumed.advance()
    assert resumed.inode != first and resumed.offset == 0 and not resumed.newer()
    assert _held(tmp_path) == ["ctr.log.held.1"]
    assert resumed.read() == _line(3)
    resumed.close()


def test_a_burst_of_rotations_loses_nothing_while_read(tmp_path: Path) -> None:
    _append(tmp_path, _line(0))
    spool = Spool(tmp_path)
    spool.open()
    for i in range(1, 5):  # conmon rotates four times before the reader reads again
        _conmon_rotate(tmp_path)
        _append(tmp_path, _line(i))
        spool.notice()
    got = b""
    while True:
        chunk = spool.read()
        if chunk:
            got += chunk
            spool.consumed(len(chunk))
        elif spool.newer():
            spool.advance()
        else:
            break
    assert got == b"".join(_line(i) for i in range(5))
    spool.close()


def test_held_files_are_bounded(tmp_path: Path) -> None:
    _append(tmp_path, _line(0))
    spool = Spool(tmp_path)
    spool.open()
    for i in range(1, MAX_HELD + 3):
        _conmon_rotate(tmp_path)
        _append(tmp_path, _line(i))
        spool.notice()
    assert spool.held == MAX_HELD
    spool.close()


def test_a_cursor_for_a_finished_file_starts_the_next_from_zero(tmp_path: Path) -> None:
    _append(tmp_path, _line(1))
    spool = Spool(tmp_path)
    spool.open()
    spool.consumed(len(_line(1)))
    spool.save(0, 0)
    _conmon_rotate(tmp_path)
    _append(tmp_path, _line(2))
    spool.notice()
    spool.advance()  # the finished file's link is gone; killed before saving the cursor
    spool.close()
    resumed = Spool(tmp_path)
    resumed.open()
    assert resumed.offset == 0 and resumed.read() == _line(2)
    resumed.close()


def test_no_file_yet(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    assert spool.read() == b"" and not spool.newer() and not spool.exists()
    _append(tmp_path, _line(1))
    spool.notice()
    assert spool.read() == _line(1) and spool.exists()
    spool.remove()
    assert sorted(os.listdir(tmp_path)) == []


def test_consumed_blocks_are_given_back(tmp_path: Path) -> None:
    _append(tmp_path, b"".join(_line(i, "x" * 200) for i in range(20000)))  # ~5 MB
    spool = Spool(tmp_path)
    spool.open()
    before = allocated_bytes(os.open(tmp_path / "ctr.log", os.O_RDONLY))
    while chunk := spool.read():
        assert len(chunk) <= BLOCK
        spool.consumed(len(chunk))
        spool.save(0, 0)
    fd = os.open(tmp_path / "ctr.log", os.O_RDONLY)
    try:
        after = allocated_bytes(fd)
        assert os.fstat(fd).st_size > 4_000_000  # conmon's offsets are untouched
    finally:
        os.close(fd)
    if spool.punching:  # the filesystem can punch holes (tmpfs, ext4, xfs)
        assert before > 4_000_000 and after < 8192
    spool.close()
