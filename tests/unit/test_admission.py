"""Admission: what this host cannot give a container is refused at create (model.admission)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.admission import (
    HostFacts,
    PathKind,
    admit,
    check_platform,
    format_cpuset,
    parse_cpuset,
)
from dockyard.model.containers import ContainerSpec, HostSpec
from dockyard.model.hostconfig import ALL_CAPS, DeviceMapping, Ulimit
from dockyard.model.mounts import mount_from_api

FACTS = HostFacts(
    cpus=2,
    cpuset_cpus=frozenset({0, 1}),
    cpuset_mems=frozenset({0}),
    rlimit_hard={"nofile": 20000, "nproc": 96365, "core": -1},
    caps=frozenset(ALL_CAPS) - {"CAP_SYS_RESOURCE"},
    init_path="/usr/bin/tini-static",
)
PATHS = {"/data": PathKind.DIRECTORY, "/dev/null": PathKind.CHAR_DEVICE, "/etc/passwd": PathKind.FILE}


def probe(path: str) -> PathKind:
    return PATHS.get(path, PathKind.MISSING)


def spec(**host: object) -> ContainerSpec:
    return ContainerSpec(image="busybox", hostname="h", host=HostSpec(**host))  # type: ignore[arg-type]


def refused(s: ContainerSpec, facts: HostFacts = FACTS) -> str:
    with pytest.raises(InvalidArgument) as info:
        admit(s, facts, probe)
    return info.value.message


def test_a_plain_spec_is_admitted() -> None:
    admit(spec(), FACTS, probe)
    admit(spec(nano_cpus=2_000_000_000, cpuset_cpus="0-1", cpuset_mems="0"), FACTS, probe)


@pytest.mark.parametrize(("text", "cpus"), [("0", {0}), ("0-2,4", {0, 1, 2, 4}), ("1,1", {1}), ("", set())])
def test_parse_cpuset(text: str, cpus: set[int]) -> None:
    assert parse_cpuset(text) == cpus


@pytest.mark.parametrize("text", ["a", "1-", "-1", "2-1", "1,,2", "0-1-2"])
def test_parse_cpuset_malformed(text: str) -> None:
    assert parse_cpuset(text) is None


def test_format_cpuset() -> None:
    assert format_cpuset(frozenset({0, 1, 2, 4, 6, 7})) == "0-2,4,6-7"
    assert format_cpuset(frozenset({3})) == "3"


def test_nano_cpus_range() -> None:
    assert refused(spec(nano_cpus=3_000_000_000)) == (
        "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    )


def test_cpuset_checks() -> None:
    assert refused(spec(cpuset_cpus="5")) == "Requested CPUs are not available - requested 5, available: 0-1"
    assert refused(spec(cpuset_mems="1")) == "Requested memory nodes are not available - requested 1, available: 0"
    assert refused(spec(cpuset_cpus="x")) == "Invalid value x for cpuset cpus"


def test_ulimits_above_the_inherited_hard_limit() -> None:
    admit(spec(ulimits=(Ulimit("nofile", 512, 20000),)), FACTS, probe)
    admit(spec(ulimits=(Ulimit("core", -1, -1),)), FACTS, probe)  # unlimited under unlimited
    message = refused(spec(ulimits=(Ulimit("nofile", 512, 20001),)))
    assert message.startswith("ulimit nofile: hard limit 20001 is above the daemon's inherited hard limit 20000")
    assert "CAP_SYS_RESOURCE" in message
    assert "soft limit unlimited" in refused(spec(ulimits=(Ulimit("nofile", -1, -1),)))
    # With CAP_SYS_RESOURCE the runtime may raise them.
    admit(spec(ulimits=(Ulimit("nofile", -1, -1),)), replace(FACTS, caps=frozenset(ALL_CAPS)), probe)


def test_oom_score_adj_below_the_daemons() -> None:
    facts = replace(FACTS, oom_score_adj=-100)
    admit(spec(oom_score_adj=-100), facts, probe)
    admit(spec(oom_score_adj=500), facts, probe)
    assert "lowering it needs CAP_SYS_RESOURCE" in refused(spec(oom_score_adj=-500), facts)


def test_cgroup_features() -> None:
    assert "no swap accounting" in refused(spec(memory=64 << 20, memory_swap=100 << 20), replace(FACTS, swap_limit=False))
    admit(spec(memory=64 << 20, memory_swap=128 << 20), replace(FACTS, swap_limit=False), probe)  # the implied default
    assert "MemorySwappiness" in refused(spec(memory_swappiness=10), replace(FACTS, memory_swappiness=False))
    assert "BlkioWeight cannot be set" in refused(spec(blkio_weight=500))
    admit(spec(blkio_weight=500), replace(FACTS, blkio_weight=True), probe)


def test_capabilities_outside_the_bounding_set() -> None:
    admit(spec(cap_add=("NET_ADMIN", "ALL")), FACTS, probe)
    assert refused(spec(cap_add=("sys_resource",))) == (
        'invalid CapAdd: capability not supported by your kernel or not available in the current environment: '
        '"CAP_SYS_RESOURCE"'
    )


def test_bind_source_must_exist() -> None:
    admit(spec(mounts=(mount_from_api("bind", "/data", "/in"),)), FACTS, probe)
    assert refused(spec(mounts=(mount_from_api("bind", "/x", "/in"),))) == (
        'invalid mount config for type "bind": bind source path does not exist: /x'
    )
    admit(spec(mounts=(mount_from_api("bind", "/x", "/in", create_mountpoint=True),)), FACTS, probe)


def test_devices_must_be_device_nodes() -> None:
    admit(spec(devices=(DeviceMapping("/dev/null", "/dev/mynull"),)), FACTS, probe)
    assert 'adding custom device "/dev/nope": no such file' in refused(spec(devices=(DeviceMapping("/dev/nope", "/x"),)))
    assert "is not a device node" in refused(spec(devices=(DeviceMapping("/etc/passwd", "/x"),)))


def test_init_needs_a_binary() -> None:
    admit(spec(init=True), FACTS, probe)
    assert "no static init" in refused(spec(init=True), replace(FACTS, init_path=""))
    admit(spec(init=True, pid_mode="host"), replace(FACTS, init_path=""), probe)  # not used with the host's pids


def test_platform() -> None:
    for ok in ("", "linux", "linux/amd64", "LINUX/AMD64", "linux/x86_64"):
        check_platform(ok, FACTS)
    for bad, words in (("windows", "cannot run on this linux/amd64 host"), ("linux/arm64", "cannot run"),
                       ("linux//", "invalid platform specifier"), ("a/b/c/d", "invalid platform specifier")):  # fmt: skip
        with pytest.raises(InvalidArgument, match=words):
            check_platform(bad, FACTS)
