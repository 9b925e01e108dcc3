"""The OCI runtime spec (config.json) built from typed inputs, capabilities and process env."""

from __future__ import annotations

import pytest

from dockyard.model.hostconfig import DeviceNode, DeviceRule, DeviceType, Ulimit
from dockyard.runtime.spec import (
    ALL_CAPS,
    DEFAULT_CAPS,
    DEFAULT_PATH,
    MASKED_PATHS,
    READONLY_PATHS,
    Mount,
    Namespaces,
    ProcessUser,
    Resources,
    SpecInput,
    build_spec,
    capabilities,
    process_env,
)


def _input(**kw: object) -> SpecInput:
    base: dict[str, object] = {
        "rootfs": "/var/lib/dockyard/c/abc/merged",
        "args": ("sh", "-c", "echo hi"),
        "env": (),
        "cwd": "/work",
        "hostname": "abc123",
        "cgroups_path": "dockyard-abc.scope",
    }
    base.update(kw)
    return SpecInput(**base)  # type: ignore[arg-type]


def _mounts(spec: dict[str, object]) -> dict[str, dict[str, object]]:
    mounts = spec["mounts"]
    assert isinstance(mounts, list)
    by_dest = {m["destination"]: m for m in mounts}
    assert len(by_dest) == len(mounts), "duplicate mount destinations"
    return by_dest


# ---- build_spec ------------------------------------------------------------------------


def test_top_level_shape() -> None:
    spec = build_spec(_input())
    assert spec["ociVersion"] == "1.0.2"
    assert spec["root"] == {"path": "/var/lib/dockyard/c/abc/merged", "readonly": False}
    assert spec["hostname"] == "abc123"
    assert "annotations" not in spec
    assert spec["process"]["args"] == ["sh", "-c", "echo hi"]
    assert spec["process"]["cwd"] == "/work"
    assert spec["process"]["noNewPrivileges"] is False


def test_readonly_rootfs() -> None:
    assert build_spec(_input(readonly_rootfs=True))["root"]["readonly"] is True


def test_empty_cwd_becomes_root() -> None:
    assert build_spec(_input(cwd=""))["process"]["cwd"] == "/"


def test_namespaces() -> None:
    ns = build_spec(_input())["linux"]["namespaces"]
    assert [n["type"] for n in ns] == ["pid", "ipc", "uts", "mount", "network"]
    assert all(set(n) == {"type"} for n in ns)


def test_cgroups_path() -> None:
    assert build_spec(_input(cgroups_path="system.slice:dockyard:abc"))["linux"]["cgroupsPath"] == (
        "system.slice:dockyard:abc"
    )


def test_default_mounts() -> None:
    mounts = _mounts(build_spec(_input()))
    assert list(mounts) == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
    ]  # fmt: skip
    assert mounts["/proc"]["type"] == "proc"
    assert mounts["/dev/pts"]["type"] == "devpts"
    assert "ro" in mounts["/sys"]["options"]
    assert "ro" in mounts["/sys/fs/cgroup"]["options"]
    shm = mounts["/dev/shm"]
    assert shm["type"] == "tmpfs" and shm["source"] == "shm"
    assert "size=65536k" in shm["options"]
    assert "mode=1777" in shm["options"]


@pytest.mark.parametrize(
    ("shm_size", "option"),
    [(128 * 1024 * 1024, "size=131072k"), (1024 * 1024, "size=1024k"), (1536, "size=1k")],
)
def test_shm_size(shm_size: int, option: str) -> None:
    shm = _mounts(build_spec(_input(shm_size=shm_size)))["/dev/shm"]
    assert [o for o in shm["options"] if o.startswith("size=")] == [option]


def test_privileged_sys_is_writable() -> None:
    mounts = _mounts(build_spec(_input(privileged=True)))
    assert "ro" not in mounts["/sys"]["options"]


def test_extra_mount_replaces_default_at_same_destination() -> None:
    shm = Mount("/dev/shm", "bind", "/run/dockyard/c/abc/shm", ("rbind", "rprivate"))
    bind = Mount("/data", "bind", "/srv/data", ("rbind", "ro"))
    mounts = _mounts(build_spec(_input(mounts=(shm, bind))))
    assert mounts["/dev/shm"] == {
        "destination": "/dev/shm",
        "type": "bind",
        "source": "/run/dockyard/c/abc/shm",
        "options": ["rbind", "rprivate"],
    }
    assert mounts["/data"]["options"] == ["rbind", "ro"]
    assert "/proc" in mounts and "/dev" in mounts
    # extra mounts come after the defaults that remain
    dests = [m["destination"] for m in build_spec(_input(mounts=(shm, bind)))["mounts"]]
    assert dests[-2:] == ["/dev/shm", "/data"]


def test_masked_and_readonly_paths_unprivileged() -> None:
    linux = build_spec(_input())["linux"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]


def test_masked_and_readonly_paths_absent_when_privileged() -> None:
    linux = build_spec(_input(privileged=True))["linux"]
    assert "maskedPaths" not in linux
    assert "readonlyPaths" not in linux


def test_no_terminal_without_tty() -> None:
    process = build_spec(_input(console_size=(24, 80)))["process"]
    assert process["terminal"] is False
    assert "consoleSize" not in process


def test_terminal_with_console_size() -> None:
    process = build_spec(_input(tty=True, console_size=(24, 80)))["process"]
    assert process["terminal"] is True
    assert process["consoleSize"] == {"height": 24, "width": 80}


@pytest.mark.parametrize("size", [(0, 0), (24, 0), (0, 80)])
def test_terminal_without_full_console_size(size: tuple[int, int]) -> None:
    process = build_spec(_input(tty=True, console_size=size))["process"]
    assert process["terminal"] is True
    assert "consoleSize" not in process


# moby's DefaultLinuxSpec: deny all, then zero, null, urandom, random, tty, console; fuse denied.
DOCKERD_DEVICES = [
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
]  # fmt: skip


def test_default_resources() -> None:
    res = build_spec(_input())["linux"]["resources"]
    assert res == {"devices": DOCKERD_DEVICES}


def test_memory_limit_and_swap() -> None:
    res = build_spec(_input(resources=Resources(memory=64 << 20)))["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20}
    res = build_spec(_input(resources=Resources(memory=64 << 20, memory_swap=128 << 20)))["linux"][
        "resources"
    ]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}


@pytest.mark.parametrize(
    ("nano_cpus", "quota"),
    [(1_500_000_000, 150_000), (1_000_000_000, 100_000), (500_000_000, 50_000), (10_000_000, 1_000),
     (2_250_000_000, 225_000)],
)  # fmt: skip
def test_cpu_quota_from_nano_cpus(nano_cpus: int, quota: int) -> None:
    res = build_spec(_input(resources=Resources(nano_cpus=nano_cpus)))["linux"]["resources"]
    assert res["cpu"] == {"period": 100_000, "quota": quota}


def test_cpu_shares() -> None:
    res = build_spec(_input(resources=Resources(cpu_shares=512)))["linux"]["resources"]
    assert res["cpu"] == {"shares": 512}
    res = build_spec(_input(resources=Resources(cpu_shares=512, nano_cpus=1_500_000_000)))["linux"][
        "resources"
    ]
    assert res["cpu"] == {"shares": 512, "period": 100_000, "quota": 150_000}


@pytest.mark.parametrize(
    ("limit", "expected"), [(100, {"limit": 100}), (None, None), (0, None), (-1, None)]
)
def test_pids_limit(limit: int | None, expected: dict[str, int] | None) -> None:
    res = build_spec(_input(resources=Resources(pids_limit=limit)))["linux"]["resources"]
    assert res.get("pids") == expected


def test_hostname_in_env_and_spec() -> None:
    spec = build_spec(_input(hostname="web1"))
    assert spec["hostname"] == "web1"
    assert "HOSTNAME=web1" in spec["process"]["env"]


def test_user_uid_gid() -> None:
    user = build_spec(_input(user=ProcessUser(1000, 100)))["process"]["user"]
    assert user == {"uid": 1000, "gid": 100}


def test_user_additional_gids() -> None:
    user = build_spec(_input(user=ProcessUser(1000, 100, (10, 20))))["process"]["user"]
    assert user == {"uid": 1000, "gid": 100, "additionalGids": [10, 20]}


def test_default_user_is_root() -> None:
    assert build_spec(_input())["process"]["user"] == {"uid": 0, "gid": 0}


def test_capabilities_in_spec() -> None:
    caps = build_spec(_input(cap_add=("NET_ADMIN",), cap_drop=("CHOWN",)))["process"][
        "capabilities"
    ]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for key in ("bounding", "effective", "permitted"):
        assert "CAP_NET_ADMIN" in caps[key]
        assert "CAP_CHOWN" not in caps[key]


def test_privileged_spec_gets_all_caps() -> None:
    caps = build_spec(_input(privileged=True, cap_drop=("CHOWN",)))["process"]["capabilities"]
    assert caps["bounding"] == list(ALL_CAPS)


def test_sysctls_and_annotations() -> None:
    spec = build_spec(
        _input(
            sysctls=(("net.ipv4.ip_forward", "1"), ("kernel.shmmax", "65536")),
            annotations=(("org.opencontainers.image.title", "x"),),
        )
    )
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    assert spec["annotations"] == {"org.opencontainers.image.title": "x"}
    assert "sysctl" not in build_spec(_input())["linux"]


def test_env_in_spec() -> None:
    env = build_spec(_input(env=("A=1",), tty=True))["process"]["env"]
    assert env == [f"PATH={DEFAULT_PATH}", "HOSTNAME=abc123", "TERM=xterm", "A=1"]


# ---- capabilities ----------------------------------------------------------------------


def test_default_caps() -> None:
    assert capabilities(False, [], []) == list(DEFAULT_CAPS)
    assert len(DEFAULT_CAPS) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPS
    assert set(DEFAULT_CAPS) <= set(ALL_CAPS)
    assert len(set(ALL_CAPS)) == len(ALL_CAPS)


@pytest.mark.parametrize(
    "name", ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_net_admin", "Net_Admin"]
)
def test_add_name_forms(name: str) -> None:
    caps = capabilities(False, [name], [])
    assert caps == list(DEFAULT_CAPS) + ["CAP_NET_ADMIN"]


@pytest.mark.parametrize("name", ["CHOWN", "CAP_CHOWN", "chown", "cap_chown"])
def test_drop_name_forms(name: str) -> None:
    caps = capabilities(False, [], [name])
    assert "CAP_CHOWN" not in caps
    assert caps == [c for c in DEFAULT_CAPS if c != "CAP_CHOWN"]


def test_add_already_default_is_not_duplicated() -> None:
    assert capabilities(False, ["CHOWN", "kill"], []) == list(DEFAULT_CAPS)


def test_add_several_and_drop_several() -> None:
    caps = capabilities(False, ["SYS_PTRACE", "NET_ADMIN"], ["MKNOD", "NET_RAW"])
    assert "CAP_SYS_PTRACE" in caps and "CAP_NET_ADMIN" in caps
    assert "CAP_MKNOD" not in caps and "CAP_NET_RAW" not in caps
    assert len(caps) == len(DEFAULT_CAPS) + 2 - 2


@pytest.mark.parametrize("all_name", ["ALL", "all", "CAP_ALL"])
def test_add_all(all_name: str) -> None:
    caps = capabilities(False, [all_name], [])
    assert sorted(caps) == sorted(ALL_CAPS)
    assert "CAP_ALL" not in caps


def test_add_all_minus_drop() -> None:
    caps = capabilities(False, ["ALL"], ["SYS_ADMIN", "chown"])
    assert sorted(caps) == sorted(set(ALL_CAPS) - {"CAP_SYS_ADMIN", "CAP_CHOWN"})


@pytest.mark.parametrize("all_name", ["ALL", "all"])
def test_drop_all(all_name: str) -> None:
    assert capabilities(False, [], [all_name]) == []


def test_drop_all_keeps_added() -> None:
    assert capabilities(False, ["NET_BIND_SERVICE", "net_admin"], ["ALL"]) == [
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_ADMIN",
    ]


def test_drop_all_keeps_added_default_cap() -> None:
    assert capabilities(False, ["chown"], ["ALL"]) == ["CAP_CHOWN"]


def test_privileged_gets_all_regardless() -> None:
    assert capabilities(True, [], []) == list(ALL_CAPS)
    assert capabilities(True, ["NET_ADMIN"], ["ALL"]) == list(ALL_CAPS)


def test_same_cap_added_and_dropped_is_kept_as_dockerd() -> None:
    assert "CAP_NET_ADMIN" in capabilities(False, ["NET_ADMIN"], ["NET_ADMIN"])


def test_add_all_and_drop_all_gives_all_as_dockerd() -> None:
    assert sorted(capabilities(False, ["ALL"], ["ALL"])) == sorted(ALL_CAPS)


# ---- process_env -----------------------------------------------------------------------


def test_env_defaults() -> None:
    assert process_env([], "h1", False) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h1"]


def test_env_term_only_with_tty() -> None:
    assert "TERM=xterm" in process_env([], "h", True)
    assert not any(e.startswith("TERM=") for e in process_env([], "h", False))


def test_env_user_values_win_and_keep_default_position() -> None:
    env = process_env(["PATH=/bin", "HOSTNAME=mine", "TERM=dumb", "A=1"], "h", True)
    assert env == ["PATH=/bin", "HOSTNAME=mine", "TERM=dumb", "A=1"]


def test_env_user_term_without_tty() -> None:
    assert process_env(["TERM=vt100"], "h", False)[-1] == "TERM=vt100"


def test_env_entries_without_equals_ignored() -> None:
    env = process_env(["NOVALUE", "A=1", "B="], "h", False)
    assert "NOVALUE" not in env
    assert not any(e.startswith("NOVALUE") for e in env)
    assert env[-2:] == ["A=1", "B="]


def test_env_value_with_equals() -> None:
    assert process_env(["X=a=b=c"], "h", False)[-1] == "X=a=b=c"


def test_env_later_duplicate_wins() -> None:
    env = process_env(["A=1", "A=2"], "h", False)
    assert env.count("A=2") == 1
    assert "A=1" not in env


# ---- create options in the spec ----------------------------------------------------------



def _ns(spec: dict[str, object]) -> list[dict[str, str]]:
    return spec["linux"]["namespaces"]  # type: ignore[index,no-any-return]


def test_default_namespaces() -> None:
    assert _ns(build_spec(_input())) == [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]


def test_host_and_joined_namespaces() -> None:
    spec = build_spec(_input(namespaces=Namespaces(pid=None, ipc="/proc/7/ns/ipc", uts=None, cgroup="")))
    assert _ns(spec) == [{"type": "ipc", "path": "/proc/7/ns/ipc"}, {"type": "mount"}, {"type": "network"},
                         {"type": "cgroup"}]  # fmt: skip
    assert "hostname" not in spec  # the host's UTS namespace: the runtime must not rename the host


def test_domainname_goes_in_by_sysctl() -> None:
    assert build_spec(_input(domainname="example.org"))["linux"]["sysctl"] == {"kernel.domainname": "example.org"}
    with_host_uts = build_spec(_input(domainname="example.org", namespaces=Namespaces(uts=None)))
    assert "sysctl" not in with_host_uts["linux"]


def test_rlimits_oom_and_no_new_privileges() -> None:
    spec = build_spec(_input(rlimits=(Ulimit("nofile", 512, 1024), Ulimit("core", -1, -1)), oom_score_adj=100,
                             no_new_privileges=True))  # fmt: skip
    process = spec["process"]
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
                                  {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}]  # fmt: skip
    assert process["oomScoreAdj"] == 100 and process["noNewPrivileges"] is True
    assert "rlimits" not in build_spec(_input())["process"] and "oomScoreAdj" not in build_spec(_input())["process"]


def test_devices_and_rules() -> None:
    node = DeviceNode("/dev/mynull", DeviceType.CHAR, 1, 3, 0o666, 0, 0)
    rule = DeviceRule(DeviceType.CHAR, 1, 3, "rw")
    spec = build_spec(_input(devices=(node,), resources=Resources(devices=(rule, DeviceRule(DeviceType.BLOCK, None, None, "m")))))
    assert spec["linux"]["devices"] == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                         "fileMode": 0o666, "uid": 0, "gid": 0}]  # fmt: skip
    assert spec["linux"]["resources"]["devices"] == [
        *DOCKERD_DEVICES, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "b", "access": "m"},
    ]  # fmt: skip
    privileged = build_spec(_input(privileged=True, resources=Resources(allow_all_devices=True)))
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_more_resources() -> None:
    res = build_spec(_input(resources=Resources(
        memory=64 << 20, memory_swap=-1, memory_reservation=32 << 20, memory_swappiness=0, oom_kill_disable=True,
        cpu_period=50_000, cpu_quota=25_000, cpuset_cpus="0-1", cpuset_mems="0", blkio_weight=300,
    )))["linux"]["resources"]  # fmt: skip
    assert res["memory"] == {"limit": 64 << 20, "reservation": 32 << 20, "swap": -1, "swappiness": 0,
                             "disableOOMKiller": True}  # fmt: skip
    assert res["cpu"] == {"period": 50_000, "quota": 25_000, "cpus": "0-1", "mems": "0"}
    assert res["blockIO"] == {"weight": 300}


def test_shm_and_cgroup_mounts() -> None:
    assert "/dev/shm" not in _mounts(build_spec(_input(shm_size=None)))
    assert _mounts(build_spec(_input()))["/sys/fs/cgroup"]["options"][0] == "ro"
    assert "ro" not in _mounts(build_spec(_input(writable_cgroups=True)))["/sys/fs/cgroup"]["options"]
    assert "ro" not in _mounts(build_spec(_input(privileged=True)))["/sys/fs/cgroup"]["options"]


def test_capabilities_stay_within_the_bounding_set() -> None:
    available = tuple(c for c in ALL_CAPS if c not in ("CAP_SYS_RESOURCE", "CAP_KILL"))
    assert capabilities(True, [], [], available) == list(available)
    assert "CAP_KILL" not in capabilities(False, [], [], available)
    assert capabilities(False, ["ALL"], ["CHOWN"], available) == [c for c in available if c != "CAP_CHOWN"]
    spec = build_spec(_input(privileged=True, available_caps=available))
    assert "CAP_SYS_RESOURCE" not in spec["process"]["capabilities"]["bounding"]
