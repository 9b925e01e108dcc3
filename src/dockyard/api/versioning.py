"""API version prefixes: which /v1.NN/ requests we serve."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

API_VERSION = "1.50"
MIN_API_VERSION = "1.24"

_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


@functools.lru_cache(maxsize=64)  # a handful of versions, asked on every request
def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def at_least(version: str, minimum: str) -> bool:
    return _key(version) >= _key(minimum)


@dataclass(frozen=True)
class VersionedPath:
    path: str
    version: str


def split_version(raw_path: str) -> VersionedPath:
    """'/v1.41/containers/json' -> ('/containers/json', '1.41'), checking the range."""
    match = _PREFIX.match(raw_path) if raw_path.startswith("/v") else None
    if match is None:
        return VersionedPath(raw_path, API_VERSION)
    version, path = match.group(1, 2)
    return VersionedPath(path, _served(version))


@functools.lru_cache(maxsize=64)
def _served(version: str) -> str:
    """The version, if it is one we serve."""
    if _key(version) > _key(API_VERSION):
        raise InvalidArgument(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if _key(version) < _key(MIN_API_VERSION):
        raise InvalidArgument(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    return version
