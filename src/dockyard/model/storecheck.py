"""`dockyard system check`: where the database, the content store and the layer directories
disagree, and what `--repair` does about it. Pure: a view of the three in, a plan out.

A layer is sound when its row has a directory and that directory either has a tar-split
index for the row's diff id or (a layer stored before indexes) the content store holds its
tar. An image is broken when its config blob is gone or one of its layers is missing or
unsound. Repair removes broken images no container uses, then every layer row no remaining
image needs (children first), directories nothing owns and blobs nothing needs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Finding(enum.StrEnum):
    MISSING_DIR = "missing layer directory"
    ORPHAN_DIR = "orphan layer directory"
    BAD_INDEX = "bad layer index"
    MISSING_BLOB = "missing blob"
    ORPHAN_BLOB = "orphan blob"
    MISSING_LAYER = "missing layer"
    ORPHAN_LAYER = "orphan layer"
    BROKEN_IMAGE = "broken image"


@dataclass(frozen=True)
class Problem:
    kind: Finding
    subject: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class LayerFacts:
    diff_id: str
    cache_id: str
    depth: int  # position in its chain, from 0: children have larger depths


@dataclass(frozen=True)
class IndexFacts:
    """What a layer directory holds: whether it has a diff dir, and the diff id its index
    is for ("" without an index, "?" for an index that does not parse, "!" for one that does
    not rebuild its tar: a file changed or gone, found by `--verify`)."""

    has_diff: bool
    index_digest: str


@dataclass(frozen=True)
class StoreView:
    images: Mapping[str, tuple[str, ...]]  # image id -> its chain ids, bottom first
    layers: Mapping[str, LayerFacts]  # chain id -> row
    dirs: Mapping[str, IndexFacts]  # overlay/<cache id> -> what it holds
    blobs: frozenset[str]  # digests in the content store
    container_images: frozenset[str]  # images containers are made from
    container_dirs: frozenset[str]  # containers' writable layer dirs


@dataclass(frozen=True)
class Plan:
    problems: tuple[Problem, ...]
    remove_images: tuple[str, ...]
    kept_broken: tuple[str, ...]  # broken, but a container uses it
    remove_layers: tuple[str, ...]  # chain ids, children first
    remove_dirs: tuple[str, ...]
    remove_blobs: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.problems


def _layer_problem(chain: str, facts: LayerFacts, view: StoreView) -> Problem | None:
    held = view.dirs.get(facts.cache_id)
    if held is None or not held.has_diff:
        return Problem(Finding.MISSING_DIR, facts.cache_id, f"layer {chain}")
    if held.index_digest == "?":
        return Problem(Finding.BAD_INDEX, facts.cache_id, "does not parse")
    if held.index_digest == "!":
        return Problem(Finding.BAD_INDEX, facts.cache_id, f"does not rebuild the tar of {facts.diff_id}")
    if held.index_digest and held.index_digest != facts.diff_id:
        return Problem(Finding.BAD_INDEX, facts.cache_id, f"for {held.index_digest}, not {facts.diff_id}")
    if not held.index_digest and facts.diff_id not in view.blobs:
        return Problem(Finding.MISSING_BLOB, facts.diff_id, f"layer {chain} has neither index nor tar")
    return None


def check(view: StoreView) -> Plan:
    problems: list[Problem] = []
    unsound: set[str] = set()
    for chain, facts in view.layers.items():
        problem = _layer_problem(chain, facts, view)
        if problem is not None:
            problems.append(problem)
            unsound.add(chain)
    broken: list[str] = []
    for image_id, chains in view.images.items():
        reasons = []
        if image_id not in view.blobs:
            problems.append(Problem(Finding.MISSING_BLOB, image_id, "image config"))
            reasons.append("config missing")
        for chain in chains:
            if chain not in view.layers:
                problems.append(Problem(Finding.MISSING_LAYER, chain, f"of image {image_id}"))
                reasons.append(f"layer {chain} missing")
            elif chain in unsound:
                reasons.append(f"layer {chain} unsound")
        if reasons:
            problems.append(Problem(Finding.BROKEN_IMAGE, image_id, "; ".join(reasons)))
            broken.append(image_id)
    used = {c for chains in view.images.values() for c in chains}
    for chain in view.layers:
        if chain not in used:
            problems.append(Problem(Finding.ORPHAN_LAYER, chain))
    owned = {f.cache_id for f in view.layers.values()} | view.container_dirs
    for cache_id in sorted(view.dirs):
        if cache_id not in owned:
            problems.append(Problem(Finding.ORPHAN_DIR, cache_id))
    needed = set(view.images) | {
        f.diff_id for f in view.layers.values() if not _indexed(f, view)
    }
    for digest in sorted(view.blobs - needed):
        problems.append(Problem(Finding.ORPHAN_BLOB, digest))

    # The repair.
    removable = tuple(i for i in broken if i not in view.container_images)
    kept = tuple(i for i in broken if i in view.container_images)
    remaining = {i: c for i, c in view.images.items() if i not in removable}
    still_used = {c for chains in remaining.values() for c in chains}
    doomed = sorted((c for c in view.layers if c not in still_used), key=lambda c: -view.layers[c].depth)
    live = {view.layers[c].cache_id for c in view.layers if c in still_used} | view.container_dirs
    live_layers = [view.layers[c] for c in view.layers if c in still_used]
    still_needed = set(remaining) | {f.diff_id for f in live_layers if not _indexed(f, view)}
    return Plan(
        problems=tuple(problems),
        remove_images=removable,
        kept_broken=kept,
        remove_layers=tuple(doomed),
        remove_dirs=tuple(sorted(set(view.dirs) - live)),
        remove_blobs=tuple(sorted(view.blobs - still_needed)),
    )


def _indexed(facts: LayerFacts, view: StoreView) -> bool:
    held = view.dirs.get(facts.cache_id)
    return held is not None and held.index_digest == facts.diff_id
