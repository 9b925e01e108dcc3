"""The typed HostConfig pieces and their string forms (model.hostconfig)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.hostconfig import (
    ALL_CAPS,
    CAP_NUMBERS,
    DeviceMapping,
    DeviceRule,
    DeviceType,
    ExtraHost,
    NamespaceKind,
    NamespaceMode,
    SeccompKind,
    SecurityOptions,
    Ulimit,
    caps_from_mask,
    check_device,
    check_sysctl,
    check_ulimit,
    check_userns_mode,
    normalize_caps,
    parse_cgroupns_mode,
    parse_device_rule,
    parse_extra_host,
    parse_ipc_mode,
    parse_pid_mode,
    parse_security_opts,
    parse_uts_mode,
)


def test_capability_tables_agree() -> None:
    assert set(ALL_CAPS) == set(CAP_NUMBERS)
    assert sorted(CAP_NUMBERS.values()) == list(range(41))


def test_caps_from_mask() -> None:
    assert caps_from_mask(0) == frozenset()
    assert caps_from_mask(1) == {"CAP_CHOWN"}
    assert caps_from_mask(0x1FFFEFFFFFF) == set(ALL_CAPS) - {"CAP_SYS_RESOURCE"}  # this machine's CapBnd


@pytest.mark.parametrize(("given", "normal"), [("net_admin", "CAP_NET_ADMIN"), ("CAP_KILL", "CAP_KILL"),
                                                ("all", "ALL"), ("Sys_Admin", "CAP_SYS_ADMIN")])  # fmt: skip
def test_normalize_caps(given: str, normal: str) -> None:
    assert normalize_caps([given], "CapAdd") == (normal,)


def test_unknown_capability_words() -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize_caps(["BOGUS"], "CapAdd")
    assert info.value.message == 'invalid CapAdd: unknown capability: "CAP_BOGUS"'
    with pytest.raises(InvalidArgument, match='invalid CapDrop: unknown capability: "CAP_X"'):
        normalize_caps(["x"], "CapDrop")


@pytest.mark.parametrize(
    ("text", "mode"),
    [("", NamespaceMode()), ("private", NamespaceMode()), ("shareable", NamespaceMode(NamespaceKind.SHAREABLE)),
     ("none", NamespaceMode(NamespaceKind.NONE)), ("host", NamespaceMode(NamespaceKind.HOST)),
     ("container:web", NamespaceMode(NamespaceKind.CONTAINER, "web"))],
)  # fmt: skip
def test_ipc_modes(text: str, mode: NamespaceMode) -> None:
    assert parse_ipc_mode(text) == mode


@pytest.mark.parametrize("text", ["bogus", "container:", "container", "host:x", "Host"])
def test_bad_ipc_mode(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_ipc_mode(text)
    assert info.value.message == f"invalid IPC mode: {text}"


def test_pid_and_uts_modes() -> None:
    assert parse_pid_mode("") == NamespaceMode() and parse_pid_mode("").private
    assert parse_pid_mode("host").kind is NamespaceKind.HOST and not parse_pid_mode("host").private
    assert parse_pid_mode("container:abc") == NamespaceMode(NamespaceKind.CONTAINER, "abc")
    assert parse_uts_mode("host").kind is NamespaceKind.HOST
    for bad, parser, what in (("shareable", parse_pid_mode, "PID"), ("container:x", parse_uts_mode, "UTS"),
                              ("private", parse_uts_mode, "UTS")):  # fmt: skip
        with pytest.raises(InvalidArgument, match=f"invalid {what} mode: {bad}"):
            parser(bad)


def test_cgroupns_and_userns() -> None:
    assert parse_cgroupns_mode("").kind is NamespaceKind.HOST
    assert parse_cgroupns_mode("private").kind is NamespaceKind.PRIVATE
    with pytest.raises(InvalidArgument, match="invalid cgroup namespace mode: x"):
        parse_cgroupns_mode("x")
    check_userns_mode("")
    check_userns_mode("host")
    with pytest.raises(InvalidArgument, match='invalid UsernsMode "private"'):
        check_userns_mode("private")


def test_device_mapping() -> None:
    assert check_device(DeviceMapping("/dev/null", "", "")) == DeviceMapping("/dev/null", "/dev/null", "rwm")
    assert check_device(DeviceMapping("/dev/null", "/dev/x", "r")).cgroup_permissions == "r"
    with pytest.raises(InvalidArgument, match="invalid device mode: rwx"):
        check_device(DeviceMapping("/dev/null", "/dev/x", "rwx"))
    with pytest.raises(InvalidArgument, match="invalid device mode: rr"):
        check_device(DeviceMapping("/dev/null", "/dev/x", "rr"))
    with pytest.raises(InvalidArgument, match="device path must be absolute"):
        check_device(DeviceMapping("dev/null", "", "rwm"))
    with pytest.raises(InvalidArgument, match="path must be absolute"):
        check_device(DeviceMapping("/dev/null", "x", "rwm"))


@pytest.mark.parametrize(
    ("text", "rule"),
    [("c 1:3 rwm", DeviceRule(DeviceType.CHAR, 1, 3, "rwm")), ("b *:* r", DeviceRule(DeviceType.BLOCK, None, None, "r")),
     ("a *:5 mw", DeviceRule(DeviceType.ALL, None, 5, "mw"))],
)  # fmt: skip
def test_device_rules(text: str, rule: DeviceRule) -> None:
    assert parse_device_rule(text) == rule
    assert str(rule) == text


@pytest.mark.parametrize("text", ["x 1:3 rwm", "c 1:3", "c 1 rwm", "c 1:3 rwx", "c 1:3 rr", "c a:3 r", " c 1:3 r"])
def test_bad_device_rules(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_device_rule(text)
    assert info.value.message == f"invalid device cgroup rule format: '{text}'"


def test_ulimits() -> None:
    u = check_ulimit(Ulimit("nofile", 512, 1024))
    assert u.rlimit == "RLIMIT_NOFILE" and (u.soft, u.hard) == (512, 1024)
    assert check_ulimit(Ulimit("core", -1, -1)) == Ulimit("core", -1, -1)
    assert check_ulimit(Ulimit("core", 5, -1)) == Ulimit("core", 5, -1)
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        check_ulimit(Ulimit("bogus", 1, 1))
    with pytest.raises(InvalidArgument, match="ulimit soft limit must be less than or equal to hard limit: 2 > 1"):
        check_ulimit(Ulimit("nofile", 2, 1))
    with pytest.raises(InvalidArgument, match="soft limit must be less than or equal"):
        check_ulimit(Ulimit("nofile", -1, 10))


def test_security_opts() -> None:
    assert parse_security_opts([]) == SecurityOptions()
    assert parse_security_opts(["no-new-privileges"]).no_new_privileges
    assert parse_security_opts(["no-new-privileges:true"]).no_new_privileges
    assert not parse_security_opts(["no-new-privileges", "no-new-privileges=false"]).no_new_privileges
    assert parse_security_opts(["seccomp=unconfined"]).seccomp is SeccompKind.UNCONFINED
    profile = parse_security_opts(['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}'])
    assert profile.seccomp is SeccompKind.PROFILE and profile.seccomp_profile.startswith("{")
    assert parse_security_opts(["apparmor=unconfined"]).apparmor == "unconfined"
    assert parse_security_opts(["label=disable"]).label_disable
    assert parse_security_opts(["disable"]).label_disable
    assert parse_security_opts(["writable-cgroups=true"]).writable_cgroups is True


@pytest.mark.parametrize(
    ("opt", "words"),
    [("bogus", 'invalid --security-opt 1: "bogus"'), ("x=1", 'invalid --security-opt 2: "x=1"'),
     ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
     ("seccomp=/etc/profile.json", "seccomp profile must be 'unconfined', 'builtin' or a JSON profile"),
     ('seccomp={"defaultAction": "SCMP_ACT_NOPE"}', "Decoding seccomp profile failed"),
     ("apparmor=docker-default", "AppArmor is not supported by this daemon"),
     ("label=user:USER", "SELinux labels are not supported by this daemon")],
)  # fmt: skip
def test_bad_security_opts(opt: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_security_opts([opt])
    assert words in info.value.message


@pytest.mark.parametrize("key", ["kernel.shmmax", "kernel.msgmnb", "kernel.sem", "kernel.shm_rmid_forced",
                                 "fs.mqueue.msg_max", "net.ipv4.ip_forward", "net.core.somaxconn"])  # fmt: skip
def test_namespaced_sysctls_allowed(key: str) -> None:
    check_sysctl(key, "1", net_host=False, ipc_host=False)


@pytest.mark.parametrize("key", ["kernel.pid_max", "vm.swappiness", "fs.file-max", "kernel.shmmaxx", "netx.y"])
def test_host_sysctls_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_sysctl(key, "1", net_host=False, ipc_host=False)
    assert info.value.message == f"sysctl '{key}=1' is not allowed"


def test_sysctls_need_their_namespace() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_sysctl("net.ipv4.ip_forward", "1", net_host=True, ipc_host=False)
    assert info.value.message == 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'
    with pytest.raises(InvalidArgument, match="not allowed in the hosts ipc namespace"):
        check_sysctl("kernel.shmmax", "1", net_host=False, ipc_host=True)
    check_sysctl("kernel.shmmax", "1", net_host=True, ipc_host=False)


@pytest.mark.parametrize(
    ("text", "host"),
    [("db:10.0.0.1", ExtraHost("db", "10.0.0.1")), ("v6:::1", ExtraHost("v6", "::1")),
     ("v6:[2001:db8::1]", ExtraHost("v6", "2001:db8::1")), ("gw:host-gateway", ExtraHost("gw", "host-gateway"))],
)  # fmt: skip
def test_extra_hosts(text: str, host: ExtraHost) -> None:
    assert parse_extra_host(text) == host


@pytest.mark.parametrize(
    ("text", "words"),
    [("db", 'bad format for add-host: "db"'), (":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
     ("db:x", 'invalid IP address in add-host: "x"'), ("db:1.2.3.400", 'invalid IP address in add-host: "1.2.3.400"'),
    ],
)  # fmt: skip
def test_bad_extra_hosts(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_extra_host(text)
    assert words in info.value.message
