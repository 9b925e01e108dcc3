"""fstab-style mount options (`o=` of a local volume) as the mount(2) calls they mean.

Pure: `mount_calls` turns a device, target, type and option string into the calls to make,
as moby/sys/mount does (flags split from the filesystem's data, propagation changed in a
second call, a read-only bind remounted read-only in a third), and `MountCall.failed` words
a failure as that library does (`mount <dev>:<target>, flags: 0x.., data: ..: <errno>`).
"""

from __future__ import annotations

from dataclasses import dataclass

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

_PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# option -> (clears the flag?, flag): the words mount(8) and moby/sys/mount know.
_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID),
    "nosuid": (False, MS_NOSUID),
    "dev": (True, MS_NODEV),
    "nodev": (False, MS_NODEV),
    "exec": (True, MS_NOEXEC),
    "noexec": (False, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME),
    "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
    "unbindable": (False, MS_UNBINDABLE),
    "runbindable": (False, MS_UNBINDABLE | MS_REC),
    "private": (False, MS_PRIVATE),
    "rprivate": (False, MS_PRIVATE | MS_REC),
    "shared": (False, MS_SHARED),
    "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE),
    "rslave": (False, MS_SLAVE | MS_REC),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
}


def split_options(options: str) -> tuple[int, str]:
    """The mount flags an option string sets, and the rest (the filesystem's data) as given."""
    flags = 0
    data = []
    for word in options.split(","):
        known = _FLAGS.get(word)
        if known is None:
            data.append(word)
        elif known[0]:
            flags &= ~known[1]
        else:
            flags |= known[1]
    return flags, ",".join(data)


@dataclass(frozen=True, slots=True)
class MountCall:
    """One mount(2): `op` is how a failure names it (mount, remount, remount-ro)."""

    op: str
    source: str
    target: str
    fstype: str
    flags: int
    data: str = ""

    def failed(self, error: str) -> str:
        """moby/sys/mount's words for this call failing with `error` (an errno's text)."""
        out = f"{self.op} {self.source}:{self.target}" if self.source else f"{self.op} {self.target}"
        if self.flags:
            out += f", flags: {self.flags:#x}"
        if self.data:
            out += f", data: {self.data}"
        return f"{out}: {error}"


def mount_calls(device: str, target: str, fstype: str, options: str) -> tuple[MountCall, ...]:
    """What mounting `device` (of type `fstype`) on `target` with fstab `options` takes."""
    flags, data = split_options(options)
    plain = flags & ~_PROPAGATION
    calls = []
    # "" and "none" as the device with no data is a change of an existing mount (a remount).
    if not (flags & MS_REMOUNT or device in ("", "none")) or data:
        calls.append(MountCall("mount", device, target, fstype, plain, data))
    if flags & _PROPAGATION:
        calls.append(MountCall("remount", "", target, "", flags & (_PROPAGATION | MS_REC | MS_SILENT)))
    if plain & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:  # a bind is made read-only by a remount
        calls.append(MountCall("remount-ro", "", target, "", plain | MS_REMOUNT))
    return tuple(calls)
