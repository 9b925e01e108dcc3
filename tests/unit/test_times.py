"""RFC 3339 timestamps with nanoseconds, as Docker writes and reads them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dockyard.model.times import format_ns, go_duration, now, parse_ns, unix_seconds

NS = 1_000_000_000
# 2026-11-27T19:52:41Z
BASE = int(datetime(2026, 11, 27, 19, 52, 41, tzinfo=UTC).timestamp())


def test_format_nine_digits_and_z() -> None:
    assert format_ns(BASE * NS + 652377680) == "2026-11-27T19:52:41.652377680Z"
    assert format_ns(BASE * NS) == "2026-11-27T19:52:41.000000000Z"
    assert format_ns(BASE * NS + 1) == "2026-11-27T19:52:41.000000001Z"


def test_format_epoch() -> None:
    assert format_ns(0) == "1970-01-01T00:00:00.000000000Z"


def test_format_before_epoch() -> None:
    assert format_ns(-NS // 2) == "1969-12-31T23:59:59.500000000Z"


def test_now_shape() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", now())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T19:52:41.652377680Z", BASE * NS + 652377680),
        ("2026-11-27T19:52:41.652377680+00:00", BASE * NS + 652377680),
        ("2026-11-27T19:52:41.652377680-00:00", BASE * NS + 652377680),
        ("2026-11-27T21:52:41.652377680+02:00", BASE * NS + 652377680),
        ("2026-11-27T14:22:41.5-05:30", BASE * NS + 500_000_000),
        ("2026-11-27T19:52:41Z", BASE * NS),
        ("2026-11-27T19:52:41+00:00", BASE * NS),
        ("2026-11-27T19:52:41.5Z", BASE * NS + 500_000_000),
        ("2026-11-27T19:52:41.123Z", BASE * NS + 123_000_000),
        ("2026-11-27T19:52:41.000001Z", BASE * NS + 1_000),
        ("2026-11-27T19:52:41.1234567891234Z", BASE * NS + 123456789),
        ("  2026-11-27T19:52:41Z\n", BASE * NS),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.5Z", -NS // 2),
    ],
)
def test_parse(text: str, expected: int) -> None:
    assert parse_ns(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "2026-11-27", "2026-11-27T19:52:41", "2026-11-27 19:52:41Z",
     "2026-13-27T19:52:41Z", "2026-11-27T25:52:41Z", "2026-11-27T19:52:41.Z",
     "2026-11-27T19:52:41+0200", "1795809161"],
)  # fmt: skip
def test_parse_garbage_is_zero(text: str) -> None:
    assert parse_ns(text) == 0


def test_docker_zero_time() -> None:
    # dockerd's "never" (Go's zero time) is before the epoch: negative, not 0
    assert parse_ns("0001-01-01T00:00:00Z") == -62135596800 * NS
    assert unix_seconds("0001-01-01T00:00:00Z") == -62135596800


def test_unix_seconds() -> None:
    assert unix_seconds("2026-11-27T19:52:41.999999999Z") == BASE
    assert unix_seconds("2026-11-27T21:52:41+02:00") == BASE
    assert unix_seconds("nonsense") == 0


@pytest.mark.parametrize(
    "ns", [0, 1, NS - 1, BASE * NS + 652377680, -1, -NS - 7, 4102444800 * NS + 999_999_999]
)
def test_round_trip_ns(ns: int) -> None:
    assert parse_ns(format_ns(ns)) == ns


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T19:52:41.652377680Z",
        "2000-02-29T00:00:00.000000000Z",
        "1999-12-31T23:59:59.999999999Z",
    ],
)
def test_round_trip_text(text: str) -> None:
    assert format_ns(parse_ns(text)) == text


def test_offset_normalised_to_utc() -> None:
    assert format_ns(parse_ns("2026-11-28T01:22:41.25+05:30")) == "2026-11-27T19:52:41.250000000Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (300_000_000, "300ms"), (1_500_000_000, "1.5s"),
        (30_000_000_000, "30s"), (90_000_000_000, "1m30s"), (7_200_000_000_000, "2h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"), (-2_000_000_000, "-2s"),
    ],
)  # fmt: skip
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text
