"""model/registries.py: which endpoints a registry is tried at, mirrors, the offline guard."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.registries import (
    Endpoint,
    OfflinePolicy,
    RegistrySettings,
    split_host,
    validate_mirror,
)


def test_secure_registry_is_verified_https_only() -> None:
    assert RegistrySettings().endpoints("registry.example.com:5000") == [Endpoint("https", "registry.example.com:5000", True)]


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "127.8.9.10", "localhost:5000", "[::1]:5000", "localhost"])
def test_loopback_is_insecure_https_unverified_then_http(host: str) -> None:
    assert RegistrySettings().endpoints(host) == [Endpoint("https", host, False), Endpoint("http", host, False)]


def test_insecure_registries_by_name_and_cidr() -> None:
    s = RegistrySettings.build(["myreg:5000", "10.1.0.0/16", "http://other.example"])
    assert s.is_insecure("myreg:5000")
    assert not s.is_insecure("myreg")  # dockerd matches the index name exactly
    assert not s.is_insecure("myreg:5001")
    assert s.is_insecure("10.1.2.3:443") and s.is_insecure("10.1.2.3")
    assert not s.is_insecure("10.2.0.1:5000")
    assert s.is_insecure("other.example")  # the scheme is dropped, as dockerd does
    assert not s.is_insecure("registry-1.docker.io")
    assert [e.scheme for e in s.endpoints("10.1.2.3:5000")] == ["https", "http"]


def test_docker_hub_tries_mirrors_in_order_then_itself() -> None:
    s = RegistrySettings.build(mirrors=["https://mirror.example", "http://127.0.0.1:5000/", "https://127.0.0.1:5001/pre/"])
    assert s.mirrors == ("https://mirror.example/", "http://127.0.0.1:5000/", "https://127.0.0.1:5001/pre/")
    assert s.endpoints("docker.io") == [
        Endpoint("https", "mirror.example", True, mirror=True),
        Endpoint("http", "127.0.0.1:5000", False, mirror=True),
        Endpoint("https", "127.0.0.1:5001", False, mirror=True, path="/pre"),  # loopback: TLS not verified
        Endpoint("https", "registry-1.docker.io", True),
    ]
    assert s.endpoints("docker.io")[2].base == "https://127.0.0.1:5001/pre"
    # Mirrors are docker.io's only.
    assert s.endpoints("quay.io") == [Endpoint("https", "quay.io", True)]


@pytest.mark.parametrize(("text", "words"), [
    ("mirror.example", "unsupported scheme ''"),
    ("ftp://mirror.example", "unsupported scheme 'ftp'"),
    ("https://mirror.example/?a=b", "query or fragment"),
    ("https://u:p@mirror.example/", "username/password not allowed"),
    ("https://", "not a valid URI"),
])  # fmt: skip
def test_bad_mirrors_are_refused_with_dockerds_words(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid mirror") as err:
        validate_mirror(text)
    assert words in err.value.message


def test_split_host() -> None:
    assert split_host("a.b:5000") == ("a.b", 5000)
    assert split_host("[::1]:5000") == ("::1", 5000)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("host") == ("host", None)


def test_offline_policy() -> None:
    off = OfflinePolicy.from_env({})
    assert off.refusal("registry-1.docker.io") is None
    on = OfflinePolicy.from_env({"DOCKYARD_OFFLINE": "1"})
    assert on.refusal("127.0.0.1") is None and on.refusal("::1") is None and on.refusal("localhost") is None
    refused = on.refusal("registry-1.docker.io")
    assert refused is not None and "DOCKYARD_OFFLINE" in refused and "registry-1.docker.io" in refused
    assert on.refusal("10.0.0.1") is not None
    allowed = OfflinePolicy.from_env({"DOCKYARD_OFFLINE": "true", "DOCKYARD_OFFLINE_ALLOW": "100.127.0.0/30, fd00::/64"})
    assert allowed.refusal("100.127.0.2") is None and allowed.refusal("fd00::5") is None
    assert allowed.refusal("100.127.0.9") is not None
    assert OfflinePolicy.from_env({"DOCKYARD_OFFLINE": "0", "DOCKYARD_OFFLINE_ALLOW": "x"}).enabled is False
    with pytest.raises(InvalidArgument):
        OfflinePolicy.from_env({"DOCKYARD_OFFLINE": "1", "DOCKYARD_OFFLINE_ALLOW": "not-a-cidr"})


def test_http_request_refuses_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from dockyard.distribution import http

    monkeypatch.setattr(http, "OFFLINE", OfflinePolicy(True))
    for url in ("https://registry-1.docker.io/v2/", "http://10.20.30.40:5000/v2/"):
        with pytest.raises(http.TransportError, match="DOCKYARD_OFFLINE is set"):
            asyncio.run(asyncio.wait_for(http.request("GET", http.parse_url(url)), 2))
