"""Timestamps as Docker writes them: RFC 3339 with nanoseconds, in UTC."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_FRACTION = re.compile(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def format_ns(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def now() -> str:
    return format_ns(time.time_ns())


def parse_ns(text: str) -> int:
    """RFC 3339 (any fraction length, Z or offset) -> unix nanoseconds; 0 when unparseable."""
    match = _FRACTION.match(text.strip())
    if match is None:
        return 0
    head, fraction, zone = match.groups()
    try:
        stamp = datetime.fromisoformat(head + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return 0
    nanos = int((fraction or ".0")[1:].ljust(9, "0")[:9])
    return int(stamp.timestamp()) * 1_000_000_000 + nanos


def unix_seconds(text: str) -> int:
    return parse_ns(text) // 1_000_000_000
