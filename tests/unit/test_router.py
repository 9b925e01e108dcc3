"""Route matching: method + path pattern, `{name}` one segment, `{name*}` several."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from dockyard.api.messages import EmptyResponse, Request, Response
from dockyard.api.router import Route, Router
from dockyard.errors import NotFound


def _handler(label: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        return EmptyResponse()

    handler.__name__ = label
    return handler


NAMES = [
    ("GET", "/_ping"),
    ("HEAD", "/_ping"),
    ("GET", "/containers/json"),
    ("POST", "/containers/create"),
    ("GET", "/containers/{id}/json"),
    ("POST", "/containers/{id}/start"),
    ("DELETE", "/containers/{id}"),
    ("GET", "/images/json"),
    ("GET", "/images/get"),
    ("GET", "/images/{name*}/json"),
    ("GET", "/images/{name*}/history"),
    ("GET", "/images/{name*}/get"),
    ("POST", "/images/{name*}/tag"),
    ("DELETE", "/images/{name*}"),
    ("GET", "/networks/{id}/containers/{cid}"),
]
HANDLERS = {key: _handler(f"{key[0]} {key[1]}") for key in NAMES}


@pytest.fixture()
def router() -> Router:
    return Router(Route(method, pattern, HANDLERS[(method, pattern)]) for method, pattern in NAMES)


def _which(router: Router, method: str, path: str) -> tuple[str, dict[str, str]]:
    handler, params = router.match(method, path)
    return handler.__name__, dict(params)


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/_ping", "GET /_ping", {}),
        ("HEAD", "/_ping", "HEAD /_ping", {}),
        ("GET", "/containers/json", "GET /containers/json", {}),
        ("POST", "/containers/create", "POST /containers/create", {}),
        ("GET", "/containers/abc123/json", "GET /containers/{id}/json", {"id": "abc123"}),
        ("POST", "/containers/my_name.1-x/start", "POST /containers/{id}/start", {"id": "my_name.1-x"}),
        ("DELETE", "/containers/abc", "DELETE /containers/{id}", {"id": "abc"}),
        ("GET", "/images/busybox/json", "GET /images/{name*}/json", {"name": "busybox"}),
        ("GET", "/images/library/busybox/json", "GET /images/{name*}/json", {"name": "library/busybox"}),
        ("GET", "/images/localhost:5000/org/app:1.0/json", "GET /images/{name*}/json",
         {"name": "localhost:5000/org/app:1.0"}),
        ("GET", "/images/busybox@sha256:abcd/history", "GET /images/{name*}/history",
         {"name": "busybox@sha256:abcd"}),
        ("GET", "/images/a/b/c/get", "GET /images/{name*}/get", {"name": "a/b/c"}),
        ("POST", "/images/library/busybox/tag", "POST /images/{name*}/tag", {"name": "library/busybox"}),
        ("DELETE", "/images/library/busybox:latest", "DELETE /images/{name*}", {"name": "library/busybox:latest"}),
        ("GET", "/networks/n1/containers/c1", "GET /networks/{id}/containers/{cid}", {"id": "n1", "cid": "c1"}),
    ],
)  # fmt: skip
def test_match(router: Router, method: str, path: str, route: str, params: dict[str, str]) -> None:
    assert _which(router, method, path) == (route, params)


def test_fixed_route_registered_first_wins(router: Router) -> None:
    assert _which(router, "GET", "/images/json") == ("GET /images/json", {})
    assert _which(router, "GET", "/images/get") == ("GET /images/get", {})


def test_image_named_json(router: Router) -> None:
    assert _which(router, "GET", "/images/json/json") == (
        "GET /images/{name*}/json",
        {"name": "json"},
    )


def test_star_param_is_greedy_over_suffix(router: Router) -> None:
    # an image whose path itself ends in /json: the last /json is the action
    assert _which(router, "GET", "/images/org/json/json") == (
        "GET /images/{name*}/json",
        {"name": "org/json"},
    )


def test_precedence_follows_registration_order() -> None:
    star = _handler("star")
    fixed = _handler("fixed")
    router = Router([Route("GET", "/images/{name*}", star), Route("GET", "/images/json", fixed)])
    assert router.match("GET", "/images/json")[0] is star
    router = Router([Route("GET", "/images/json", fixed), Route("GET", "/images/{name*}", star)])
    assert router.match("GET", "/images/json")[0] is fixed


def test_single_segment_param_rejects_slash(router: Router) -> None:
    with pytest.raises(NotFound):
        router.match("GET", "/containers/a/b/json")


def test_param_must_not_be_empty(router: Router) -> None:
    with pytest.raises(NotFound):
        router.match("GET", "/containers//json")
    with pytest.raises(NotFound):
        router.match("GET", "/images//json")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/containers/json"), ("GET", "/containers/create"), ("PUT", "/_ping"),
     ("GET", "/containers/abc"), ("POST", "/images/busybox/json"), ("head", "/_ping")],
)  # fmt: skip
def test_method_mismatch_is_not_found(router: Router, method: str, path: str) -> None:
    with pytest.raises(NotFound) as info:
        router.match(method, path)
    assert info.value.message == "page not found"


@pytest.mark.parametrize("path", ["/", "", "/nope", "/containers", "/containers/json/extra", "/_pingx",
                                  "/x/_ping", "/containers/abc/json?x=1"])  # fmt: skip
def test_unknown_path_is_not_found(router: Router, path: str) -> None:
    with pytest.raises(NotFound, match="^page not found$"):
        router.match("GET", path)


@pytest.mark.parametrize(
    ("path", "route", "params"),
    [("/_ping/", "GET /_ping", {}),
     ("/containers/json/", "GET /containers/json", {}),
     ("/containers/abc/json/", "GET /containers/{id}/json", {"id": "abc"}),
     ("/images/library/busybox/json/", "GET /images/{name*}/json", {"name": "library/busybox"})],
)  # fmt: skip
def test_trailing_slash_accepted(
    router: Router, path: str, route: str, params: dict[str, str]
) -> None:
    assert _which(router, "GET", path) == (route, params)


def test_double_trailing_slash_rejected(router: Router) -> None:
    with pytest.raises(NotFound):
        router.match("GET", "/_ping//")


def test_pattern_literals_are_escaped() -> None:
    router = Router([Route("GET", "/a.b/{x}", _handler("dot"))])
    assert router.match("GET", "/a.b/1")[1] == {"x": "1"}
    with pytest.raises(NotFound):
        router.match("GET", "/aXb/1")


def test_empty_router() -> None:
    with pytest.raises(NotFound):
        Router([]).match("GET", "/_ping")
