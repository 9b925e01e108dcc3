"""Docker's multiplexed stream framing for attach, logs and exec without a TTY.

Each frame is an 8-byte header `[stream, 0, 0, 0, size (uint32 big-endian)]` followed by
`size` bytes of payload; clients (docker CLI, docker-py) demultiplex stdout from stderr by it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable

from dockyard.api.versioning import at_least
from dockyard.model.stdio import Pipe

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"

HEADER_SIZE = 8
MAX_FRAME = 2**32 - 1

_HEADER = struct.Struct(">BxxxI")


class Stream(enum.IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    # Written by the daemon itself: an error that ended the stream (docker-py raises it).
    SYSTEMERR = 3


def frame(stream: Stream, data: bytes) -> bytes:
    """One framed chunk; empty data gives b"" because an empty frame tells a client nothing."""
    if not data:
        return b""
    if len(data) > MAX_FRAME:
        raise ValueError(f"frame payload too large: {len(data)} bytes")
    return _HEADER.pack(stream, len(data)) + data


def content_type(api_version: str, tty: bool) -> str:
    """A TTY's output is one raw stream; before API 1.42 the type said raw even when framed."""
    return RAW if tty or not at_least(api_version, "1.42") else MULTIPLEXED


def output_framer(tty: bool) -> Callable[[Pipe, bytes], bytes]:
    """How a process's output goes on the wire: raw on a TTY, else framed by pipe."""
    if tty:
        return lambda pipe, data: data
    return lambda pipe, data: frame(Stream.STDERR if pipe is Pipe.STDERR else Stream.STDOUT, data)


class Demuxer:
    """Incremental parser of a framed stream: feed it bytes as they arrive, get payloads.

    Frames split across `feed` calls are reassembled; empty frames are skipped.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back while waiting for the rest of a frame (0 at a clean end)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[Stream, bytes]]:
        self._buffer += data
        out: list[tuple[Stream, bytes]] = []
        pos = 0
        while len(self._buffer) - pos >= HEADER_SIZE:
            kind, size = _HEADER.unpack_from(self._buffer, pos)
            try:
                stream = Stream(kind)
            except ValueError:
                raise ValueError(f"unrecognized stream in frame header: {kind}") from None
            end = pos + HEADER_SIZE + size
            if end > len(self._buffer):
                break
            if size:
                out.append((stream, bytes(self._buffer[pos + HEADER_SIZE : end])))
            pos = end
        del self._buffer[:pos]
        return out
