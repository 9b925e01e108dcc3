"""Volumes of the local driver: the record, name rules, list filters and prune selection.

Pure: the engine (engine/volumes.py) owns the I/O and the identity map; this module
decides what a name, a filter or a prune means, with dockerd's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.filters import Filters
from dockyard.model.goparsers import ram_in_bytes

LOCAL = "local"
# The label dockerd puts on volumes it made for `-v /path` and an image's VOLUME.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_RESTRICTED = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
LIST_FILTERS = ("name", "label", "dangling", "driver")
PRUNE_FILTERS = ("label", "label!", "all")


def mountpoint(volumes_root: str, name: str) -> str:
    """`<data-root>/volumes/<name>/_data`, as dockerd's local driver lays it out."""
    return f"{volumes_root}/{name}/_data"


@dataclass(frozen=True, slots=True)
class Volume:
    """One volume. labels/options are None when the creator sent none (dockerd's null)."""

    name: str
    created: str  # RFC 3339, seconds, as dockerd's CreatedAt
    driver: str = LOCAL
    labels: Mapping[str, str] | None = None
    options: Mapping[str, str] | None = None

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})


def check_name(name: str) -> None:
    """dockerd's local driver rule, and its 400 words (wrapped as its OpErr)."""
    if len(name) == 1:
        raise InvalidArgument(
            f"create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )
    if not _NAME.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only "{_RESTRICTED}" '
            "are allowed. If you intended to pass a host directory, use absolute path"
        )


def check_driver(name: str, driver: str) -> None:
    """Only the local driver exists: any other is a plugin dockerd cannot find (404)."""
    if driver != LOCAL:
        raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')


# The local driver's options, and the ones each needs beside it (dockerd's mandatoryOpts).
OPTION_KEYS = ("type", "o", "device", "size")
_NEEDS = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """A local volume's driver options: a filesystem to mount on its `_data` (tmpfs, a bind of
    a host directory with `type=none,o=bind`, any type the kernel has), and a quota size."""

    type: str = ""
    device: str = ""
    o: str = ""
    size: int = 0

    @property
    def needs_mount(self) -> bool:
        return bool(self.device or self.type)


def check_options(name: str, options: Mapping[str, str], *, quota: bool = False) -> LocalOptions:
    """dockerd's local driver checks at create, with its 400 words (wrapped as its OpErr):
    known keys only, a size it can parse and enforce (`quota`: the data root has project
    quotas), and the options each needs beside it. Whether the mount works is seen at start."""
    for key in sorted(options):
        if key not in OPTION_KEYS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    size = 0
    if "size" in options:
        try:
            size = ram_in_bytes(options["size"])
        except ValueError as exc:
            raise InvalidArgument(f"create {name}: {exc}") from None
        if size > 0 and not quota:
            raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for key, needed in _NEEDS:
        if key in options:
            for other in needed:
                if other not in options:
                    raise InvalidArgument(f'create {name}: missing required option: "{other}"')
    return LocalOptions(options.get("type", ""), options.get("device", ""), options.get("o", ""), size)


def local_options(options: Mapping[str, str] | None) -> LocalOptions:
    """The options of a volume made already (checked at its create)."""
    o = options or {}
    return LocalOptions(o.get("type", ""), o.get("device", ""), o.get("o", ""))


def select(volumes: Iterable[Volume], filters: Filters, in_use: Iterable[str]) -> list[Volume]:
    """`GET /volumes?filters=`: name (substring or expression), label, dangling, driver."""
    filters.validate(LIST_FILTERS)
    dangling = filters.bool_value("dangling")
    used = frozenset(in_use)
    chosen = []
    for v in volumes:
        if not filters.match_regex("name", v.name):
            continue
        if not filters.match_exact("driver", v.driver):
            continue
        if not filters.match_labels(v.labels or {}):
            continue
        if dangling is not None and (v.name not in used) != dangling:
            continue
        chosen.append(v)
    return sorted(chosen, key=lambda v: v.name)


def prunable(volumes: Iterable[Volume], filters: Filters, in_use: Iterable[str], *, all_named: bool) -> list[Volume]:
    """`POST /volumes/prune`: unused volumes; anonymous ones only unless `all=true` (API 1.42+,
    `all_named` for older clients, which pruned every unused one)."""
    filters.validate(PRUNE_FILTERS)
    every = filters.bool_value("all")
    if every is None:
        every = all_named
    used = frozenset(in_use)
    chosen = []
    for v in volumes:
        if v.name in used or (not every and not v.anonymous):
            continue
        if not filters.match_labels(v.labels or {}):
            continue
        chosen.append(v)
    return sorted(chosen, key=lambda v: v.name)
