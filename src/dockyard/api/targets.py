"""A request's target as Go's net/http reads it: the path and the query."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from dockyard.api.decoder import deep_query_value
from dockyard.errors import InvalidArgument

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def split_target(raw: bytes) -> tuple[str, str] | None:
    """A request target -> (path, query), or None where Go's url.ParseRequestURI fails."""
    target = raw.decode("latin-1")  # llhttp let only visible ASCII through
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
    elif "://" in target:  # absolute form: http://host/path?query
        try:
            parts = urlsplit(target)
        except ValueError:
            return None
        path, query = parts.path or "/", parts.query
    else:
        return None
    if "%" not in path:
        return path, query
    if _BAD_ESCAPE.search(path):
        return None  # Go: invalid URL escape
    return unquote(path), query


def parse_query(raw_query: str) -> dict[str, tuple[str, ...]]:
    bad_escape = _BAD_ESCAPE.search(raw_query)
    if bad_escape is not None:  # Go's r.ParseForm fails, dockerd answers 400
        raise InvalidArgument(f'invalid URL escape "{raw_query[bad_escape.start() : bad_escape.start() + 3]}"')
    query = {k: tuple(v) for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
    deep = deep_query_value(query)
    if deep is not None:  # what the route would parse is too deep for it (filters=...)
        raise InvalidArgument("invalid filter" if deep == "filters" else f"invalid value for {deep}: nested too deep")
    return query
