"""The 8-byte stream framing of attach and logs, and its incremental demultiplexer."""

from __future__ import annotations

import random

import pytest

from dockyard.api.stdcopy import HEADER_SIZE, Demuxer, Stream, frame


def test_frame_layout() -> None:
    assert frame(Stream.STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(Stream.STDERR, b"x" * 258)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x02"
    assert frame(Stream.STDIN, b"a")[0] == 0
    assert frame(Stream.SYSTEMERR, b"boom")[0] == 3


def test_empty_data_gives_no_frame() -> None:
    assert frame(Stream.STDOUT, b"") == b""


def test_stream_values() -> None:
    assert [int(s) for s in Stream] == [0, 1, 2, 3]


def test_demux_whole_frames() -> None:
    data = frame(Stream.STDOUT, b"out") + frame(Stream.STDERR, b"err")
    assert Demuxer().feed(data) == [(Stream.STDOUT, b"out"), (Stream.STDERR, b"err")]


def test_demux_byte_by_byte() -> None:
    data = frame(Stream.STDOUT, b"hello") + frame(Stream.STDERR, b"world")
    demuxer = Demuxer()
    got: list[tuple[Stream, bytes]] = []
    for i in range(len(data)):
        got += demuxer.feed(data[i : i + 1])
    assert got == [(Stream.STDOUT, b"hello"), (Stream.STDERR, b"world")]
    assert demuxer.buffered == 0


def test_demux_random_splits_round_trip() -> None:
    rand = random.Random(3)
    frames = [
        (rand.choice([Stream.STDOUT, Stream.STDERR]), rand.randbytes(rand.randrange(1, 300)))
        for _ in range(50)
    ]
    data = b"".join(frame(s, d) for s, d in frames)
    demuxer = Demuxer()
    got: list[tuple[Stream, bytes]] = []
    pos = 0
    while pos < len(data):
        step = rand.randrange(1, 40)
        got += demuxer.feed(data[pos : pos + step])
        pos += step
    assert got == frames
    assert demuxer.buffered == 0


def test_demux_holds_partial_frames() -> None:
    demuxer = Demuxer()
    data = frame(Stream.STDOUT, b"abcdef")
    assert demuxer.feed(data[: HEADER_SIZE + 2]) == []
    assert demuxer.buffered == HEADER_SIZE + 2
    assert demuxer.feed(data[HEADER_SIZE + 2 :]) == [(Stream.STDOUT, b"abcdef")]


def test_demux_skips_empty_frames() -> None:
    empty = b"\x01\x00\x00\x00\x00\x00\x00\x00"
    assert Demuxer().feed(empty + frame(Stream.STDERR, b"x")) == [(Stream.STDERR, b"x")]


def test_demux_rejects_unknown_streams() -> None:
    with pytest.raises(ValueError, match="unrecognized stream"):
        Demuxer().feed(b"\x07\x00\x00\x00\x00\x00\x00\x01x")


def test_demux_returns_plain_bytes() -> None:
    [(stream, payload)] = Demuxer().feed(frame(Stream.STDOUT, b"z"))
    assert type(payload) is bytes and stream is Stream.STDOUT
