"""tar-split: a layer applied into its directory gives back the very tar it came from."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.layers.overlay import LayerDirs
from dockyard.layers.tarreplay import INDEX_NAME, BrokenLayer


def _info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1_600_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _rich_tar(fmt: int) -> bytes:
    long_name = "deep/" + "n" * 120 + "/file-with-a-very-long-name-" + "x" * 80
    return _tar(
        [
            (_info("bin/", tarfile.DIRTYPE), None),
            (_info("bin/sh", mode=0o755), os.urandom(70_000)),
            (_info("bin/ash", tarfile.LNKTYPE, linkname="bin/sh"), None),
            (_info("bin/ln", tarfile.SYMTYPE, linkname="sh"), None),
            (_info("empty/", tarfile.DIRTYPE), None),
            (_info("deep/", tarfile.DIRTYPE), None),
            (_info(long_name), b"long\n" * 300),
            (_info("etc/", tarfile.DIRTYPE), None),
            (_info("etc/.wh.gone"), b""),
            (_info("etc/.wh..wh..opq"), b""),
            (_info("etc/zero"), b""),
            (_info("etc/motd", pax_headers={"SCHILY.xattr.user.note": "hi", "mtime": "1600000000.123456789"}), b"hello\n"),
            (_info("dup"), b"first version, longer than the second\n"),
            (_info("dup"), b"second\n"),
            (_info("d/", tarfile.DIRTYPE), None),
            (_info("d/inner"), b"inside a directory replaced later\n" * 10),
            (_info("d"), b"now a file\n"),
            (_info(".wh..wh.plnk/", tarfile.DIRTYPE), None),
            (_info(".wh..wh.plnk/1.2"), b"aufs bookkeeping, never content\n"),
            (_info("fifo", tarfile.FIFOTYPE), None),
            (_info("big"), bytes(range(256)) * 8192),  # 2 MiB: more than the recorder's lookahead
        ],
        fmt,
    )


def _sparse_member() -> bytes:
    """An old-GNU sparse member ('S'): two data chunks of a 10 KiB file, held as 1 KiB."""
    info = _info("sparse", tarfile.GNUTYPE_SPARSE, size=1024)
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT)[:512])
    entries = [(0, 512), (8192, 512)]
    for i, (offset, numbytes) in enumerate(entries):
        base = 386 + i * 24
        block[base : base + 12] = f"{offset:011o}\0".encode()
        block[base + 12 : base + 24] = f"{numbytes:011o}\0".encode()
    block[483:495] = f"{10240:011o}\0".encode()
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block) + b"A" * 512 + b"B" * 512


def _odd_tar() -> bytes:
    """Headers and padding as odd tools write them: junk in a file's padding, a sparse
    member, trailing garbage after the end-of-archive blocks."""
    plain = _tar([(_info("a"), b"abc")])
    end = plain.index(b"abc") + 3
    padded = plain[:end] + b"\x07" * (512 - 3)  # non-zero padding
    body = padded + _sparse_member() + _tar([(_info("z"), b"zzz")])
    return body + b"trailing junk after the archive\n"


def _round_trip(tmp_path: Path, data: bytes, feed: bytes | None = None) -> tuple[LayerDirs, str]:
    dirs = LayerDirs(tmp_path / "overlay")
    cache_id = dirs.new_cache_id()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    applied = dirs.extract(cache_id, io.BytesIO(feed if feed is not None else data), diff_id)
    assert applied.diff_id == diff_id and applied.tar_size == len(data)
    assert dirs.tar_size(cache_id) == len(data)
    with dirs.open_tar(cache_id, diff_id) as replay:
        assert replay.read() == data
    return dirs, cache_id


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_rich_tar_is_rebuilt_byte_for_byte(tmp_path: Path, fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        data = _tar([(_info("a/", tarfile.DIRTYPE), None), (_info("a/b"), b"x" * 600), (_info("c"), b"")], fmt)
    else:
        data = _rich_tar(fmt)
    dirs, cache_id = _round_trip(tmp_path, data)
    diff = dirs.diff(cache_id)
    if fmt != tarfile.USTAR_FORMAT:
        assert (diff / "dup").read_bytes() == b"second\n"
        assert (diff / "d").read_bytes() == b"now a file\n"
        assert (dirs.root / cache_id / "tar-split.extra").exists()  # the replaced files' bytes
    index_size = (dirs.root / cache_id / INDEX_NAME).stat().st_size
    assert index_size < len(data) // 20  # headers only; content is in the directory


def test_odd_headers_sparse_and_trailing_data(tmp_path: Path) -> None:
    data = _odd_tar()
    dirs, cache_id = _round_trip(tmp_path, data)
    sparse = (dirs.diff(cache_id) / "sparse").read_bytes()
    assert len(sparse) == 10240 and sparse[:512] == b"A" * 512 and sparse[8192:8704] == b"B" * 512


def test_compressed_input_replays_the_plain_tar(tmp_path: Path) -> None:
    data = _rich_tar(tarfile.PAX_FORMAT)
    _round_trip(tmp_path, data, feed=gzip.compress(data))


def test_empty_stream(tmp_path: Path) -> None:
    _round_trip(tmp_path, b"")


def test_a_changed_directory_is_refused_on_replay(tmp_path: Path) -> None:
    data = _rich_tar(tarfile.PAX_FORMAT)
    dirs, cache_id = _round_trip(tmp_path, data)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    target = dirs.diff(cache_id) / "bin" / "sh"
    content = bytearray(target.read_bytes())
    content[100] ^= 1  # same size, other bytes
    target.write_bytes(bytes(content))
    with pytest.raises(BrokenLayer, match="rebuilt tar"), dirs.open_tar(cache_id, diff_id) as replay:
        replay.read()
    (dirs.diff(cache_id) / "etc" / "motd").unlink()
    with pytest.raises(BrokenLayer, match="motd"), dirs.open_tar(cache_id, diff_id) as replay:
        replay.read()


def test_a_wrong_diff_id_leaves_no_directory(tmp_path: Path) -> None:
    dirs = LayerDirs(tmp_path / "overlay")
    cache_id = dirs.new_cache_id()
    with pytest.raises(Exception, match="layer verification failed"):
        dirs.extract(cache_id, io.BytesIO(_tar([(_info("a"), b"a")])), "sha256:" + "0" * 64)
    assert not (dirs.root / cache_id).exists()
