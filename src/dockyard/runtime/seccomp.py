"""The daemon's seccomp profiles: dockerd's default one read from the system once, the
daemon.json `seccomp-profile`, and containers' own profiles parsed once per text.

dockerd compiles its default profile in; we read the same file from where Debian's
golang-github-docker-docker-dev installs it, or from the copy `dev/setup` extracts out of
that package into `<venv>/share/dockyard/seccomp/default.json`. The rules that pick and
convert a profile are pure, in `dockyard.model.seccomp`.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.model.hostconfig import SecurityOptions
from dockyard.model.seccomp import (
    DaemonSeccomp,
    DaemonSeccompMode,
    SeccompHost,
    SeccompKind,
    SeccompProfile,
    choose_profile,
    parse_profile,
    parse_release,
)

log = logging.getLogger(__name__)

# Where the default profile may be, in order of preference.
BUILTIN_LOCATIONS = (
    Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"),
    Path(sys.prefix) / "share" / "dockyard" / "seccomp" / "default.json",
    Path("/usr/local/share/dockyard/seccomp/default.json"),
    Path("/usr/share/containers/seccomp.json"),  # containers-common: the same format
)
SECCOMP_BUILTIN = "builtin"
SECCOMP_UNCONFINED = "unconfined"
_OWN_CACHE = 64  # containers' own profiles kept parsed (a compose project shares one)
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64"}  # fmt: skip


def kernel_has_seccomp() -> bool:
    """Seccomp filters are available (the kernel lists its actions)."""
    return os.path.exists("/proc/sys/kernel/seccomp/actions_avail")


def read_host() -> SeccompHost:
    machine = platform.machine()
    return SeccompHost(architecture=_GOARCH.get(machine, machine), kernel=parse_release(platform.release()))


@dataclass(frozen=True)
class SecurityReport:
    """What `docker info` says about seccomp: SecurityOptions entries and Warnings."""

    options: tuple[str, ...]
    warnings: tuple[str, ...]


class SeccompProfiles:
    """One per daemon: the profiles containers run under. Thread-safe (bundles are written
    in threads); the default profile is read on first use, or by `load()` at start-up."""

    def __init__(
        self,
        setting: str = SECCOMP_BUILTIN,
        custom_json: str = "",
        *,
        locations: Sequence[Path] = BUILTIN_LOCATIONS,
        host: SeccompHost | None = None,
        kernel_support: bool | None = None,
    ) -> None:
        """`setting` is daemon.json's `seccomp-profile` ("", "builtin", "unconfined" or a
        path); `custom_json` that file's content, read when the configuration was loaded."""
        self.setting = setting or SECCOMP_BUILTIN
        self._custom_json = custom_json
        self._locations = tuple(locations)
        self.host = host if host is not None else read_host()
        self.kernel_support = kernel_has_seccomp() if kernel_support is None else kernel_support
        self._lock = threading.Lock()
        self._daemon: DaemonSeccomp | None = None
        self.builtin_path: Path | None = None
        self._own: OrderedDict[str, SeccompProfile] = OrderedDict()

    def load(self) -> DaemonSeccomp:
        """The daemon's profiles, read once (blocking: a 14 kB file)."""
        with self._lock:
            if self._daemon is None:
                self._daemon = self._read()
            return self._daemon

    def _read(self) -> DaemonSeccomp:
        builtin = None
        for path in self._locations:
            try:
                text = path.read_text()
            except OSError:
                continue
            try:
                builtin = parse_profile(text)
            except InvalidArgument as exc:
                log.warning("seccomp: ignoring %s: %s", path, exc.message)
                continue
            self.builtin_path = path
            log.debug("seccomp: default profile from %s", path)
            break
        if builtin is None and self.setting == SECCOMP_BUILTIN:
            log.warning(
                "seccomp: no default profile found (looked in %s): containers run without seccomp",
                ", ".join(str(p) for p in self._locations),
            )
        if self.setting == SECCOMP_UNCONFINED:
            return DaemonSeccomp(DaemonSeccompMode.UNCONFINED, builtin)
        if self.setting == SECCOMP_BUILTIN:
            return DaemonSeccomp(DaemonSeccompMode.BUILTIN, builtin)
        return DaemonSeccomp(DaemonSeccompMode.CUSTOM, builtin, parse_profile(self._custom_json))

    def _own_profile(self, text: str) -> SeccompProfile:
        with self._lock:
            found = self._own.get(text)
            if found is not None:
                self._own.move_to_end(text)
                return found
        profile = parse_profile(text)
        with self._lock:
            self._own[text] = profile
            while len(self._own) > _OWN_CACHE:
                self._own.popitem(last=False)
        return profile

    def for_container(self, security: SecurityOptions, privileged: bool) -> SeccompProfile | None:
        """The profile a container runs under; None: unconfined. InvalidArgument when it
        names a profile this host cannot give (seccomp=builtin without one, or no seccomp
        in the kernel for a profile of its own)."""
        daemon = self.load()
        own = self._own_profile(security.seccomp_profile) if security.seccomp is SeccompKind.PROFILE else None
        chosen = choose_profile(security.seccomp, own, privileged, daemon)
        if chosen is not None and not self.kernel_support:
            if security.seccomp is SeccompKind.PROFILE:
                raise InvalidArgument("seccomp is not enabled in your kernel, cannot run a custom seccomp profile")
            return None  # dockerd: a warning, and the container runs without the default profile
        return chosen

    def report(self) -> SecurityReport:
        """dockerd's `name=seccomp,profile=<builtin|unconfined|path>`, and its warning when the
        daemon does not use the default. A default profile that is missing is said as
        unconfined: that is what containers get."""
        if not self.kernel_support:
            return SecurityReport((), ())
        daemon = self.load()
        if daemon.mode is DaemonSeccompMode.BUILTIN and daemon.builtin is None:
            return SecurityReport(
                (f"name=seccomp,profile={SECCOMP_UNCONFINED}",),
                ("WARNING: the default seccomp profile is not installed on this host: containers run without seccomp",),
            )
        warnings = () if self.setting == SECCOMP_BUILTIN else ("WARNING: daemon is not using the default seccomp profile",)
        return SecurityReport((f"name=seccomp,profile={self.setting}",), warnings)


_shared: dict[tuple[str, str], SeccompProfiles] = {}
_shared_lock = threading.Lock()


def shared_profiles(setting: str, custom_json: str = "") -> SeccompProfiles:
    """One SeccompProfiles per daemon setting, for callers not handed one by the composition
    root (so the default profile is still read only once per process)."""
    key = (setting or SECCOMP_BUILTIN, custom_json)
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = SeccompProfiles(*key)
        return found
