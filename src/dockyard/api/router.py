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


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = [(r.method, _compile(r.pattern), r.handler) for r in routes]

    def match(self, method: str, path: str) -> tuple[Handler, Mapping[str, str]]:
        for route_method, regex, handler in self._routes:
            if route_method != method:
                continue
            found = regex.fullmatch(path)
            if found:
                return handler, found.groupdict()
        raise NotFound("page not found")
