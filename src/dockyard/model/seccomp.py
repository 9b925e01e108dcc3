"""Seccomp profiles: dockerd's JSON format, and the OCI `linux.seccomp` a container gets.

dockerd's profile (profiles/seccomp/default.json, or a user's `--security-opt seccomp=`)
extends the OCI form with conditions: `archMap` (architectures per host architecture) and,
per syscall rule, `includes`/`excludes` on the container's capabilities, the host's
architecture and its kernel version. `resolve` applies them as moby's
profiles/seccomp/seccomp_linux.go does: values in, values out.

Pure: `parse_profile` takes JSON text and raises InvalidArgument with dockerd's wording
("Decoding seccomp profile failed: ...") so a bad profile is refused at create, not at start.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from dockyard.errors import InvalidArgument

T = TypeVar("T")

# The runtime spec's names; runc refuses any other at start.
ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
})  # fmt: skip
OPERATORS = frozenset({
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
})  # fmt: skip
ARCHES = frozenset({
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
})  # fmt: skip
FLAGS = frozenset({
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
})  # fmt: skip

# Go's GOARCH -> libseccomp's name for it: what `includes.arches`/`excludes.arches` hold.
_NATIVE = {
    "386": "x86", "amd64": "amd64", "arm": "arm", "arm64": "arm64", "loong64": "loongarch64",
    "mips64": "mips64", "mips64p32": "mips64n32", "mips64le": "mipsel64", "mips64p32le": "mips3l64n32",
    "mipsle": "mipsel", "ppc": "ppc", "ppc64": "ppc64", "ppc64le": "ppc64le", "riscv64": "riscv64",
    "s390": "s390", "s390x": "s390x",
}  # fmt: skip
# libseccomp's name -> the SCMP_ARCH_ that `archMap` is keyed by. (moby keys loong64 and mipsle by
# their Go names, so their archMap entries are never picked there; here they are.)
_SECCOMP_ARCH = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "loongarch64": "SCMP_ARCH_LOONGARCH64", "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsel": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}  # fmt: skip

_UINT64 = 2**64 - 1
_UINT32 = 2**32 - 1


class SeccompKind(enum.StrEnum):
    """What a container's `--security-opt seccomp=` asked for."""

    DEFAULT = "default"  # nothing asked: the daemon's choice
    BUILTIN = "builtin"  # seccomp=builtin: the default profile, whatever the daemon's choice
    UNCONFINED = "unconfined"
    PROFILE = "profile"  # a JSON profile (the CLI sends the file's content)


@dataclass(frozen=True, order=True)
class KernelVersion:
    """The "<kernel>.<major>" of a release: 6.18 of 6.18.44-fc-v669."""

    kernel: int
    major: int

    def __str__(self) -> str:
        return f"{self.kernel}.{self.major}"


_RELEASE = re.compile(r"^\s*([0-9]+)\.([0-9]+)")
_DIGITS = re.compile(r"[0-9]+")


def parse_release(release: str) -> KernelVersion:
    """uname's release ("3.12.25-gentoo", "3.12-1-amd64") -> 3.12; minor and suffix ignored."""
    match = _RELEASE.match(release)
    if match is None:
        raise InvalidArgument(f'failed to parse kernel version "{release}"')
    return KernelVersion(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class SeccompHost:
    """What a profile's conditions look at on the host."""

    architecture: str = "amd64"  # GOARCH spelling
    kernel: KernelVersion = KernelVersion(0, 0)

    @property
    def native(self) -> str:
        return _NATIVE.get(self.architecture, self.architecture)


@dataclass(frozen=True)
class Condition:
    """A rule's `includes` or `excludes`: empty fields impose nothing."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: KernelVersion | None = None


@dataclass(frozen=True)
class SyscallArg:
    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True)
class SyscallRule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()
    includes: Condition = Condition()
    excludes: Condition = Condition()


@dataclass(frozen=True)
class ArchEntry:
    architecture: str
    sub_architectures: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeccompProfile:
    """A profile in dockerd's format, parsed and checked."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    arch_map: tuple[ArchEntry, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[SyscallRule, ...] = ()


@dataclass(frozen=True)
class LinuxSyscall:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()


@dataclass(frozen=True)
class LinuxSeccomp:
    """The OCI runtime spec's linux.seccomp, conditions applied."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[LinuxSyscall, ...] = ()


# ---- parsing -------------------------------------------------------------------------


class _Bad(Exception):
    """A decoding problem, turned into dockerd's message by parse_profile."""


def _field(doc: Mapping[str, Any], key: str, convert: Callable[[Any, str], T]) -> T | None:
    """doc[key] converted; None when absent or null (Go leaves the zero value)."""
    value = doc.get(key)
    return None if value is None else convert(value, key)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{where}: expected a string, not {json.dumps(value)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Bad(f"{where}: expected a list of strings, not {json.dumps(value)}")
    return tuple(_string(v, where) for v in value)


def _uint(limit: int) -> Callable[[Any, str], int]:
    def convert(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise _Bad(f"{where}: expected an integer from 0 to {limit}, not {json.dumps(value)}")
        return value

    return convert


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected an object, not {json.dumps(value)}")
    return value


def _one_of(allowed: frozenset[str], what: str) -> Callable[[Any, str], str]:
    def convert(value: Any, where: str) -> str:
        text = _string(value, where)
        if text not in allowed:
            raise _Bad(f"{where}: unknown {what} {json.dumps(text)}")
        return text

    return convert


def _min_kernel(value: Any, where: str) -> KernelVersion | None:
    # moby's KernelVersion.UnmarshalJSON: "<kernel>.<major>", each a uint8, not 0.0.
    text = _string(value, where)
    if text == "":
        return None
    parts = text.split(".", 2)
    if len(parts) != 2 or not all(_DIGITS.fullmatch(p) and int(p) < 256 for p in parts):
        raise _Bad(f'invalid kernel version: "{text}", expected "<kernel>.<major>"')
    version = KernelVersion(int(parts[0]), int(parts[1]))
    if version == KernelVersion(0, 0):
        raise _Bad(f'invalid kernel version: "{text}", expected "<kernel>.<major>": version cannot be 0.0')
    return version


def _condition(value: Any, where: str) -> Condition:
    doc = _object(value, where)
    return Condition(
        caps=_field(doc, "caps", _strings) or (),
        arches=_field(doc, "arches", _strings) or (),
        min_kernel=_field(doc, "minKernel", _min_kernel),
    )


def _arg(value: Any, where: str) -> SyscallArg:
    doc = _object(value, where)
    if "op" not in doc:
        raise _Bad(f"{where}: an argument needs an op")
    return SyscallArg(
        index=_field(doc, "index", _uint(_UINT32)) or 0,
        value=_field(doc, "value", _uint(_UINT64)) or 0,
        op=_one_of(OPERATORS, "operator")(doc["op"], where),
        value_two=_field(doc, "valueTwo", _uint(_UINT64)) or 0,
    )


def _rule(value: Any, where: str) -> SyscallRule:
    doc = _object(value, where)
    name = _field(doc, "name", _string) or ""
    names = _field(doc, "names", _strings) or ()
    if name:
        if names:
            raise _Bad("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'")
        names = (name,)
    if doc.get("action") is None:
        raise _Bad(f"{where}: a syscall rule needs an action")
    args = _field(doc, "args", lambda v, w: _list(v, w, _arg)) or ()
    return SyscallRule(
        names=names,
        action=_one_of(ACTIONS, "action")(doc["action"], where),
        errno_ret=_field(doc, "errnoRet", _uint(_UINT32)),
        args=args,
        includes=_field(doc, "includes", _condition) or Condition(),
        excludes=_field(doc, "excludes", _condition) or Condition(),
    )


def _list(value: Any, where: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise _Bad(f"{where}: expected a list, not {json.dumps(value)}")
    return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))


def _arch_entry(value: Any, where: str) -> ArchEntry:
    doc = _object(value, where)
    if doc.get("architecture") is None:
        raise _Bad(f"{where}: an archMap entry needs an architecture")
    arch = _one_of(ARCHES, "architecture")
    return ArchEntry(
        architecture=arch(doc["architecture"], where),
        sub_architectures=tuple(arch(a, where) for a in (_field(doc, "subArchitectures", _strings) or ())),
    )


def _profile(doc: Mapping[str, Any]) -> SeccompProfile:
    arch = _one_of(ARCHES, "architecture")
    default_action = _field(doc, "defaultAction", _string) or ""
    syscalls = _field(doc, "syscalls", lambda v, w: _list(v, w, _rule)) or ()
    if default_action and default_action not in ACTIONS:
        raise _Bad(f"defaultAction: unknown action {json.dumps(default_action)}")
    if not default_action and syscalls:
        raise _Bad("defaultAction is missing")
    profile = SeccompProfile(
        default_action=default_action,
        default_errno_ret=_field(doc, "defaultErrnoRet", _uint(_UINT32)),
        architectures=tuple(arch(a, "architectures") for a in (_field(doc, "architectures", _strings) or ())),
        arch_map=_field(doc, "archMap", lambda v, w: _list(v, w, _arch_entry)) or (),
        flags=tuple(_one_of(FLAGS, "flag")(f, "flags") for f in (_field(doc, "flags", _strings) or ())),
        listener_path=_field(doc, "listenerPath", _string) or "",
        listener_metadata=_field(doc, "listenerMetadata", _string) or "",
        syscalls=syscalls,
    )
    if profile.architectures and profile.arch_map:
        raise _Bad(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
        )
    return profile


def parse_profile(text: str) -> SeccompProfile:
    """A profile in dockerd's JSON format; InvalidArgument when it cannot be one."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from None
    try:
        return _profile(_object(doc, "profile"))
    except _Bad as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from None


# ---- conditions ----------------------------------------------------------------------


def _applies(rule: SyscallRule, host: SeccompHost, caps: frozenset[str]) -> bool:
    native = host.native
    ex, inc = rule.excludes, rule.includes
    if native in ex.arches or any(c in caps for c in ex.caps):
        return False
    if ex.min_kernel is not None and host.kernel >= ex.min_kernel:
        return False
    if inc.arches and native not in inc.arches:
        return False
    if not all(c in caps for c in inc.caps):
        return False
    return inc.min_kernel is None or host.kernel >= inc.min_kernel


def resolve(profile: SeccompProfile, host: SeccompHost, bounding_caps: frozenset[str]) -> LinuxSeccomp | None:
    """The OCI form of `profile` for a container with these bounding capabilities on this
    host; None when the profile asks for nothing (no default action and no rules)."""
    if not profile.default_action and not profile.syscalls:
        return None
    architectures = list(profile.architectures)
    wanted = _SECCOMP_ARCH.get(host.native)
    for entry in profile.arch_map:
        if entry.architecture == wanted:
            architectures += [entry.architecture, *entry.sub_architectures]
            break
    return LinuxSeccomp(
        default_action=profile.default_action,
        default_errno_ret=profile.default_errno_ret,
        architectures=tuple(architectures),
        flags=profile.flags,
        listener_path=profile.listener_path,
        listener_metadata=profile.listener_metadata,
        syscalls=tuple(
            LinuxSyscall(rule.names, rule.action, rule.errno_ret, rule.args)
            for rule in profile.syscalls
            if _applies(rule, host, bounding_caps)
        ),
    )


# ---- which profile -------------------------------------------------------------------


class DaemonSeccompMode(enum.StrEnum):
    """daemon.json `seccomp-profile`: "" or "builtin", "unconfined", or a file's path."""

    BUILTIN = "builtin"
    UNCONFINED = "unconfined"
    CUSTOM = "custom"


@dataclass(frozen=True)
class DaemonSeccomp:
    mode: DaemonSeccompMode = DaemonSeccompMode.BUILTIN
    builtin: SeccompProfile | None = None  # None: no default profile found on this host
    custom: SeccompProfile | None = None  # with CUSTOM


def choose_profile(
    kind: SeccompKind, own: SeccompProfile | None, privileged: bool, daemon: DaemonSeccomp
) -> SeccompProfile | None:
    """dockerd's WithSeccomp: which profile a container runs under (None: unconfined).

    `own` is the container's JSON profile (with PROFILE). A privileged container has none
    unless it names one; seccomp=builtin gives the default profile even when privileged
    (dockerd would try to read "builtin" as JSON there and fail the start)."""
    if kind is SeccompKind.UNCONFINED:
        return None
    if kind is SeccompKind.PROFILE:
        if own is None:
            raise InvalidArgument("a seccomp profile was asked for but none was given")
        return own
    if kind is SeccompKind.BUILTIN:
        if daemon.builtin is None:
            raise InvalidArgument("seccomp=builtin: the default seccomp profile is not installed on this host")
        return daemon.builtin
    if privileged:
        return None
    if daemon.mode is DaemonSeccompMode.CUSTOM:
        return daemon.custom
    if daemon.mode is DaemonSeccompMode.UNCONFINED:
        return None
    return daemon.builtin
