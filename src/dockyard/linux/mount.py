"""mount(2) and umount2(2) through libc: no subprocess per container start."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from dockyard.errors import Internal

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000


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
