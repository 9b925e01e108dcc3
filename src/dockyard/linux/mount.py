"""mount(2) and umount2(2) through libc: no subprocess per container start."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re

from dockyard.errors import Internal
from dockyard.model.mountoptions import MountCall

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    rc = _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise Internal(f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: str, *, lazy: bool = False) -> None:
    """Unmount; a target that is not mounted (or gone) is fine."""
    rc = _libc.umount2(target.encode(), MNT_DETACH if lazy else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise Internal(f"unmount {target}: {os.strerror(err)}")


def errno_text(err: int) -> str:
    """An errno as Go's syscall package words it ("invalid argument"), as dockerd's messages do."""
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


def perform(call: MountCall) -> None:
    """One planned mount(2) (model/mountoptions.py); a failure raises with moby/sys/mount's words."""
    rc = _libc.mount(call.source.encode() or None, call.target.encode(), call.fstype.encode() or None,
                     call.flags, call.data.encode() or None)  # fmt: skip
    if rc != 0:
        raise Internal(call.failed(errno_text(ctypes.get_errno())))


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return [_unescape(line.split(" ", 5)[4]) for line in f if line.count(" ") >= 5]


def is_mounted(path: str) -> bool:
    """Whether `path` is a mount point (a bind of a directory of the same filesystem too,
    which comparing st_dev with the parent's misses)."""
    return os.path.realpath(path) in mount_points()  # mountinfo shows paths with symlinks resolved
