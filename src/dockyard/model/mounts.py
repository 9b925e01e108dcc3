"""Bind, volume and tmpfs mounts as users write them (`-v /src:/dst:ro`, `-v name:/dst`,
`--tmpfs /run:size=64m`, `--mount type=bind,src=/x,dst=/y`)."""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.model.volumes import check_name, mountpoint

_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")


class MountOrigin(enum.StrEnum):
    """Where a container's mount came from: inspect's Mode for a volume depends on it."""

    USER = "user"  # -v, --mount, --tmpfs
    CONFIG = "config"  # Config.Volumes: the CLI's `-v /path`, the image's VOLUME
    VOLUMES_FROM = "volumes-from"  # another container's, by --volumes-from


@dataclass(frozen=True)
class MountSpec:
    type: str  # "bind" | "volume" | "tmpfs"
    source: str  # a host path, a volume's name, or "tmpfs"
    destination: str
    read_only: bool = False
    propagation: str = "rprivate"
    options: tuple[str, ...] = ()  # tmpfs options (size=..., mode=...)
    mode: str = ""  # the mode string as given (-v ...:ro,z)
    # From HostConfig.Mounts (--mount): what was asked, to show it back in inspect.
    from_api: bool = False
    recursive: bool = True  # BindOptions.NonRecursive false
    create_mountpoint: bool = False  # BindOptions.CreateMountpoint
    size_bytes: int = 0  # TmpfsOptions.SizeBytes
    file_mode: int = 0  # TmpfsOptions.Mode
    no_copy: bool = False  # a volume: -v ...:nocopy, VolumeOptions.NoCopy
    volume_labels: tuple[tuple[str, str], ...] = ()  # VolumeOptions.Labels: for the volume made on first use
    # A volume asked without a name (source "" until the create names it): `rm -v` removes it.
    anonymous: bool = False
    origin: MountOrigin = MountOrigin.USER


def mount_from_api(
    type: str,
    source: str,
    target: str,
    read_only: bool = False,
    propagation: str = "",
    recursive: bool = True,
    create_mountpoint: bool = False,
    size_bytes: int = 0,
    file_mode: int = 0,
    no_copy: bool = False,
    volume_labels: tuple[tuple[str, str], ...] = (),
) -> MountSpec:
    """One HostConfig.Mounts entry, checked as dockerd's ValidateMountConfig (the bind
    source's existence is a host fact, checked by model.admission)."""

    def fail(reason: str) -> InvalidArgument:
        return InvalidArgument(f'invalid mount config for type "{type}": {reason}')

    if not target:
        raise fail("field Target must not be empty")
    if type not in ("bind", "volume", "tmpfs"):
        raise fail("mount type unknown" if type not in ("image", "npipe", "cluster") else f"type {type} is not supported by this daemon")
    if posixpath.normpath(target) == "/":
        raise fail("invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise fail(f"invalid mount path: '{target}' mount path must be absolute")
    dest = posixpath.normpath(target)
    if type == "bind":
        if not source:
            raise fail("field Source must not be empty")
        if not source.startswith("/"):
            raise fail(f"invalid mount path: '{source}' mount path must be absolute")
        if propagation and propagation not in _PROPAGATION:
            raise fail(f"invalid propagation mode: {propagation}")
        return MountSpec("bind", posixpath.normpath(source), dest, read_only, propagation or "rprivate",
                         from_api=True, recursive=recursive, create_mountpoint=create_mountpoint)  # fmt: skip
    if type == "volume":
        if source:  # none: an anonymous volume, named at create
            check_name(source)
        return MountSpec("volume", source, dest, read_only, "", from_api=True, no_copy=no_copy,
                         volume_labels=volume_labels, anonymous=not source)  # fmt: skip
    if source:
        raise fail("field Source must not be specified")
    if size_bytes < 0:
        raise fail("invalid tmpfs size")
    if file_mode < 0 or file_mode > 0o7777:
        raise fail(f"invalid tmpfs mode: {file_mode:o}")
    options = ((f"size={size_bytes // 1024}k",) if size_bytes else ()) + ((f"mode={file_mode:o}",) if file_mode else ())
    return MountSpec("tmpfs", "tmpfs", dest, read_only, "rprivate", options,
                     from_api=True, size_bytes=size_bytes, file_mode=file_mode)  # fmt: skip


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
    """`SRC:DST[:OPTS]`: SRC an absolute host path (a bind) or a volume's name; a lone `DST`
    is an anonymous volume (named at create), as dockerd reads HostConfig.Binds."""
    parts = text.split(":")
    if len(parts) == 1 and parts[0]:
        return MountSpec("volume", "", _check_destination(parts[0], "volume"), anonymous=True)
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{text}'")
    source, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    volume = not source.startswith("/")
    if volume:
        check_name(source)
    read_only = no_copy = False
    propagation = "rprivate"
    for option in filter(None, mode.split(",")):
        if option in ("ro", "rw"):
            read_only = option == "ro"
        elif option in _PROPAGATION and not volume:
            propagation = option
        elif option == "nocopy" and volume:
            no_copy = True
        elif option in ("z", "Z", "nocopy", "consistent", "cached", "delegated"):
            continue  # SELinux relabel, macOS hints: nothing to do here
        else:
            raise InvalidArgument(f"invalid mode: {option}")
    if volume:
        return MountSpec("volume", source, _check_destination(dest, "volume"), read_only, "", (), mode, no_copy=no_copy)
    return MountSpec("bind", posixpath.normpath(source), _check_destination(dest, "bind"), read_only, propagation, (), mode)


def parse_tmpfs(dest: str, options: str) -> MountSpec:
    opts = tuple(o for o in options.split(",") if o)
    read_only = "ro" in opts
    return MountSpec("tmpfs", "tmpfs", _check_destination(dest, "tmpfs"), read_only, "rprivate",
                     tuple(o for o in opts if o not in ("ro", "rw")))  # fmt: skip


def parse_mounts(
    binds: Sequence[str], tmpfs: Mapping[str, str], api_mounts: Sequence[MountSpec] = ()
) -> tuple[MountSpec, ...]:
    """Every user mount of a container (-v, --mount, --tmpfs), refusing two on one path."""
    mounts = [parse_bind(b) for b in binds] + list(api_mounts) + [parse_tmpfs(d, o) for d, o in tmpfs.items()]
    seen: set[str] = set()
    for m in mounts:
        if m.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)
    return tuple(mounts)


def host_source(m: MountSpec, volumes_root: str) -> str:
    """Where a bind or volume mount's content is on the host: a volume is a bind of its `_data`."""
    return mountpoint(volumes_root, m.source) if m.type == "volume" else m.source


def oci_type(m: MountSpec) -> str:
    return "bind" if m.type == "volume" else m.type


def oci_options(m: MountSpec) -> tuple[str, ...]:
    """The options of the OCI runtime spec's mount entry."""
    if m.type == "volume":
        return ("rbind", "rprivate") + (("ro",) if m.read_only else ())
    if m.type == "bind":
        return ("rbind" if m.recursive else "bind", m.propagation) + (("ro",) if m.read_only else ())
    return _TMPFS_DEFAULTS + m.options + (("ro",) if m.read_only else ())
