"""streams/pipe.py: bytes from the event loop to a reading thread, bounded; the blob tee."""

from __future__ import annotations

import asyncio
import io
import os
import threading

import pytest

from dockyard.errors import Unavailable
from dockyard.streams.pipe import BlobTee, Pipe


def _reader(pipe: Pipe, sizes: list[int], out: list[bytes], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        i = 0
        try:
            while data := pipe.read(sizes[i % len(sizes)]):
                out.append(data)
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_bytes_arrive_in_order_whatever_the_read_sizes() -> None:
    data = os.urandom(3 << 20)

    async def main() -> tuple[bytes, int]:
        pipe = Pipe(limit=256 << 10)
        out: list[bytes] = []
        t = _reader(pipe, [1, 4096, 100_000, -1, 7], out, [])
        most = 0
        for i in range(0, len(data), 65536):
            assert await pipe.write(data[i : i + 65536])
            most = max(most, pipe._size)  # the bound holds (one chunk over at most)
        pipe.close()
        await asyncio.to_thread(t.join)
        return b"".join(out), most

    got, most = asyncio.run(main())
    assert got == data
    assert most <= (256 << 10) + 65536


def test_an_error_comes_after_the_queued_bytes() -> None:
    async def main() -> tuple[bytes, list[BaseException]]:
        pipe = Pipe()
        out: list[bytes] = []
        errors: list[BaseException] = []
        await pipe.write(b"abc")
        pipe.close(Unavailable("registry went away"))
        t = _reader(pipe, [-1], out, errors)
        await asyncio.to_thread(t.join)
        return b"".join(out), errors

    got, errors = asyncio.run(main())
    assert got == b"abc"
    assert len(errors) == 1 and isinstance(errors[0], Unavailable)


def test_a_writer_is_released_when_the_reader_gives_up() -> None:
    async def main() -> bool:
        pipe = Pipe(limit=10)
        assert await pipe.write(b"x" * 20)  # full now
        threading.Timer(0.05, pipe.abandon).start()
        return await asyncio.wait_for(pipe.write(b"more"), 5)

    assert asyncio.run(main()) is False


def test_blob_tee_replays_the_file_then_appends_the_pipe() -> None:
    async def main() -> tuple[bytes, bytes, int, str]:
        pipe = Pipe()
        file = io.BytesIO(b"head-")
        await pipe.write(b"tail")
        pipe.close()
        tee = BlobTee(file, 5, pipe)
        got = await asyncio.to_thread(lambda: tee.read(2) + tee.read(-1) + tee.read(-1) + tee.read(10))
        return got, file.getvalue(), tee.count, tee.digest()

    got, stored, count, digest = asyncio.run(main())
    assert got == b"head-tail" and stored == b"head-tail" and count == 9
    import hashlib

    assert digest == "sha256:" + hashlib.sha256(b"head-tail").hexdigest()


def test_blob_tee_refuses_a_shrunk_partial_file() -> None:
    async def main() -> None:
        tee = BlobTee(io.BytesIO(b"ab"), 5, Pipe())
        with pytest.raises(EOFError):
            tee.read(-1)
            tee.read(-1)

    asyncio.run(main())
