"""`docker diff`: what a container changed in its filesystem, as dockerd reports it."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class ChangeKind(enum.IntEnum):
    """dockerd's archive.ChangeType; the CLI prints C, A and D."""

    MODIFIED = 0
    ADDED = 1
    DELETED = 2

    @property
    def letter(self) -> str:
        return "CAD"[self.value]


@dataclass(frozen=True)
class FileChange:
    path: str  # absolute container path
    kind: ChangeKind


def _tree_key(change: FileChange) -> tuple[str, ...]:
    return tuple(change.path.split("/"))


def sorted_changes(changes: Iterable[FileChange]) -> tuple[FileChange, ...]:
    """Tree order: a directory right before what is inside it (`/a`, `/a/b`, `/a-b`).

    dockerd's order is Go map order (random) with that same parent-first property; a
    stable order makes `docker diff` repeatable."""
    return tuple(sorted(changes, key=_tree_key))
