"""The local image store's entries as the API lists them, and `docker images`' selection of
them: its filters with dockerd 28's rules (pure; the store hands in its entries)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from dockyard.model import times
from dockyard.model.filters import Filters, parse_time_filter
from dockyard.model.images import Image
from dockyard.model.references import tag_matches

IMAGE_FILTERS = ("dangling", "label", "reference", "before", "since", "until")


@dataclass(frozen=True)
class ImageEntry:
    image: Image
    tags: tuple[str, ...]  # full names: docker.io/library/busybox:latest
    parent: str
    loaded_at: str
    size: int
    digests: tuple[str, ...] = ()  # full repository digests: 127.0.0.1:5000/x/bb@sha256:...

    @property
    def id(self) -> str:
        return self.image.id

    @property
    def names(self) -> tuple[str, ...]:
        return self.tags + self.digests


@dataclass(frozen=True)
class DeleteRecord:
    untagged: str = ""
    deleted: str = ""


def select_images(
    entries: Iterable[ImageEntry], filters: Filters, include_all: bool, created_of: Callable[[str], int], now_ns: int
) -> list[ImageEntry]:
    """`docker images [-a] [--filter ...]`, newest first. `created_of(name)` is the creation
    time (ns) of the image a before=/since= filter names."""
    filters.validate(IMAGE_FILTERS)
    entries = list(entries)
    dangling = filters.bool_value("dangling")
    before = min((created_of(v) for v in filters.values("before")), default=None)
    since = max((created_of(v) for v in filters.values("since")), default=None)
    until = min((parse_time_filter(v, now_ns) for v in filters.values("until")), default=None)
    patterns = filters.values("reference")
    parents = {e.parent for e in entries if e.parent}
    out = []
    for entry in entries:
        created = times.parse_ns(entry.image.created)
        if dangling is True and entry.id in parents:
            continue  # dangling=true lists heads only
        if not filters.match_labels(entry.image.config.labels):
            continue
        if (before is not None and created >= before) or (since is not None and created <= since):
            continue
        if until is not None and created > until:
            continue
        if patterns:
            # As dockerd: only the matching names are listed.
            entry = replace(
                entry,
                tags=tuple(t for t in entry.tags if any(tag_matches(p, t) for p in patterns)),
                digests=tuple(d for d in entry.digests if any(tag_matches(p, d) for p in patterns)),
            )
        if not entry.names:
            # Untagged: an intermediate image (one with children) only with -a.
            if entry.id in parents and not include_all:
                continue
            if dangling is False or patterns:
                continue
        elif dangling is True and entry.tags:
            continue
        out.append(entry)
    return sorted(out, key=lambda e: e.image.created, reverse=True)
