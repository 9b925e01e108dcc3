"""A container's mount points as its create settles them: the user's mounts, another
container's by `--volumes-from`, and an anonymous volume for each Config.Volumes path left
uncovered (the CLI's `-v /path`, the image's VOLUME). dockerd's registerMountPoints and
createContainerVolumes decide the same way; the result is kept with the container, so the
generated volume names survive daemon restarts.

Pure: the engine looks up the other containers and makes the volumes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from dockyard.errors import InvalidArgument
from dockyard.model.mounts import MountOrigin, MountSpec

_RW = ("rw", "ro")
_LABELS = ("z", "Z")
_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_CONSISTENCY = ("consistent", "cached", "delegated")
_COPY = ("nocopy",)


@dataclass(frozen=True, slots=True)
class VolumesFrom:
    """One `--volumes-from C[:mode]` entry."""

    container: str
    read_only: bool = False  # `:ro`; `:rw` (the default) keeps C's own modes


def _valid_mode(mode: str) -> bool:
    """dockerd's mount mode rule: known words, at most one of each kind."""
    counts: dict[tuple[str, ...], int] = {}
    for word in mode.split(","):
        kind = next((k for k in (_RW, _LABELS, _PROPAGATION, _CONSISTENCY, _COPY) if word in k), None)
        if kind is None:
            return False
        counts[kind] = counts.get(kind, 0) + 1
    return all(n == 1 for n in counts.values())


def parse_volumes_from(text: str) -> VolumesFrom:
    """`C`, `C:ro`, `C:rw`, `C:ro,z`; propagation and copy modes are refused, as dockerd."""
    if not text:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    container, _, mode = text.partition(":")
    if not mode:
        return VolumesFrom(container)
    words = mode.split(",")
    if not _valid_mode(mode) or any(w in _PROPAGATION or w in _COPY for w in words):
        raise InvalidArgument(f"invalid mode: {mode}")
    return VolumesFrom(container, read_only="ro" in words)


def inherited(mounts: Iterable[MountSpec], read_only: bool) -> list[MountSpec]:
    """Another container's volume and bind mounts as `--volumes-from` gives them: same
    destination and source, read-only when it was or `:ro` asks, never copied up into."""
    origin = MountOrigin.VOLUMES_FROM
    return [
        replace(m, read_only=m.read_only or read_only, mode="", origin=origin, no_copy=True, from_api=False)
        for m in mounts
        if m.type in ("bind", "volume")
    ]


def settle(
    user: Sequence[MountSpec],
    config_volumes: Iterable[str],
    volumes_from: Sequence[Sequence[MountSpec]],
    new_name: Callable[[], str],
) -> tuple[MountSpec, ...]:
    """Every mount point of a new container: `volumes_from` (each one's `inherited` mounts,
    a later one winning a destination), overridden by the user's own mounts, then an
    anonymous volume for each Config.Volumes path nothing covers. An anonymous volume the
    user asked for (`--mount type=volume` without a source, a lone `-v /path` bind) gets
    its name here too. `new_name` makes a volume name (64 hex in the engine)."""
    chosen: dict[str, MountSpec] = {}
    for mounts in volumes_from:
        for m in mounts:
            chosen.pop(m.destination, None)
            chosen[m.destination] = m
    own = []
    for m in user:
        chosen.pop(m.destination, None)
        own.append(replace(m, source=new_name()) if m.type == "volume" and not m.source else m)
    taken = {*chosen, *(m.destination for m in own)}
    anonymous = []
    for path in sorted({posixpath.normpath(v) for v in config_volumes}):
        if path in taken:
            continue  # a user mount or an inherited one is there already: not an error (the image's)
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"volume\": invalid mount path: '{path}' mount path must be absolute")  # fmt: skip
        if path == "/":
            raise InvalidArgument("invalid mount config for type \"volume\": invalid specification: destination can't be '/'")  # fmt: skip
        anonymous.append(MountSpec("volume", new_name(), path, anonymous=True, origin=MountOrigin.CONFIG))
    return (*own, *chosen.values(), *anonymous)


def anonymous_volumes(mounts: Iterable[MountSpec]) -> list[str]:
    """The names of the anonymous volumes among `mounts` (what `rm -v` and `--rm` remove)."""
    return [m.source for m in mounts if m.type == "volume" and m.anonymous and m.source]
