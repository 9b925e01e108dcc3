"""Go's parsers that dockerd's options go through (strconv, go-units), with their error
messages, so a bad value is refused in dockerd's words."""

from __future__ import annotations

import re
from collections.abc import Mapping

_INT64_MAX = 2**63 - 1


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_atoi(text: str) -> int:
    """strconv.Atoi."""
    if not _GO_INT.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValueError(f"strconv.Atoi: parsing {_go_quote(text)}: value out of range")
    return value


def go_parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {_go_quote(text)}: invalid syntax")


_DECIMAL = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_BINARY = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def _parse_size(text: str, units: Mapping[str, int]) -> int:
    """go-units parseSize: a number, an optional space, an optional suffix (k, kb, kib...)."""
    number, space, suffix = text.partition(" ")
    if not space:
        cut = max(text.rfind(c) for c in "0123456789.")
        if cut < 0:
            raise ValueError(f"invalid size: '{text}'")
        number, suffix = text[: cut + 1], text[cut + 1 :]
    if not _GO_FLOAT.fullmatch(number):
        raise ValueError(f"strconv.ParseFloat: parsing {_go_quote(number)}: invalid syntax")
    size = float(number)
    if size == float("inf"):
        raise ValueError(f"strconv.ParseFloat: parsing {_go_quote(number)}: value out of range")
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if suffix:
        if len(suffix) > 3:
            raise ValueError(f"invalid suffix: '{suffix}'")
        lowered = suffix.lower()
        multiplier = 1 if lowered == "b" else units.get(lowered[0])
        if (
            multiplier is None
            or (lowered[0] == "b" and len(lowered) > 1)
            or (len(lowered) == 2 and lowered[1] != "b")
            or (len(lowered) == 3 and lowered[1:] != "ib")
        ):
            raise ValueError(f"invalid suffix: '{lowered}'")
        size *= multiplier
    return int(size) if size <= _INT64_MAX else -1  # Go's int64() of a too large float


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: decimal units (`10m` is 10,000,000), as json-file's max-size."""
    return _parse_size(text, _DECIMAL)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: binary units (`10m` is 10 MiB)."""
    return _parse_size(text, _BINARY)
