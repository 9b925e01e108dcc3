"""seccomp filters as crun compiled them, kept to hand back to crun for the next container.

crun turns a config.json's linux.seccomp into BPF with libseccomp at every `create`: about
15 ms here for dockerd's default profile, a third of the whole create. Debian's crun 1.8 is
built without its own cache (it needs libgcrypt). But crun leaves the program it loaded in
`<root>/<id>/seccomp.bpf` (for `exec`), and takes a ready one from the annotation
`run.oci.seccomp_bpf_data` (base64), ignoring linux.seccomp then. So the first container of
each profile is compiled by crun itself, and the ones after it get that same program: the
filter is always crun's own compile of that exact profile, never ours.

Kept under the exec root (tmpfs: gone at a reboot, as a new kernel may want
another program), by a key over the compiler (crun and libseccomp files), the kernel and
the profile's canonical JSON.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import logging
import os
import platform
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BPF_ANNOTATION = "run.oci.seccomp_bpf_data"
_INSN = 8  # sizeof(struct sock_filter)
_MAX_INSNS = 4096  # BPF_MAXINSNS: the kernel refuses a longer program
_HELD = 32  # programs kept in memory (one per profile and capability set in use)
_LIBSECCOMP = ("/lib/*/libseccomp.so.2", "/usr/lib/*/libseccomp.so.2", "/lib64/libseccomp.so.2",
               "/usr/lib64/libseccomp.so.2", "/usr/lib/libseccomp.so.2", "/usr/local/lib/libseccomp.so.2")  # fmt: skip


@dataclass(frozen=True)
class FilterUse:
    """What to do with one container's filter: hand crun `bpf` (base64), or, when None,
    keep what crun compiles under `key`."""

    key: str
    bpf: str | None


def valid_program(data: bytes) -> bool:
    return 0 < len(data) <= _INSN * _MAX_INSNS and len(data) % _INSN == 0


def compiler_identity(runtime_path: str) -> str:
    """What the compiled program depends on besides the profile: crun, libseccomp, the kernel."""
    parts = [platform.release(), platform.version(), platform.machine()]
    for path in [runtime_path, *sorted({p for pattern in _LIBSECCOMP for p in glob.glob(pattern)})]:
        try:
            st = os.stat(path)
        except OSError:
            continue
        parts.append(f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def filter_key(identity: str, seccomp: Mapping[str, Any]) -> str:
    profile = json.dumps(seccomp, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{identity}\n{profile}".encode()).hexdigest()


class CompiledFilters:
    """One runtime's compiled programs, on disk in `directory` and the latest in memory."""

    def __init__(self, runtime_path: str, directory: Path) -> None:
        self._identity = compiler_identity(runtime_path)
        self._dir = directory
        self._held: OrderedDict[str, str] = OrderedDict()

    def use_for(self, seccomp: Mapping[str, Any]) -> FilterUse:
        key = filter_key(self._identity, seccomp)
        bpf = self._held.get(key)
        if bpf is None:
            try:
                data = (self._dir / key).read_bytes()
            except OSError:
                data = b""
            if valid_program(data):
                bpf = self._hold(key, data)
        else:
            self._held.move_to_end(key)
        return FilterUse(key, bpf)

    def keep(self, key: str, program_file: Path) -> None:
        """Keep the program crun wrote for a container compiled under `key` (best effort)."""
        try:
            data = program_file.read_bytes()
        except OSError:
            return
        if not valid_program(data):
            log.warning("%s: not a seccomp program (%d bytes): not kept", program_file, len(data))
            return
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self._dir / f".{key}.{os.getpid()}"
            tmp.write_bytes(data)
            os.replace(tmp, self._dir / key)
        except OSError as exc:
            log.debug("seccomp program not kept on disk: %s", exc)
        self._hold(key, data)

    def _hold(self, key: str, data: bytes) -> str:
        bpf = base64.b64encode(data).decode()
        self._held[key] = bpf
        while len(self._held) > _HELD:
            self._held.popitem(last=False)
        return bpf
