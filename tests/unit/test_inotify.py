"""The parser of inotify's read(2) buffers."""

from __future__ import annotations

import struct

from dockyard.linux.inotify import IN_IGNORED, IN_MOVED_TO, parse_events


def _event(wd: int, mask: int, name: bytes = b"") -> bytes:
    padded = name + b"\0" * (-len(name) % 16 if name else 0)
    return struct.pack("iIII", wd, mask, 0, len(padded)) + padded


def test_events_with_and_without_names() -> None:
    data = _event(1, IN_MOVED_TO, b"ctr.log.1") + _event(2, IN_IGNORED) + _event(1, 0x2, b"x")
    assert list(parse_events(data)) == [(1, IN_MOVED_TO), (2, IN_IGNORED), (1, 0x2)]


def test_a_cut_event_at_the_end_is_not_read() -> None:
    data = _event(3, IN_MOVED_TO) + _event(4, IN_MOVED_TO)[:10]
    assert list(parse_events(data)) == [(3, IN_MOVED_TO)]


def test_overflow_has_wd_minus_one() -> None:
    assert list(parse_events(_event(-1, 0x4000))) == [(-1, 0x4000)]
