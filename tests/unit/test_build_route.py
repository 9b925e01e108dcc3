"""POST /build's query and headers as BuildOptions, and its events as the wire's JSON."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.api.messages import Request
from dockyard.api.routes.builds import build_options, event_doc
from dockyard.errors import InvalidArgument
from dockyard.model.builds import BuildFailure, BuildOutput, BuildResult
from dockyard.model.registryauth import Credentials


class _NoBody:
    async def read(self, n: int = -1) -> bytes:
        return b""


def _request(query: dict[str, tuple[str, ...]], headers: dict[str, str] | None = None) -> Request:
    return Request("POST", "/build", "1.50", query, headers or {}, {}, body=_NoBody())


def test_the_cli_query() -> None:
    opts = build_options(_request({
        "t": ("a:1", "b"), "buildargs": ('{"X":"1","Y":null}',), "labels": ('{"k":"v"}',), "rm": ("0",),
        "forcerm": ("1",), "nocache": ("1",), "q": ("1",), "target": ("final",), "networkmode": ("none",),
        "extrahosts": ("h1:1.2.3.4", "h2:5.6.7.8"), "shmsize": ("1048576",), "memory": ("67108864",),
        "cachefrom": ('["img:1"]',), "dockerfile": ("sub/Dockerfile",), "version": ("1",),
    }))  # fmt: skip
    assert [str(t) for t in opts.tags] == ["docker.io/library/a:1", "docker.io/library/b"]
    assert dict(opts.build_args) == {"X": "1", "Y": None} and dict(opts.labels) == {"k": "v"}
    assert (opts.remove, opts.force_remove, opts.no_cache, opts.quiet) == (False, True, True, True)
    assert opts.target == "final" and opts.network_mode == "none"
    assert opts.extra_hosts == ("h1:1.2.3.4", "h2:5.6.7.8")
    assert (opts.shm_size, opts.memory) == (1048576, 67108864)
    assert opts.cache_from == ("img:1",) and opts.dockerfile == "sub/Dockerfile"


def test_defaults_and_docker_pys_two_dockerfile_values() -> None:
    opts = build_options(_request({"dockerfile": (".dockerfile.abc", "FROM busybox\n")}))
    assert opts.dockerfile == ".dockerfile.abc" and opts.remove and not opts.force_remove
    assert build_options(_request({})).dockerfile == "Dockerfile"


def test_registry_config_header() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"127.0.0.1:5000": {"username": "u", "password": "p"}}).encode())
    opts = build_options(_request({}, {"x-registry-config": header.decode()}))
    assert opts.registry_auth == {"127.0.0.1:5000": Credentials(username="u", password="p")}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"remote": ("https://github.com/x/y.git",)}, "remote contexts"),
        ({"version": ("2",)}, "BuildKit is not supported"),
        ({"squash": ("1",)}, "experimental"),
        ({"buildargs": ("[1]",)}, "not a JSON object"),
        ({"buildargs": ('{"A": 1}',)}, "not a string"),
        ({"labels": ('{"A": null}',)}, "not a string"),
        ({"cachefrom": ("{}",)}, "not a list"),
        ({"t": ("Bad:Tag:x",)}, "invalid reference format"),
        ({"memory": ("lots",)}, "invalid value for memory"),
    ],
)
def test_bad_queries(query: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build_options(_request(query))


def test_event_docs() -> None:
    assert event_doc(BuildOutput("Step 1/2 : FROM x\n")) == {"stream": "Step 1/2 : FROM x\n"}
    assert event_doc(BuildResult("sha256:ab")) == {"aux": {"ID": "sha256:ab"}}
    assert event_doc(BuildFailure("boom")) == {"errorDetail": {"message": "boom"}, "error": "boom"}
    assert event_doc(BuildFailure("The command 'x' returned a non-zero code: 7", 7))["errorDetail"] == {
        "code": 7, "message": "The command 'x' returned a non-zero code: 7"
    }
