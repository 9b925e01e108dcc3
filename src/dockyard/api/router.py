"""Method + path pattern -> route function."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from dockyard.api.messages import Request, Response
from dockyard.errors import NotFound

Handler = Callable[[Request], Awaitable[Response]]

# `{name}` matches one segment; `{name*}` matches several (image names have slashes).
_PARAM = re.compile(r"\{(\w+)(\*?)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    out, pos = [], 0
    for match in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        out.append(f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})")
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + "/?")  # used with fullmatch: `$` would take a trailing "\n"


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""


class Router:
    """Routes are tried in their order, among those of the request's method and first path
    segment (every pattern starts with a literal one): a handful of regexes, not all 50."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes: dict[tuple[str, str], list[tuple[re.Pattern[str], Handler]]] = {}
        for r in routes:
            first = _first_segment(r.pattern)
            if _PARAM.search(first):
                raise ValueError(f"a route pattern must start with a literal segment: {r.pattern}")
            self._routes.setdefault((r.method, first), []).append((_compile(r.pattern), r.handler))

    def match(self, method: str, path: str) -> tuple[Handler, Mapping[str, str]]:
        for regex, handler in self._routes.get((method, _first_segment(path)), ()):
            found = regex.fullmatch(path)
            if found:
                return handler, found.groupdict()
        raise NotFound("page not found")
