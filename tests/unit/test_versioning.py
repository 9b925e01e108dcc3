"""API version prefixes: /v1.NN/ splitting and the supported range."""

from __future__ import annotations

import pytest

from dockyard.api.versioning import (
    API_VERSION,
    MIN_API_VERSION,
    VersionedPath,
    at_least,
    split_version,
)
from dockyard.errors import InvalidArgument


def test_constants() -> None:
    assert API_VERSION == "1.50"
    assert MIN_API_VERSION == "1.24"


@pytest.mark.parametrize(
    ("raw", "path", "version"),
    [
        ("/v1.41/x", "/x", "1.41"),
        ("/v1.41/containers/json", "/containers/json", "1.41"),
        ("/v1.50/x", "/x", "1.50"),
        ("/v1.24/_ping", "/_ping", "1.24"),
        ("/v1.41/images/library/busybox/json", "/images/library/busybox/json", "1.41"),
        ("/v1.41/", "/", "1.41"),
        ("/x", "/x", API_VERSION),
        ("/_ping", "/_ping", API_VERSION),
        ("/", "/", API_VERSION),
        ("/v1.41", "/v1.41", API_VERSION),  # no path after the prefix: not a prefix
        ("/vx.y/x", "/vx.y/x", API_VERSION),
        ("/v1/x", "/v1/x", API_VERSION),
        ("/images/v1.41/json", "/images/v1.41/json", API_VERSION),
    ],
)
def test_split(raw: str, path: str, version: str) -> None:
    assert split_version(raw) == VersionedPath(path, version)


@pytest.mark.parametrize("version", ["1.99", "1.51", "2.0", "1.100"])
def test_too_new(version: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        split_version(f"/v{version}/x")
    assert info.value.message == (
        f"client version {version} is too new. Maximum supported API version is 1.50"
    )


def test_too_new_exact_message() -> None:
    with pytest.raises(InvalidArgument) as info:
        split_version("/v1.99/containers/json")
    assert (
        info.value.message
        == "client version 1.99 is too new. Maximum supported API version is 1.50"
    )


@pytest.mark.parametrize("version", ["1.12", "1.23", "1.5", "0.99"])
def test_too_old(version: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        split_version(f"/v{version}/x")
    assert info.value.message == (
        f"client version {version} is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )


def test_too_old_starts_with_dockerd_wording() -> None:
    with pytest.raises(
        InvalidArgument,
        match=r"^client version 1\.12 is too old\. Minimum supported API version is 1\.24, ",
    ):
        split_version("/v1.12/version")


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        ("1.41", "1.41", True),
        ("1.42", "1.41", True),
        ("1.40", "1.41", False),
        ("1.50", "1.9", True),  # numeric, not string, comparison
        ("1.9", "1.10", False),
        ("2.0", "1.50", True),
        ("1.24", "1.25", False),
    ],
)
def test_at_least(version: str, minimum: str, expected: bool) -> None:
    assert at_least(version, minimum) is expected
