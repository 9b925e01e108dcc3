"""Seccomp: dockerd's profile format parsed and checked, its conditions applied against the
container's capabilities and the host's architecture and kernel (model/seccomp.py), the OCI
form in config.json (runtime/spec.py), the daemon's profiles (runtime/seccomp.py), the
daemon.json keys (config.py) and what `docker info` says (engine/system.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import parse_daemon_args
from dockyard.engine.system import security_info
from dockyard.errors import InvalidArgument
from dockyard.model.admission import HostFacts, create_warnings
from dockyard.model.containers import ContainerSpec, HostSpec
from dockyard.model.hostconfig import ALL_CAPS, DEFAULT_CAPS, SecurityOptions, parse_security_opts
from dockyard.model.seccomp import (
    ArchEntry,
    Condition,
    DaemonSeccomp,
    DaemonSeccompMode,
    KernelVersion,
    LinuxSeccomp,
    LinuxSyscall,
    SeccompHost,
    SeccompKind,
    SeccompProfile,
    SyscallArg,
    SyscallRule,
    choose_profile,
    parse_profile,
    parse_release,
    resolve,
)
from dockyard.runtime.seccomp import BUILTIN_LOCATIONS, SeccompProfiles, shared_profiles
from dockyard.runtime.spec import SpecInput, build_spec

AMD64 = SeccompHost("amd64", KernelVersion(6, 18))
DEFAULT = frozenset(DEFAULT_CAPS)


def profile(**doc: Any) -> SeccompProfile:
    return parse_profile(json.dumps(doc))


def rule(**doc: Any) -> dict[str, Any]:
    return {"names": ["x"], "action": "SCMP_ACT_ALLOW", **doc}


def names(s: LinuxSeccomp | None) -> list[str]:
    assert s is not None
    return [n for r in s.syscalls for n in r.names]


# ---- kernel versions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "version"),
    [("6.18.44-fc-v669", (6, 18)), ("3.12.25-gentoo", (3, 12)), ("3.12-1-amd64", (3, 12)), ("3.12", (3, 12)),
     ("4.8.0", (4, 8)), (" 5.10.0-rc5", (5, 10))],
)  # fmt: skip
def test_release(release: str, version: tuple[int, int]) -> None:
    assert parse_release(release) == KernelVersion(*version)


@pytest.mark.parametrize("release", ["", "abc", "6", "6.", ".18", "v6.18"])
def test_bad_release(release: str) -> None:
    with pytest.raises(InvalidArgument, match="failed to parse kernel version"):
        parse_release(release)


def test_kernel_versions_order() -> None:
    assert KernelVersion(4, 8) < KernelVersion(4, 10) < KernelVersion(5, 0)
    assert str(KernelVersion(4, 8)) == "4.8"


# ---- parsing -------------------------------------------------------------------------


def test_minimal_profile() -> None:
    assert profile(defaultAction="SCMP_ACT_ALLOW") == SeccompProfile("SCMP_ACT_ALLOW")


def test_empty_profile_asks_for_nothing() -> None:
    assert parse_profile("{}") == SeccompProfile("")
    assert resolve(parse_profile("{}"), AMD64, DEFAULT) is None


def test_every_field() -> None:
    got = profile(
        defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=1, flags=["SECCOMP_FILTER_FLAG_LOG"],
        listenerPath="/run/l.sock", listenerMetadata="meta", comment="ignored", unknown={"also": "ignored"},
        archMap=[{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        syscalls=[{
            "names": ["personality"], "action": "SCMP_ACT_ALLOW", "errnoRet": 38, "comment": "c",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": 2**64 - 1, "op": "SCMP_CMP_MASKED_EQ"}],
            "includes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["amd64"], "minKernel": "4.8"},
            "excludes": {"caps": ["CAP_SYS_BOOT"], "arches": ["s390"], "minKernel": "5.10"},
        }],
    )  # fmt: skip
    assert got == SeccompProfile(
        default_action="SCMP_ACT_ERRNO", default_errno_ret=1,
        arch_map=(ArchEntry("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),),
        flags=("SECCOMP_FILTER_FLAG_LOG",), listener_path="/run/l.sock", listener_metadata="meta",
        syscalls=(SyscallRule(
            names=("personality",), action="SCMP_ACT_ALLOW", errno_ret=38,
            args=(SyscallArg(0, 8, "SCMP_CMP_EQ"), SyscallArg(1, 2**64 - 1, "SCMP_CMP_MASKED_EQ")),
            includes=Condition(("CAP_SYS_ADMIN",), ("amd64",), KernelVersion(4, 8)),
            excludes=Condition(("CAP_SYS_BOOT",), ("s390",), KernelVersion(5, 10)),
        ),),
    )  # fmt: skip


def test_nulls_are_go_zero_values() -> None:
    got = profile(defaultAction="SCMP_ACT_ALLOW", architectures=None, syscalls=[
        {"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": None, "includes": {}, "excludes": None, "errnoRet": None}])  # fmt: skip
    assert got.syscalls == (SyscallRule(("x",), "SCMP_ACT_ALLOW"),)


def test_old_name_field() -> None:
    assert profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[{"name": "kill", "action": "SCMP_ACT_ERRNO"}]).syscalls == (
        SyscallRule(("kill",), "SCMP_ACT_ERRNO"),
    )


def test_empty_min_kernel_is_none() -> None:
    got = profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[rule(includes={"minKernel": ""})])
    assert got.syscalls[0].includes == Condition()


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("not json", "Decoding seccomp profile failed: Expecting value"),
        ("[]", "expected an object"),
        ({"defaultAction": "SCMP_ACT_BOGUS"}, 'unknown action "SCMP_ACT_BOGUS"'),
        ({"defaultAction": 1}, "expected a string"),
        ({"syscalls": [rule()]}, "defaultAction is missing"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}, "expected a list"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(action="SCMP_ACT_NOPE")]}, 'unknown action "SCMP_ACT_NOPE"'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"]}]}, "needs an action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(name="y")]}, "both 'name' and 'names'"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(names="x")]}, "expected a list of strings"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(names=[1])]}, "expected a string"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(errnoRet=-1)]}, "expected an integer from 0"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(errnoRet=True)]}, "expected an integer from 0"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(errnoRet="1")]}, "expected an integer from 0"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(errnoRet=2**32)]}, "expected an integer from 0"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1.5}, "expected an integer from 0"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args=[{"index": 0, "value": 1}])]}, "needs an op"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args=[{"op": "SCMP_CMP_ISH"}])]}, 'unknown operator "SCMP_CMP_ISH"'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args=[{"op": "SCMP_CMP_EQ", "value": 2**64}])]}, "from 0 to"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args=[{"op": "SCMP_CMP_EQ", "index": -1}])]}, "from 0 to"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args={})]}, "expected a list"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(includes=[])]}, "expected an object"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(includes={"caps": "CAP_X"})]}, "expected a list of strings"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}, 'unknown architecture "SCMP_ARCH_Z80"'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_Z80"}]}, 'unknown architecture'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"subArchitectures": []}]}, "needs an architecture"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x"]}]},
         'unknown architecture "x"'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, 'unknown flag'),
        ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": 3}, "expected a string"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]},
         "both 'architectures' and 'archMap' are specified in the seccomp profile"),
    ],
)  # fmt: skip
def test_bad_profiles(doc: Any, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_profile(doc if isinstance(doc, str) else json.dumps(doc))
    assert info.value.message.startswith("Decoding seccomp profile failed: ")
    assert words in info.value.message


@pytest.mark.parametrize("version", ["4", "4.8.1", "0.0", "256.1", "4.256", "a.b", "4.-1", "4.8\n", "٤.8"])
def test_bad_min_kernel(version: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid kernel version"):
        profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[rule(includes={"minKernel": version})])


def test_min_kernel_must_be_a_string() -> None:
    with pytest.raises(InvalidArgument, match="expected a string"):
        profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[rule(excludes={"minKernel": 4.8})])


# ---- conditions ----------------------------------------------------------------------


def test_arch_map_picks_the_hosts_entry() -> None:
    p = profile(defaultAction="SCMP_ACT_ERRNO", archMap=[
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
        {"architecture": "SCMP_ARCH_MIPSEL", "subArchitectures": []},
    ])  # fmt: skip
    arches = {goarch: resolve(p, SeccompHost(goarch, KernelVersion(6, 1)), DEFAULT) for goarch in
              ("amd64", "arm64", "s390x", "ppc64le", "mipsle")}  # fmt: skip
    assert {k: v.architectures for k, v in arches.items() if v} == {
        "amd64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
        "arm64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
        "s390x": ("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
        "ppc64le": (),
        "mipsle": ("SCMP_ARCH_MIPSEL",),
    }


def test_architectures_pass_through() -> None:
    p = profile(defaultAction="SCMP_ACT_ERRNO", architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    got = resolve(p, SeccompHost("arm64", KernelVersion(6, 1)), DEFAULT)
    assert got is not None and got.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")


@pytest.mark.parametrize(
    ("cond", "caps", "kept"),
    [
        ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT, False),
        ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT | {"CAP_SYS_ADMIN"}, True),
        ({"includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}}, DEFAULT | {"CAP_SYS_ADMIN"}, False),  # all of them
        ({"includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}}, frozenset(ALL_CAPS), True),
        ({"excludes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT, True),
        ({"excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}}, DEFAULT | {"CAP_SYS_BOOT"}, False),  # any of them
        ({"includes": {"caps": []}}, frozenset(), True),
        ({"excludes": {"caps": ["CAP_CHOWN"]}}, frozenset(), True),
    ],
)  # fmt: skip
def test_capability_conditions(cond: dict[str, Any], caps: frozenset[str], kept: bool) -> None:
    p = profile(defaultAction="SCMP_ACT_ERRNO", syscalls=[rule(**cond)])
    assert names(resolve(p, AMD64, caps)) == (["x"] if kept else [])


@pytest.mark.parametrize(
    ("cond", "goarch", "kept"),
    [
        ({"includes": {"arches": ["amd64", "x32"]}}, "amd64", True),
        ({"includes": {"arches": ["amd64", "x32"]}}, "arm64", False),
        ({"includes": {"arches": ["x86"]}}, "386", True),  # libseccomp's name, not Go's
        ({"includes": {"arches": ["386"]}}, "386", False),
        ({"includes": {"arches": ["mipsel64"]}}, "mips64le", True),
        ({"excludes": {"arches": ["s390", "s390x"]}}, "s390x", False),
        ({"excludes": {"arches": ["s390", "s390x"]}}, "amd64", True),
        ({"includes": {"arches": ["s390x"]}, "excludes": {"arches": ["s390x"]}}, "s390x", False),
    ],
)  # fmt: skip
def test_architecture_conditions(cond: dict[str, Any], goarch: str, kept: bool) -> None:
    p = profile(defaultAction="SCMP_ACT_ERRNO", syscalls=[rule(**cond)])
    assert names(resolve(p, SeccompHost(goarch, KernelVersion(6, 1)), DEFAULT)) == (["x"] if kept else [])


@pytest.mark.parametrize(
    ("cond", "kernel", "kept"),
    [
        ({"includes": {"minKernel": "4.8"}}, (4, 7), False),
        ({"includes": {"minKernel": "4.8"}}, (4, 8), True),
        ({"includes": {"minKernel": "4.8"}}, (4, 10), True),  # numbers, not strings
        ({"includes": {"minKernel": "4.8"}}, (5, 0), True),
        ({"includes": {"minKernel": "4.8"}}, (3, 19), False),
        ({"excludes": {"minKernel": "5.10"}}, (5, 9), True),
        ({"excludes": {"minKernel": "5.10"}}, (5, 10), False),
        ({"excludes": {"minKernel": "5.10"}}, (6, 18), False),
    ],
)  # fmt: skip
def test_kernel_conditions(cond: dict[str, Any], kernel: tuple[int, int], kept: bool) -> None:
    p = profile(defaultAction="SCMP_ACT_ERRNO", syscalls=[rule(**cond)])
    assert names(resolve(p, SeccompHost("amd64", KernelVersion(*kernel)), DEFAULT)) == (["x"] if kept else [])


def test_resolve_keeps_order_and_every_rule_field() -> None:
    p = profile(
        defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=1, flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        listenerPath="/l", listenerMetadata="m",
        syscalls=[
            {"names": ["a", "b"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["gone"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["c"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 1, "value": 5, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    )  # fmt: skip
    assert resolve(p, AMD64, DEFAULT) == LinuxSeccomp(
        default_action="SCMP_ACT_ERRNO", default_errno_ret=1, flags=("SECCOMP_FILTER_FLAG_SPEC_ALLOW",),
        listener_path="/l", listener_metadata="m",
        syscalls=(LinuxSyscall(("a", "b"), "SCMP_ACT_ALLOW"),
                  LinuxSyscall(("c",), "SCMP_ACT_ERRNO", 38, (SyscallArg(1, 5, "SCMP_CMP_MASKED_EQ", 7),))),
    )  # fmt: skip


def test_a_rule_without_names_stays() -> None:
    p = profile(defaultAction="SCMP_ACT_ALLOW", syscalls=[{"action": "SCMP_ACT_ALLOW"}])
    got = resolve(p, AMD64, DEFAULT)
    assert got is not None and got.syscalls == (LinuxSyscall((), "SCMP_ACT_ALLOW"),)


# ---- which profile -------------------------------------------------------------------

BUILTIN = SeccompProfile("SCMP_ACT_ERRNO")
CUSTOM = SeccompProfile("SCMP_ACT_LOG")
OWN = SeccompProfile("SCMP_ACT_TRAP")
ON_BUILTIN = DaemonSeccomp(DaemonSeccompMode.BUILTIN, BUILTIN)
ON_CUSTOM = DaemonSeccomp(DaemonSeccompMode.CUSTOM, BUILTIN, CUSTOM)
ON_UNCONFINED = DaemonSeccomp(DaemonSeccompMode.UNCONFINED, BUILTIN)
NO_BUILTIN = DaemonSeccomp(DaemonSeccompMode.BUILTIN, None)


@pytest.mark.parametrize(
    ("kind", "privileged", "daemon", "chosen"),
    [
        (SeccompKind.DEFAULT, False, ON_BUILTIN, BUILTIN),
        (SeccompKind.DEFAULT, False, ON_CUSTOM, CUSTOM),
        (SeccompKind.DEFAULT, False, ON_UNCONFINED, None),
        (SeccompKind.DEFAULT, False, NO_BUILTIN, None),
        (SeccompKind.DEFAULT, True, ON_BUILTIN, None),
        (SeccompKind.DEFAULT, True, ON_CUSTOM, None),
        (SeccompKind.UNCONFINED, False, ON_BUILTIN, None),
        (SeccompKind.UNCONFINED, False, ON_CUSTOM, None),
        (SeccompKind.UNCONFINED, True, ON_CUSTOM, None),
        (SeccompKind.BUILTIN, False, ON_CUSTOM, BUILTIN),
        (SeccompKind.BUILTIN, False, ON_UNCONFINED, BUILTIN),
        (SeccompKind.BUILTIN, True, ON_UNCONFINED, BUILTIN),
        (SeccompKind.PROFILE, False, ON_CUSTOM, OWN),
        (SeccompKind.PROFILE, False, ON_UNCONFINED, OWN),
        (SeccompKind.PROFILE, True, ON_BUILTIN, OWN),
        (SeccompKind.PROFILE, False, NO_BUILTIN, OWN),
    ],
)  # fmt: skip
def test_choose_profile(kind: SeccompKind, privileged: bool, daemon: DaemonSeccomp, chosen: SeccompProfile | None) -> None:
    assert choose_profile(kind, OWN, privileged, daemon) is chosen


def test_builtin_asked_but_missing() -> None:
    with pytest.raises(InvalidArgument, match="default seccomp profile is not installed"):
        choose_profile(SeccompKind.BUILTIN, None, False, NO_BUILTIN)


def test_profile_kind_without_a_profile() -> None:
    with pytest.raises(InvalidArgument):
        choose_profile(SeccompKind.PROFILE, None, False, ON_BUILTIN)


# ---- security options ----------------------------------------------------------------


def test_security_opts_seccomp_kinds() -> None:
    assert parse_security_opts([]).seccomp is SeccompKind.DEFAULT
    assert parse_security_opts(["seccomp=builtin"]).seccomp is SeccompKind.BUILTIN
    assert parse_security_opts(["seccomp:unconfined"]).seccomp is SeccompKind.UNCONFINED
    own = parse_security_opts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "seccomp=unconfined"])
    assert own.seccomp is SeccompKind.UNCONFINED and own.seccomp_profile == ""  # the last one wins
    last = parse_security_opts(["seccomp=unconfined", 'seccomp= {"defaultAction":"SCMP_ACT_ALLOW"}'])
    assert last.seccomp is SeccompKind.PROFILE and last.seccomp_profile == ' {"defaultAction":"SCMP_ACT_ALLOW"}'


def test_security_opts_no_new_privileges_is_three_valued() -> None:
    assert parse_security_opts([]).no_new_privileges is None
    assert parse_security_opts(["no-new-privileges"]).no_new_privileges is True
    assert parse_security_opts(["no-new-privileges=false"]).no_new_privileges is False
    assert SecurityOptions().no_new_privileges_or(True) is True
    assert SecurityOptions().no_new_privileges_or(False) is False
    assert SecurityOptions(no_new_privileges=False).no_new_privileges_or(True) is False
    assert SecurityOptions(no_new_privileges=True).no_new_privileges_or(False) is True


def test_bad_own_profile_is_refused_when_parsed() -> None:
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        parse_security_opts(['seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"]}]}'])


# ---- the OCI form in config.json -----------------------------------------------------


def _spec(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"rootfs": "/r", "args": ("sh",), "env": (), "cwd": "/", "hostname": "h",
                            "cgroups_path": "/dockyard/x", "seccomp_host": AMD64}  # fmt: skip
    return build_spec(SpecInput(**{**base, **kw}))


GROUPED = profile(
    defaultAction="SCMP_ACT_ERRNO", defaultErrnoRet=1,
    archMap=[{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    syscalls=[
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    ],
)  # fmt: skip


def test_spec_without_a_profile_has_no_seccomp() -> None:
    assert "seccomp" not in _spec()["linux"]


def test_spec_seccomp_shape() -> None:
    assert _spec(seccomp=GROUPED)["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        ],
    }  # fmt: skip


def test_spec_seccomp_follows_the_containers_capabilities() -> None:
    def groups(**kw: Any) -> list[str]:
        return [n for r in _spec(seccomp=GROUPED, **kw)["linux"]["seccomp"]["syscalls"] for n in r["names"]]

    assert "mount" not in groups() and "clone3" in groups()
    assert "mount" in groups(cap_add=("SYS_ADMIN",)) and "clone3" not in groups(cap_add=("SYS_ADMIN",))
    assert "mount" in groups(cap_add=("ALL",))
    assert "mount" not in groups(cap_add=("ALL",), cap_drop=("CAP_SYS_ADMIN",))
    # a privileged container's profile (one it named) sees what the bounding set holds
    assert "mount" in groups(privileged=True)
    assert "mount" not in groups(privileged=True, available_caps=tuple(c for c in ALL_CAPS if c != "CAP_SYS_ADMIN"))


def test_spec_optional_seccomp_fields() -> None:
    p = profile(defaultAction="SCMP_ACT_NOTIFY", flags=["SECCOMP_FILTER_FLAG_LOG"], listenerPath="/l",
                listenerMetadata="m", architectures=["SCMP_ARCH_AARCH64"])  # fmt: skip
    assert _spec(seccomp=p)["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_NOTIFY", "architectures": ["SCMP_ARCH_AARCH64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/l", "listenerMetadata": "m", "syscalls": [],
    }  # fmt: skip


def test_spec_extra_masked_paths_follow_dockerds() -> None:
    linux = _spec(extra_masked_paths=("/sys/devices/system/cpu/cpu0/thermal_throttle",))["linux"]
    assert linux["maskedPaths"][-1] == "/sys/devices/system/cpu/cpu0/thermal_throttle"
    assert linux["maskedPaths"][:3] == ["/proc/acpi", "/proc/asound", "/proc/interrupts"]
    assert "maskedPaths" not in _spec(privileged=True, extra_masked_paths=("/x",))["linux"]


# ---- dockerd's own default profile, as installed -------------------------------------


def _installed() -> str:
    for path in BUILTIN_LOCATIONS[:3]:  # dockerd's file (containers-common's differs)
        if path.exists():
            return path.read_text()
    pytest.skip("dockerd's default.json is not installed (dev/setup extracts it)")


def test_installed_default_profile_for_a_default_container() -> None:
    got = resolve(parse_profile(_installed()), AMD64, DEFAULT)
    assert got is not None
    assert got.default_action == "SCMP_ACT_ERRNO"
    assert got.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    allowed = {n for r in got.syscalls if r.action == "SCMP_ACT_ALLOW" for n in r.names}
    assert {"read", "arch_prctl", "modify_ldt", "ptrace", "chroot"} <= allowed
    assert not {"mount", "unshare", "bpf", "keyctl", "add_key", "perf_event_open", "reboot", "s390_runtime_instr"} & allowed
    assert any(r.names == ("clone3",) and r.errno_ret == 38 for r in got.syscalls)


def test_installed_default_profile_with_cap_sys_admin_and_an_old_kernel() -> None:
    p = parse_profile(_installed())
    got = resolve(p, SeccompHost("amd64", KernelVersion(4, 4)), DEFAULT | {"CAP_SYS_ADMIN"})
    allowed = {n for r in (got.syscalls if got else ()) if r.action == "SCMP_ACT_ALLOW" for n in r.names}
    assert {"mount", "unshare", "clone3"} <= allowed
    assert not any(r.names == ("clone3",) and r.errno_ret == 38 for r in (got.syscalls if got else ()))
    assert "ptrace" not in allowed  # minKernel 4.8, and no CAP_SYS_PTRACE


# ---- the daemon's profiles -----------------------------------------------------------

SMALL = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule(names=["read"])]})


def _profiles(tmp_path: Path, *files: str | None, setting: str = "builtin", custom: str = "", kernel: bool = True) -> SeccompProfiles:
    locations = []
    for i, text in enumerate(files):
        path = tmp_path / f"p{i}.json"
        if text is not None:
            path.write_text(text)
        locations.append(path)
    return SeccompProfiles(setting, custom, locations=locations, host=AMD64, kernel_support=kernel)


def test_first_readable_valid_location_wins(tmp_path: Path) -> None:
    p = _profiles(tmp_path, None, "{bad json", SMALL, json.dumps({"defaultAction": "SCMP_ACT_LOG"}))
    got = p.for_container(SecurityOptions(), False)
    assert got == parse_profile(SMALL)
    assert p.builtin_path == tmp_path / "p2.json"


def test_default_profile_is_read_once(tmp_path: Path) -> None:
    p = _profiles(tmp_path, SMALL)
    first = p.for_container(SecurityOptions(), False)
    (tmp_path / "p0.json").unlink()
    assert p.for_container(SecurityOptions(), False) is first
    assert p.load() is p.load()


def test_own_profiles_are_parsed_once_and_bounded(tmp_path: Path) -> None:
    p = _profiles(tmp_path, SMALL)
    own = SecurityOptions(seccomp=SeccompKind.PROFILE, seccomp_profile='{"defaultAction":"SCMP_ACT_LOG"}')
    assert p.for_container(own, False) is p.for_container(own, False)
    first = p.for_container(own, False)
    for i in range(70):
        p.for_container(SecurityOptions(seccomp=SeccompKind.PROFILE, seccomp_profile=f'{{"defaultAction":"SCMP_ACT_LOG","listenerMetadata":"{i}"}}'), False)
    assert p.for_container(own, False) is not first  # evicted, parsed again
    assert p.for_container(own, False) == first


def test_missing_default_profile(tmp_path: Path) -> None:
    p = _profiles(tmp_path, None)
    assert p.for_container(SecurityOptions(), False) is None
    with pytest.raises(InvalidArgument, match="not installed"):
        p.for_container(SecurityOptions(seccomp=SeccompKind.BUILTIN), False)
    report = p.report()
    assert report.options == ("name=seccomp,profile=unconfined",)
    assert "not installed" in report.warnings[0]


def test_reports(tmp_path: Path) -> None:
    assert _profiles(tmp_path, SMALL).report().options == ("name=seccomp,profile=builtin",)
    assert _profiles(tmp_path, SMALL).report().warnings == ()
    unconfined = _profiles(tmp_path, SMALL, setting="unconfined").report()
    assert unconfined.options == ("name=seccomp,profile=unconfined",)
    assert unconfined.warnings == ("WARNING: daemon is not using the default seccomp profile",)
    custom = _profiles(tmp_path, SMALL, setting="/etc/p.json", custom=SMALL).report()
    assert custom.options == ("name=seccomp,profile=/etc/p.json",)
    assert _profiles(tmp_path, SMALL, kernel=False).report().options == ()


def test_daemon_custom_and_unconfined(tmp_path: Path) -> None:
    custom = '{"defaultAction": "SCMP_ACT_LOG"}'
    p = _profiles(tmp_path, SMALL, setting="/etc/p.json", custom=custom)
    assert p.for_container(SecurityOptions(), False) == parse_profile(custom)
    assert p.for_container(SecurityOptions(seccomp=SeccompKind.BUILTIN), False) == parse_profile(SMALL)
    assert _profiles(tmp_path, SMALL, setting="unconfined").for_container(SecurityOptions(), False) is None


def test_no_seccomp_in_the_kernel(tmp_path: Path) -> None:
    p = _profiles(tmp_path, SMALL, kernel=False)
    assert p.for_container(SecurityOptions(), False) is None
    with pytest.raises(InvalidArgument, match="seccomp is not enabled in your kernel"):
        p.for_container(SecurityOptions(seccomp=SeccompKind.PROFILE, seccomp_profile=SMALL), False)


def test_shared_profiles_one_per_setting() -> None:
    assert shared_profiles("builtin") is shared_profiles("")
    assert shared_profiles("unconfined") is not shared_profiles("builtin")


def test_security_info(tmp_path: Path) -> None:
    from dockyard.config import DaemonConfig

    p = _profiles(tmp_path, SMALL)
    assert security_info(DaemonConfig(), p).options == ("name=seccomp,profile=builtin",)
    on = security_info(DaemonConfig(no_new_privileges=True), p)
    assert on.options == ("name=seccomp,profile=builtin", "name=no-new-privileges")
    assert on.warnings == ()


# ---- daemon.json and flags -----------------------------------------------------------


def _parse(tmp_path: Path, *argv: str, doc: Any = None) -> Any:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps(doc or {}))
    return parse_daemon_args([*argv, f"--config-file={config}"])


def test_config_defaults(tmp_path: Path) -> None:
    c = _parse(tmp_path)
    assert (c.seccomp_profile, c.seccomp_profile_json, c.no_new_privileges) == ("builtin", "", False)


def test_config_profile_from_file_and_flag(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(SMALL)
    by_file = _parse(tmp_path, doc={"seccomp-profile": str(path)})
    assert (by_file.seccomp_profile, by_file.seccomp_profile_json) == (str(path), SMALL)
    by_flag = _parse(tmp_path, "--seccomp-profile", str(path))
    assert (by_flag.seccomp_profile, by_flag.seccomp_profile_json) == (str(path), SMALL)
    assert _parse(tmp_path, doc={"seccomp-profile": "unconfined"}).seccomp_profile == "unconfined"
    assert _parse(tmp_path, doc={"seccomp-profile": "builtin"}).seccomp_profile == "builtin"
    assert _parse(tmp_path, doc={"seccomp-profile": ""}).seccomp_profile == "builtin"


def test_config_no_new_privileges(tmp_path: Path) -> None:
    assert _parse(tmp_path, doc={"no-new-privileges": True}).no_new_privileges is True
    assert _parse(tmp_path, doc={"no-new-privileges": False}).no_new_privileges is False
    assert _parse(tmp_path, "--no-new-privileges").no_new_privileges is True


@pytest.mark.parametrize(
    ("argv", "doc", "words"),
    [
        ((), {"seccomp-profile": "/nonexistent/p.json"}, "opening seccomp profile (/nonexistent/p.json) failed: No such file or directory"),
        ((), {"seccomp-profile": 3}, "seccomp-profile must be a path"),
        ((), {"no-new-privileges": "yes"}, "no-new-privileges must be true or false"),
        (("--seccomp-profile", "unconfined"), {"seccomp-profile": "unconfined"}, "specified both as a flag and in the configuration file: seccomp-profile"),
        (("--no-new-privileges",), {"no-new-privileges": True}, "both as a flag and in the configuration file: no-new-privileges"),
    ],
)  # fmt: skip
def test_config_errors(tmp_path: Path, argv: tuple[str, ...], doc: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _parse(tmp_path, *argv, doc=doc)
    assert words in info.value.message


def test_config_refuses_a_bad_profile(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text('{"defaultAction": "SCMP_ACT_BOGUS"}')
    with pytest.raises(InvalidArgument) as info:
        _parse(tmp_path, doc={"seccomp-profile": str(path)})
    assert info.value.message.startswith(f"seccomp profile ({path}): Decoding seccomp profile failed")


# ---- what create says when the host grants less ----------------------------------------


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        (HostSpec(), False),
        (HostSpec(privileged=True), True),
        (HostSpec(cap_add=("ALL",)), True),
        (HostSpec(cap_add=("all",), cap_drop=("SYS_RESOURCE",)), False),
        (HostSpec(cap_add=("NET_ADMIN",)), False),
        (HostSpec(privileged=True, cap_drop=("SYS_RESOURCE",)), True),  # privileged ignores drops
    ],
)  # fmt: skip
def test_create_warnings_when_the_bounding_set_is_short(host: HostSpec, warned: bool) -> None:
    short = HostFacts(caps=frozenset(c for c in ALL_CAPS if c != "CAP_SYS_RESOURCE"))
    got = create_warnings(ContainerSpec(image="busybox", hostname="h", host=host), short)
    assert bool(got) is warned
    if warned:
        assert "lacks CAP_SYS_RESOURCE; the container gets every other capability" in got[0]
    full = HostFacts(caps=frozenset(ALL_CAPS))
    assert create_warnings(ContainerSpec(image="busybox", hostname="h", host=host), full) == ()


def test_config_no_new_privileges_flag_takes_a_value(tmp_path: Path) -> None:
    assert _parse(tmp_path, "--no-new-privileges=false").no_new_privileges is False
    assert _parse(tmp_path, "--no-new-privileges=true").no_new_privileges is True
