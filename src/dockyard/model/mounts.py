"""Bind, volume, tmpfs and image mounts as users write them (`-v /src:/dst:ro`, `-v name:/dst`,
`--tmpfs /run:size=64m`, `--mount type=bind,src=/x,dst=/y`, `--mount type=image,src=IMG,dst=/p`)."""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.model.volumes import check_name, mountpoint

_PROPAGATION = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")
_TMPFS_FLAGS = ("exec", "noexec")  # what TmpfsOptions.Options may hold, as dockerd 28
_SELINUX_LABELS = ("z", "Z")


class MountOrigin(enum.StrEnum):
    """Where a container's mount came from: inspect's Mode for a volume depends on it."""

    USER = "user"  # -v, --mount, --tmpfs
    CONFIG = "config"  # Config.Volumes: the CLI's `-v /path`, the image's VOLUME
    VOLUMES_FROM = "volumes-from"  # another container's, by --volumes-from


@dataclass(frozen=True)
class MountSpec:
    type: str  # "bind" | "volume" | "tmpfs" | "image"
    source: str  # a host path, a volume's name, "tmpfs", or an image as the user named it
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
    volume_options: tuple[tuple[str, str], ...] = ()  # VolumeOptions.DriverConfig.Options: likewise (volume-opt)
    subpath: str = ""  # VolumeOptions.Subpath / ImageOptions.Subpath: only that part of the source
    image_id: str = ""  # an image mount: the image `source` named at create (the engine fills it in)
    tmpfs_flags: tuple[str, ...] = ()  # TmpfsOptions.Options: exec / noexec
    # A volume asked without a name (source "" until the create names it): `rm -v` removes it.
    anonymous: bool = False
    origin: MountOrigin = MountOrigin.USER

    @property
    def staged(self) -> bool:
        """Whether a start prepares this mount's source on the host (engine/staging.py):
        an image's filesystem, or a part of a volume resolved inside it."""
        return self.type == "image" or bool(self.subpath)

    @property
    def selinux_label(self) -> bool:
        """-v ...:z or :Z (dockerd relabels on SELinux hosts; there is none here)."""
        return any(o in _SELINUX_LABELS for o in self.mode.split(","))


def _check_subpath(subpath: str, fail: Callable[[str], InvalidArgument]) -> str:
    """Go's filepath.IsLocal, as dockerd checks a Subpath: relative, not empty, never above."""
    clean = posixpath.normpath(subpath) if subpath else ""
    if not subpath or subpath.startswith("/") or clean == ".." or clean.startswith("../") or "\0" in subpath:
        raise fail("subpath must be a relative path within the volume")
    return subpath  # as given: inspect shows it back


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
    volume_options: tuple[tuple[str, str], ...] = (),
    subpath: str = "",
    tmpfs_flags: Sequence[Sequence[str]] = (),
) -> MountSpec:
    """One HostConfig.Mounts entry, checked as dockerd's ValidateMountConfig (the bind
    source's existence is a host fact, checked by model.admission)."""

    def fail(reason: str) -> InvalidArgument:
        return InvalidArgument(f'invalid mount config for type "{type}": {reason}')

    if not target:
        raise fail("field Target must not be empty")
    if type not in ("bind", "volume", "tmpfs", "image"):
        raise fail("mount type unknown" if type not in ("npipe", "cluster") else f"type {type} is not supported by this daemon")
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
                         volume_labels=volume_labels, volume_options=volume_options, anonymous=not source,
                         subpath=_check_subpath(subpath, fail) if subpath else "")  # fmt: skip
    if type == "image":
        if not source:
            raise fail("field Source must not be empty")
        # Read-only whatever was asked (oci_options), as dockerd; kept as asked for inspect.
        return MountSpec("image", source, dest, read_only, "rprivate", from_api=True,
                         subpath=_check_subpath(subpath, fail) if subpath else "")  # fmt: skip
    if source:
        raise fail("field Source must not be specified")
    if size_bytes < 0:
        raise fail("invalid tmpfs size")
    if file_mode < 0 or file_mode > 0o7777:
        raise fail(f"invalid tmpfs mode: {file_mode:o}")
    flags = []
    for option in tmpfs_flags:
        if len(option) not in (1, 2):
            raise fail("invalid option array length")
        if option[0] not in _TMPFS_FLAGS:
            raise fail(f"invalid option: {option[0]}")
        flags.append("=".join(option))
    options = ((f"size={tmpfs_size(size_bytes)}",) if size_bytes else ()) + ((f"mode={file_mode:o}",) if file_mode else ())
    return MountSpec("tmpfs", "tmpfs", dest, read_only, "rprivate", (*options, *flags),
                     from_api=True, size_bytes=size_bytes, file_mode=file_mode, tmpfs_flags=tuple(flags))  # fmt: skip


def tmpfs_size(size_bytes: int) -> str:
    """SizeBytes as dockerd writes it into tmpfs's size=: the largest of g, m, k that divides
    it, else bytes (1000 must not become 0k, which tmpfs takes as no limit)."""
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size_bytes % divisor == 0:
            return f"{size_bytes // divisor}{suffix}"
    return str(size_bytes)


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


@dataclass(frozen=True)
class StagedPaths:
    """Where a start stages the n-th mount of a container (engine/staging.py), under its
    run dir's `mounts/`."""

    base: str
    image: str  # an image's filesystem, read-only
    part: str  # the Subpath's directory or file, bound
    empty: str  # what an image without layers mounts


def staged_paths(root: str, index: int) -> StagedPaths:
    base = posixpath.join(root, str(index))
    return StagedPaths(base, posixpath.join(base, "image"), posixpath.join(base, "part"), posixpath.join(base, "empty"))


def oci_type(m: MountSpec) -> str:
    return "bind" if m.type in ("volume", "image") else m.type


def oci_options(m: MountSpec) -> tuple[str, ...]:
    """The options of the OCI runtime spec's mount entry."""
    if m.type == "image":
        return ("rbind", "rprivate", "ro")
    if m.type == "volume":
        return ("rbind", "rprivate") + (("ro",) if m.read_only else ())
    if m.type == "bind":
        return ("rbind" if m.recursive else "bind", m.propagation) + (("ro",) if m.read_only else ())
    # The user's exec/noexec/suid/dev replace the default of their kind (dockerd merges them
    # so): crun, unlike runc, does not let a later `exec` undo an earlier `noexec`.
    asked = {o.removeprefix("no") for o in m.options if o in ("exec", "noexec", "suid", "nosuid", "dev", "nodev")}
    defaults = tuple(o for o in _TMPFS_DEFAULTS if o.removeprefix("no") not in asked)
    return defaults + m.options + (("ro",) if m.read_only else ())
