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


def go_duration(ns: int) -> str:
    """A duration as Go's time.Duration.String() prints it: 300ms, 1.5s, 1m30s, 2h0m0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")
