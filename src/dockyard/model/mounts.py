"""Bind and tmpfs mounts as users write them (`-v /src:/dst:ro`, `--tmpfs /run:size=64m`)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")


@dataclass(frozen=True)
class MountSpec:
    type: str  # "bind" | "tmpfs"
    source: str
    destination: str
    read_only: bool = False
    propagation: str = "rprivate"
    options: tuple[str, ...] = ()  # tmpfs options (size=..., mode=...)
    mode: str = ""  # the mode string as given (-v ...:ro,z)


def _check_destination(dest: str, kind: str) -> str:
    if not dest.startswith("/"):
        raise InvalidArgument(
            f'invalid mount config for type "{kind}": invalid mount path: \'{dest}\' mount path must be absolute'
        )
    clean = posixpath.normpath(dest)
    if clean == "/":
        raise InvalidArgument(f'invalid mount config for type "{kind}": invalid specification: destination can\'t be \'/\'')
    return clean


def parse_bind(text: str) -> MountSpec:
    """`SRC:DST[:OPTS]`. SRC must be absolute here: named volumes are not served yet."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{text}'")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not source.startswith("/"):
        raise InvalidArgument(f"named volumes are not supported yet: '{source}' in '{text}'")
    read_only = False
    propagation = "rprivate"
    for option in filter(None, mode.split(",")):
        if option in ("ro", "rw"):
            read_only = option == "ro"
        elif option in _PROPAGATION:
            propagation = option
        elif option in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            continue  # SELinux relabel, volume copy, macOS hints: nothing to do here
        else:
            raise InvalidArgument(f"invalid mode: {option}")
    return MountSpec("bind", posixpath.normpath(source), _check_destination(dest, "bind"), read_only, propagation, (), mode)


def parse_tmpfs(dest: str, options: str) -> MountSpec:
    opts = tuple(o for o in options.split(",") if o)
    read_only = "ro" in opts
    return MountSpec("tmpfs", "tmpfs", _check_destination(dest, "tmpfs"), read_only, "rprivate",
                     tuple(o for o in opts if o not in ("ro", "rw")))  # fmt: skip


def parse_mounts(binds: Sequence[str], tmpfs: Mapping[str, str]) -> tuple[MountSpec, ...]:
    mounts = [parse_bind(b) for b in binds] + [parse_tmpfs(d, o) for d, o in tmpfs.items()]
    seen: set[str] = set()
    for m in mounts:
        if m.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)
    return tuple(mounts)


def oci_options(m: MountSpec) -> tuple[str, ...]:
    """The options of the OCI runtime spec's mount entry."""
    if m.type == "bind":
        return ("rbind", m.propagation) + (("ro",) if m.read_only else ())
    return _TMPFS_DEFAULTS + m.options + (("ro",) if m.read_only else ())
