"""Detach key specs (moby's ToBytes rules) and the stdin scanner, against a brute-force reference."""

from __future__ import annotations

import itertools
import random

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.detachkeys import (
    DEFAULT_DETACH_KEYS,
    DetachScan,
    key_bytes,
    parse_detach_keys,
)


@pytest.mark.parametrize(
    ("spec", "sequence"),
    [
        ("ctrl-p,ctrl-q", b"\x10\x11"),
        ("ctrl-@", b"\x00"), ("ctrl-a", b"\x01"), ("ctrl-z", b"\x1a"), ("ctrl-[", b"\x1b"),
        ("ctrl-\\", b"\x1c"), ("ctrl-]", b"\x1d"), ("ctrl-^", b"\x1e"), ("ctrl-_", b"\x1f"),
        ("DEL", b"\x7f"), ("a", b"a"), ("a,b,c", b"abc"), ("Z", b"Z"), (" ", b" "),
        ("ctrl-x,x", b"\x18x"), ("ctrl-a,ctrl-a", b"\x01\x01"), ("-", b"-"), ("\\", b"\\"),
    ],
)  # fmt: skip
def test_key_bytes(spec: str, sequence: bytes) -> None:
    assert key_bytes(spec) == sequence
    assert parse_detach_keys(spec).sequence == sequence
    assert parse_detach_keys(spec).spec == spec


def test_every_ctrl_name_is_its_control_code() -> None:
    for code, name in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_"):
        assert key_bytes(f"ctrl-{name}") == bytes([code])


@pytest.mark.parametrize(
    "spec",
    ["ctrl-", "ctrl-A", "CTRL-P", "ctrl-p,", ",ctrl-p", "ctrl-p,,ctrl-q", "ab", "del", "ctrl-1",
     "é", "ctrl-p ctrl-q", "ctrl-pp", " ctrl-p"],
)  # fmt: skip
def test_bad_specs_get_dockerds_words(spec: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_detach_keys(spec)
    assert info.value.message == f"Invalid detach keys ({spec}) provided"


def test_unknown_key_is_named() -> None:
    with pytest.raises(ValueError, match="Unknown character: 'ctrl-A'"):
        key_bytes("ctrl-p,ctrl-A")


def test_empty_spec_is_the_default() -> None:
    keys = parse_detach_keys("")
    assert keys.sequence == b"\x10\x11" and keys.spec == DEFAULT_DETACH_KEYS


def _reference(stream: bytes, keys: bytes) -> tuple[bytes, bool]:
    """What must reach the container: everything before the first occurrence of the keys."""
    at = stream.find(keys)
    return (stream, False) if at < 0 else (stream[:at], True)


def _run(scan: DetachScan, chunks: list[bytes]) -> tuple[bytes, bool]:
    out = b""
    for chunk in chunks:
        result = scan.feed(chunk)
        out += result.passed
        if result.detached:
            return out, True
        scan = result.next
    return out + scan.flush(), False


def _chunkings(stream: bytes) -> list[list[bytes]]:
    """Every way to cut a short stream into chunks."""
    cuts_all = []
    n = len(stream)
    for mask in range(1 << max(n - 1, 0)):
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        cuts_all.append([stream[a:b] for a, b in itertools.pairwise(cuts)])
    return cuts_all


@pytest.mark.parametrize("keys", [b"\x10\x11", b"\x10", b"aab", b"aba", b"aaa", b"abab", b"\x10\x10\x11"])
def test_scanner_matches_reference_for_every_stream_and_chunking(keys: bytes) -> None:
    alphabet = sorted(set(keys)) + [ord("x")]
    for length in range(7):
        for combo in itertools.product(alphabet, repeat=length):
            stream = bytes(combo)
            expected = _reference(stream, keys)
            for chunks in _chunkings(stream):
                assert _run(DetachScan(keys), chunks) == expected, (stream, chunks)


def test_scanner_random_long_streams() -> None:
    rng = random.Random(5)
    for _ in range(300):
        keys = bytes(rng.choice(b"pq\x10\x11") for _ in range(rng.randint(1, 4)))
        stream = bytes(rng.choice(b"pq\x10\x11ab") for _ in range(rng.randint(0, 200)))
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, 10))) if len(stream) > 1 else []
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=False)]
        assert _run(DetachScan(keys), chunks) == _reference(stream, keys)


def test_partial_match_is_held_then_released_by_other_bytes() -> None:
    scan = parse_detach_keys("").scan()
    first = scan.feed(b"hi\x10")
    assert first.passed == b"hi" and not first.detached and first.next.held == 1
    second = first.next.feed(b"x")
    assert second.passed == b"\x10x" and not second.detached and second.next.held == 0


def test_full_sequence_detaches_and_drops_what_follows() -> None:
    result = parse_detach_keys("").scan().feed(b"ls\r\x10\x11echo after")
    assert result.detached and result.passed == b"ls\r"


def test_sequence_split_across_chunks_detaches() -> None:
    first = parse_detach_keys("").scan().feed(b"abc\x10")
    assert first.passed == b"abc"
    second = first.next.feed(b"\x11")
    assert second.detached and second.passed == b""


def test_repeated_first_key_still_detaches() -> None:
    result = parse_detach_keys("").scan().feed(b"\x10\x10\x11")
    assert result.detached and result.passed == b"\x10"


def test_flush_releases_a_held_partial_match_at_eof() -> None:
    result = parse_detach_keys("a,b,c").scan().feed(b"zab")
    assert result.passed == b"z" and result.next.flush() == b"ab"


def test_empty_sequence_passes_everything() -> None:
    result = DetachScan(b"").feed(b"\x10\x11")
    assert result.passed == b"\x10\x11" and not result.detached


def test_large_paste_without_keys_is_passed_whole() -> None:
    data = b"y" * 1_000_000
    result = parse_detach_keys("").scan().feed(data)
    assert result.passed == data and result.next.held == 0
