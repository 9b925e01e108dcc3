"""Object identifiers: 64-hex ids, their 12-hex short form, and sha256 digests."""

from __future__ import annotations

import re
import secrets

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def new_id() -> str:
    """A fresh random 64-hex id, never all digits (dockerd avoids ids that parse as numbers)."""
    while True:
        value = secrets.token_hex(32)
        if not value[:12].isdigit():
            return value


def short_id(value: str) -> str:
    return strip_algorithm(value)[:12]


def is_full_id(value: str) -> bool:
    return bool(_HEX64.match(value))


def strip_algorithm(value: str) -> str:
    """'sha256:abc' -> 'abc'; other strings pass unchanged."""
    return value.removeprefix("sha256:")


def is_digest(value: str) -> bool:
    return value.startswith("sha256:") and is_full_id(value[7:])
