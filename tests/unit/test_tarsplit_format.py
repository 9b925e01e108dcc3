"""layers/tarsplit.py without a filesystem: record a tar's members as tarfile reads them,
then rebuild it from the records and the members' contents."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

import pytest

from dockyard.layers.tarsplit import (
    HEADER_SIZE,
    BadIndex,
    FileRef,
    Recorder,
    read_header,
    read_relocations,
    records,
)


def _tar(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue() + b"\0" * 1024 + b"trailing"


def _record(data: bytes) -> tuple[bytes, bytes, dict[str, bytes]]:
    index, extra = io.BytesIO(), io.BytesIO()
    recorder = Recorder(io.BytesIO(data), index, extra)
    held: dict[str, bytes] = {}
    with tarfile.open(fileobj=recorder, mode="r|", bufsize=1 << 20) as archive:  # type: ignore[call-overload]
        for member in archive:
            if member.isreg():
                if member.name in held:
                    recorder.preserve(member.name, io.BytesIO(held[member.name]))
                recorder.content(member.offset_data, member.size, member.name)
                held[member.name] = archive.extractfile(member).read()  # type: ignore[union-attr]
    while recorder.read(1 << 20):
        pass
    recorder.finish("sha256:" + hashlib.sha256(data).hexdigest())
    return index.getvalue(), extra.getvalue(), held


def _rebuild(index: bytes, extra: bytes, held: dict[str, bytes]) -> bytes:
    header = read_header(io.BytesIO(index))
    relocated = read_relocations(index[HEADER_SIZE + header.body_size :])
    body = gzip.GzipFile(fileobj=io.BytesIO(index[HEADER_SIZE : HEADER_SIZE + header.body_size]))
    out = bytearray()
    for record in records(body):
        if isinstance(record, FileRef):
            if record.number in relocated:
                start = relocated[record.number]
                out += extra[start : start + record.size]
            else:
                out += held[record.path]
        else:
            out += record.data
    assert len(out) == header.tar_size
    return bytes(out)


def test_a_tar_is_rebuilt_from_its_records_and_contents() -> None:
    data = _tar([("a", b"x" * 700), ("b/c", os.urandom(3 << 20)), ("empty", b""), ("a2", b"y")])
    index, extra, held = _record(data)
    assert extra == b""
    assert len(index) < 2000  # headers and padding, compressed; not the 3 MB of content
    assert _rebuild(index, extra, held) == data


def test_a_path_written_twice_keeps_the_first_bytes_aside() -> None:
    data = _tar([("dup", b"first, the longer one"), ("x", b"x"), ("dup", b"two")])
    index, extra, held = _record(data)
    assert extra == b"first, the longer one"
    assert held["dup"] == b"two"
    assert _rebuild(index, extra, held) == data


def test_a_broken_index_is_refused() -> None:
    with pytest.raises(BadIndex):
        read_header(io.BytesIO(b"not an index at all, too short"))
    with pytest.raises(BadIndex):
        list(records(io.BytesIO(b"R\x05ab")))
    with pytest.raises(BadIndex):
        list(records(io.BytesIO(b"Z")))
