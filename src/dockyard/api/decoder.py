"""JSON from clients, read the way Go's encoding/json reads it (dockerd's decoder is the reference).

Python's json module takes more than Go's does, and some of it is a way to hurt the daemon:
- `NaN`, `Infinity` and `-Infinity` are not JSON; Go stops at their first letter;
- `1e400` becomes `inf` (Go: "cannot unmarshal number 1e400 into Go value of type float64");
- each nesting level is one C recursion: 100,000 `[` raise RecursionError (Go stops at 10,000
  with "exceeded max depth"); we stop at MAX_DEPTH, past any Docker document and far below
  Python's recursion limit, so no later walk over the document can recurse too deep either;
- a lone UTF-16 surrogate (`"\\ud800"`) stays in the str and fails any later UTF-8 encoding;
  Go puts U+FFFD in its place, and so do we; invalid UTF-8 bytes become U+FFFD as in Go.
The same depth check guards JSON in the query string (`filters`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

MAX_DEPTH = 100
_MAX_INT_DIGITS = 400  # beyond float64's range as well: no Go type takes such a number

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [{ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}.get(b, 0) for b in range(256)]
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


TRAILING_CONTENT = "unexpected content after JSON"  # dockerd says it without "invalid JSON"


class JsonError(ValueError):
    """A document Go's decoder refuses; the message is in Go's words where it has some."""


def decode(raw: bytes | bytearray | str) -> Any:
    """One JSON document (raises JsonError). Trailing content is refused as dockerd does."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    check_depth(text)
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_float, parse_int=_int)
    except JsonError:
        raise
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            raise JsonError(TRAILING_CONTENT) from None
        raise JsonError(str(exc)) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: cannot happen below MAX_DEPTH
        raise JsonError(str(exc)) from None
    if _LONE_SURROGATE_ESCAPE.search(text):
        doc = _mend(doc)
    return doc


def check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH without parsing (strings hold no structure)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # cannot nest deeper than it has brackets: every sane document stops here
    brackets = _STRING.sub("", text).encode("utf-8", "replace").translate(None, _NOT_BRACKETS)
    # translate, map, accumulate and max all run in C: 6 million brackets take 0.2 s.
    if max(accumulate(map(_DELTA.__getitem__, brackets)), default=0) > MAX_DEPTH:
        depth = 0
        for byte in brackets:
            depth += _DELTA[byte]
            if depth > MAX_DEPTH:
                raise JsonError(f"invalid character '{chr(byte)}' exceeded max depth")


def deep_query_value(query: Mapping[str, tuple[str, ...]]) -> str | None:
    """The name of a query parameter whose JSON nests too deep to be parsed safely, or None."""
    for name, values in query.items():
        for value in values:
            try:
                check_depth(value)
            except JsonError:
                return name
    return None


def _refuse_constant(name: str) -> Any:
    # Where Go's scanner stops: at the first letter, or after the minus sign.
    if name.startswith("-"):
        raise JsonError(f"invalid character '{name[1]}' in numeric literal")
    raise JsonError(f"invalid character '{name[0]}' looking for beginning of value")


def _float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise JsonError(f"json: cannot unmarshal number {_shown(literal)} into Go value of type float64")
    return value


def _int(literal: str) -> int:
    if len(literal) > _MAX_INT_DIGITS:
        raise JsonError(f"json: cannot unmarshal number {_shown(literal)} into Go value of type float64")
    return int(literal)


def _shown(literal: str) -> str:
    return literal if len(literal) <= 40 else literal[:20] + "..." + literal[-10:]


def _mend(value: Any) -> Any:
    """Lone surrogates -> U+FFFD, in keys and values (depth is bounded: recursion is safe)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_mend(item) for item in value]
    if isinstance(value, dict):
        return {_mend(key): _mend(item) for key, item in value.items()}
    return value
