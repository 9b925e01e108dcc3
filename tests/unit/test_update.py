"""docker update, the pure part: the request's checks (model.update.check_update), the merge
into the current HostSpec (apply_update), the body parser (api.schemas.update) and the
runtime's flags (runtime.oci.update_args)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dockyard.api.schemas.update import parse_update, update_response_doc
from dockyard.engine.bundles import cgroup_resources
from dockyard.errors import Conflict, InvalidArgument
from dockyard.model.admission import HostFacts
from dockyard.model.containers import HostSpec, RestartPolicy
from dockyard.model.update import ResourceUpdate, apply_update, check_restart_policy, check_update
from dockyard.runtime.oci import update_args
from dockyard.runtime.spec import Resources

MB = 1024 * 1024
FACTS = HostFacts(cpus=2, cpuset_cpus=frozenset({0, 1}), cpuset_mems=frozenset({0}), swap_limit=True)


# ---- the request alone --------------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (ResourceUpdate(memory=1), "Minimum memory limit allowed is 6MB"),
        (ResourceUpdate(memory=-5), "Minimum memory limit allowed is 6MB"),
        (ResourceUpdate(memory=6 * MB - 1), "Minimum memory limit allowed is 6MB"),
        (ResourceUpdate(memory_swap=-2), "invalid MemorySwap -2: use -1 for unlimited swap"),
        (ResourceUpdate(memory=64 * MB, memory_swap=32 * MB), "Minimum memoryswap limit should be larger than memory limit"),
        (ResourceUpdate(memory_reservation=MB), "Minimum memory reservation allowed is 6MB"),
        (ResourceUpdate(memory_reservation=-1), "Minimum memory reservation allowed is 6MB"),
        (ResourceUpdate(memory=16 * MB, memory_reservation=32 * MB), "Minimum memory limit can not be less than memory reservation"),
        (ResourceUpdate(nano_cpus=10**9, cpu_period=100_000), "Nano CPUs and CPU Period cannot both be set"),
        (ResourceUpdate(nano_cpus=10**9, cpu_quota=50_000), "Nano CPUs and CPU Quota cannot both be set"),
        (ResourceUpdate(nano_cpus=3 * 10**9), "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
        (ResourceUpdate(nano_cpus=-1), "range of CPUs is from 0.01 to 2.00"),
        (ResourceUpdate(cpu_shares=-1), r"invalid CPU shares \(-1\): value must be a positive integer"),
        (ResourceUpdate(cpu_period=999), "CPU cfs period can not be less than 1ms"),
        (ResourceUpdate(cpu_period=1_000_001), "CPU cfs period can not be less than 1ms"),
        (ResourceUpdate(cpu_quota=999), r"CPU cfs quota can not be less than 1ms \(i.e. 1000\)"),
        (ResourceUpdate(cpuset_cpus="0-x"), "Invalid value 0-x for cpuset cpus"),
        (ResourceUpdate(cpuset_cpus="3"), "Requested CPUs are not available - requested 3, available: 0-1"),
        (ResourceUpdate(cpuset_mems="1"), "Requested memory nodes are not available - requested 1, available: 0"),
        (ResourceUpdate(blkio_weight=5), "Range of blkio weight is from 10 to 1000"),
        (ResourceUpdate(blkio_weight=1001), "Range of blkio weight is from 10 to 1000"),
        (ResourceUpdate(restart_policy=RestartPolicy("sometimes")), "unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
        (ResourceUpdate(restart_policy=RestartPolicy("always", 3)), "maximum retry count can only be used with 'on-failure'$"),
        (ResourceUpdate(restart_policy=RestartPolicy("no", -1)), "can only be used with 'on-failure' and cannot be negative"),
        (ResourceUpdate(restart_policy=RestartPolicy("on-failure", -1)), "maximum retry count cannot be negative"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_with_dockerds_words(update: ResourceUpdate, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_update(update, FACTS)


@pytest.mark.parametrize(
    "update",
    [
        ResourceUpdate(),
        ResourceUpdate(memory=6 * MB),
        ResourceUpdate(memory=64 * MB, memory_swap=-1),
        ResourceUpdate(memory=64 * MB, memory_swap=64 * MB),
        ResourceUpdate(memory_swap=128 * MB),  # swap alone: judged after the merge
        ResourceUpdate(nano_cpus=2 * 10**9),
        ResourceUpdate(cpu_period=1000, cpu_quota=1000),
        ResourceUpdate(cpu_quota=-1),
        ResourceUpdate(cpuset_cpus="0-1", cpuset_mems="0"),
        ResourceUpdate(pids_limit=0),
        ResourceUpdate(restart_policy=RestartPolicy("on-failure", 3)),
        ResourceUpdate(restart_policy=RestartPolicy("unless-stopped")),
    ],
)
def test_good_requests_pass(update: ResourceUpdate) -> None:
    check_update(update, FACTS)


def test_what_the_host_cannot_enforce_is_refused() -> None:
    no_swap = replace(FACTS, swap_limit=False)
    with pytest.raises(InvalidArgument, match="no swap accounting"):
        check_update(ResourceUpdate(memory=64 * MB, memory_swap=96 * MB), no_swap)
    check_update(ResourceUpdate(memory=64 * MB), no_swap)  # memory alone needs no swap accounting
    with pytest.raises(InvalidArgument, match="BlkioWeight cannot be set"):
        check_update(ResourceUpdate(blkio_weight=500), replace(FACTS, blkio_weight=False))
    check_update(ResourceUpdate(blkio_weight=500), replace(FACTS, blkio_weight=True))


def test_restart_policy_checks_alone() -> None:
    check_restart_policy(RestartPolicy("", 7))  # an empty name takes any count (dockerd < 25)
    for name in ("no", "always", "unless-stopped", "on-failure"):
        check_restart_policy(RestartPolicy(name))


def test_touches_resources() -> None:
    assert not ResourceUpdate().touches_resources
    assert not ResourceUpdate(restart_policy=RestartPolicy("always")).touches_resources
    assert ResourceUpdate(pids_limit=0).touches_resources
    for field in ("memory", "memory_swap", "memory_reservation", "nano_cpus", "cpu_shares", "cpu_period",
                  "cpu_quota", "blkio_weight"):  # fmt: skip
        assert ResourceUpdate(**{field: 1}).touches_resources  # type: ignore[arg-type]
    assert ResourceUpdate(cpuset_cpus="0").touches_resources
    assert ResourceUpdate(cpuset_mems="0").touches_resources


# ---- the merge ----------------------------------------------------------------------

LIMITED = HostSpec(memory=64 * MB, memory_swap=128 * MB, cpu_shares=512, nano_cpus=5 * 10**8, pids_limit=50,
                   cpuset_cpus="0", memory_reservation=32 * MB, restart_policy=RestartPolicy("always"))  # fmt: skip


def test_an_empty_update_changes_nothing() -> None:
    assert apply_update(LIMITED, ResourceUpdate()) == LIMITED
    assert apply_update(HostSpec(), ResourceUpdate()) == HostSpec()


def test_set_fields_replace_and_the_rest_stays() -> None:
    new = apply_update(LIMITED, ResourceUpdate(cpu_shares=1024, cpuset_mems="0", blkio_weight=300))
    assert new == replace(LIMITED, cpu_shares=1024, cpuset_mems="0", blkio_weight=300)


def test_every_limit_on_a_container_without_any() -> None:
    u = ResourceUpdate(memory=64 * MB, memory_swap=128 * MB, cpu_shares=512, nano_cpus=5 * 10**8,
                       cpuset_cpus="0", pids_limit=50, restart_policy=RestartPolicy("on-failure", 3))  # fmt: skip
    new = apply_update(HostSpec(), u)
    assert (new.memory, new.memory_swap, new.cpu_shares, new.nano_cpus, new.cpuset_cpus, new.pids_limit) == (
        64 * MB, 128 * MB, 512, 5 * 10**8, "0", 50)  # fmt: skip
    assert new.restart_policy == RestartPolicy("on-failure", 3)


def test_pids_limit_zero_lifts_the_limit_and_none_keeps_it() -> None:
    assert apply_update(LIMITED, ResourceUpdate(pids_limit=0)).pids_limit is None
    assert apply_update(LIMITED, ResourceUpdate(pids_limit=None)).pids_limit == 50
    assert apply_update(LIMITED, ResourceUpdate(pids_limit=7)).pids_limit == 7


def test_restart_policy() -> None:
    assert apply_update(LIMITED, ResourceUpdate(restart_policy=None)).restart_policy == RestartPolicy("always")
    assert apply_update(LIMITED, ResourceUpdate(restart_policy=RestartPolicy("no"))).restart_policy == RestartPolicy("no")
    rm = HostSpec(auto_remove=True)
    with pytest.raises(Conflict, match="^Restart policy cannot be updated because AutoRemove is enabled for the container$"):
        apply_update(rm, ResourceUpdate(restart_policy=RestartPolicy("always")))
    assert apply_update(rm, ResourceUpdate(restart_policy=RestartPolicy("no"))).restart_policy == RestartPolicy("no")
    assert apply_update(rm, ResourceUpdate(cpu_shares=2)).cpu_shares == 2  # resources of a --rm container may change


@pytest.mark.parametrize(
    ("current", "update", "message"),
    [
        (HostSpec(cpu_period=100_000), ResourceUpdate(nano_cpus=10**9), "Nano CPUs cannot be updated as CPU Period has already been set"),
        (HostSpec(cpu_quota=50_000), ResourceUpdate(nano_cpus=10**9), "Nano CPUs cannot be updated as CPU Quota has already been set"),
        (HostSpec(nano_cpus=10**9), ResourceUpdate(cpu_period=100_000), "CPU Period cannot be updated as NanoCPUs has already been set"),
        (HostSpec(nano_cpus=10**9), ResourceUpdate(cpu_quota=50_000), "CPU Quota cannot be updated as NanoCPUs has already been set"),
        (HostSpec(memory=64 * MB, memory_swap=128 * MB), ResourceUpdate(memory=256 * MB),
         "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"),
    ],
)  # fmt: skip
def test_clashes_with_the_current_spec_are_409(current: HostSpec, update: ResourceUpdate, message: str) -> None:
    with pytest.raises(Conflict, match=message):
        apply_update(current, update)


def test_cpu_ways_that_do_not_clash() -> None:
    assert apply_update(HostSpec(nano_cpus=10**9), ResourceUpdate(nano_cpus=5 * 10**8)).nano_cpus == 5 * 10**8
    new = apply_update(HostSpec(cpu_period=100_000, cpu_quota=50_000), ResourceUpdate(cpu_quota=20_000))
    assert (new.cpu_period, new.cpu_quota) == (100_000, 20_000)


def test_memory_and_swap() -> None:
    # Below the current swap: the swap stays.
    new = apply_update(LIMITED, ResourceUpdate(memory=100 * MB))
    assert (new.memory, new.memory_swap) == (100 * MB, 128 * MB)
    # Equal to it: no swap left, still fine.
    assert apply_update(LIMITED, ResourceUpdate(memory=128 * MB)).memory_swap == 128 * MB
    # Both at once, above the old swap.
    new = apply_update(LIMITED, ResourceUpdate(memory=256 * MB, memory_swap=512 * MB))
    assert (new.memory, new.memory_swap) == (256 * MB, 512 * MB)
    # Swap alone.
    assert apply_update(LIMITED, ResourceUpdate(memory_swap=-1)).memory_swap == -1
    assert apply_update(LIMITED, ResourceUpdate(memory_swap=256 * MB)).memory_swap == 256 * MB
    # No limit before: as `docker run --memory` alone, swap twice the memory.
    new = apply_update(HostSpec(), ResourceUpdate(memory=64 * MB))
    assert (new.memory, new.memory_swap) == (64 * MB, 128 * MB)
    # Unlimited swap stays unlimited (dockerd refuses this one: moby#39541).
    new = apply_update(HostSpec(memory=64 * MB, memory_swap=-1), ResourceUpdate(memory=1024 * MB))
    assert (new.memory, new.memory_swap) == (1024 * MB, -1)


@pytest.mark.parametrize(
    ("current", "update", "message"),
    [
        (LIMITED, ResourceUpdate(memory_swap=32 * MB), "Minimum memoryswap limit should be larger than memory limit"),
        (HostSpec(), ResourceUpdate(memory_swap=128 * MB), "You should always set the Memory limit when using Memoryswap limit"),
        (LIMITED, ResourceUpdate(memory_reservation=100 * MB), "Minimum memory limit can not be less than memory reservation limit"),
        (HostSpec(memory_reservation=64 * MB), ResourceUpdate(memory=32 * MB, memory_swap=64 * MB),
         "Minimum memory limit can not be less than memory reservation limit"),
    ],
)  # fmt: skip
def test_merged_limits_that_do_not_fit_are_400(current: HostSpec, update: ResourceUpdate, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_update(current, update)


def test_only_limits_and_policy_change() -> None:
    current = replace(LIMITED, privileged=True, cap_add=("NET_ADMIN",), shm_size=MB, oom_kill_disable=True,
                      memory_swappiness=10, cgroup_parent="/x", runtime="crun")  # fmt: skip
    new = apply_update(current, ResourceUpdate(memory=100 * MB, cpu_shares=3))
    assert replace(new, memory=current.memory, cpu_shares=current.cpu_shares) == current


# ---- the body -----------------------------------------------------------------------

# What docker CLI 28 sends for `docker update --memory 64m --memory-swap 128m --cpu-shares 512`.
CLI_BODY: dict[str, Any] = {
    "CpuShares": 512, "Memory": 67108864, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": None, "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": None,
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 134217728,
    "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": None, "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
}  # fmt: skip


def test_the_clis_body() -> None:
    assert parse_update(CLI_BODY) == ResourceUpdate(memory=64 * MB, memory_swap=128 * MB, cpu_shares=512)


def test_every_field() -> None:
    body = {"Memory": 1, "MemorySwap": 2, "MemoryReservation": 3, "NanoCpus": 4, "CpuShares": 5, "CpuPeriod": 6,
            "CpuQuota": 7, "CpusetCpus": "0", "CpusetMems": "0", "BlkioWeight": 8, "PidsLimit": 9,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}  # fmt: skip
    assert parse_update(body) == ResourceUpdate(1, 2, 3, 4, 5, 6, 7, "0", "0", 8, 9, RestartPolicy("on-failure", 3))


def test_empty_bodies_change_nothing() -> None:
    assert parse_update(None) == ResourceUpdate()
    assert parse_update({}) == ResourceUpdate()
    assert parse_update({"RestartPolicy": {"Name": ""}}) == ResourceUpdate()
    assert parse_update({"RestartPolicy": None}) == ResourceUpdate()


@pytest.mark.parametrize(("given", "expected"), [(None, None), (0, 0), (-1, 0), (-7, 0), (50, 50)])
def test_pids_limit_zero_and_negative_mean_unlimited(given: int | None, expected: int | None) -> None:
    assert parse_update({"PidsLimit": given}).pids_limit == expected


def test_pids_limit_is_ignored_before_api_1_40() -> None:
    assert parse_update({"PidsLimit": 50}, with_pids_limit=False).pids_limit is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the update body must be an object"),
        ({"Memory": "64m"}, "invalid Memory: expected an integer"),
        ({"Memory": 2**63}, "invalid Memory"),
        ({"CpuShares": 1.5}, "invalid CpuShares"),
        ({"BlkioWeight": 70000}, "invalid BlkioWeight"),
        ({"CpusetCpus": 0}, "invalid CpusetCpus: expected a string"),
        ({"RestartPolicy": "always"}, "invalid RestartPolicy: expected an object"),
        ({"RestartPolicy": {"Name": 1}}, "invalid RestartPolicy.Name"),
        ({"CgroupParent": "/x"}, "^CgroupParent cannot be changed by docker update"),
        ({"Devices": [{"PathOnHost": "/dev/null"}]}, "^Devices cannot be changed by docker update"),
        ({"DeviceCgroupRules": ["c 1:3 rwm"]}, "^DeviceCgroupRules cannot be changed"),
        ({"DeviceRequests": [{"Count": 1}]}, "^DeviceRequests cannot be changed"),
        ({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}]}, "^Ulimits cannot be changed"),
        ({"OomKillDisable": True}, "^OomKillDisable cannot be changed"),
        ({"MemorySwappiness": 10}, "^MemorySwappiness cannot be changed"),
        ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
        ({"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}]}, "^BlkioDeviceReadBps is not supported"),
        ({"KernelMemory": 64 * MB}, "^KernelMemory is not supported by this daemon"),
        ({"KernelMemoryTCP": 64 * MB}, "^KernelMemoryTCP is not supported"),
        ({"CpuRealtimeRuntime": 1000}, "^CpuRealtimeRuntime is not supported"),
        ({"CpuCount": 1}, "^CpuCount is only supported on Windows"),
        ({"IOMaximumIOps": 1}, "^Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_update(body)


def test_unchangeable_fields_in_their_empty_forms_pass() -> None:
    body = {"CgroupParent": "", "Devices": [], "Ulimits": [], "OomKillDisable": False, "MemorySwappiness": -1,
            "BlkioWeightDevice": [], "KernelMemory": 0}  # fmt: skip
    assert parse_update(body) == ResourceUpdate()


def test_response() -> None:
    assert update_response_doc(()) == {"Warnings": None}
    assert update_response_doc(("w",)) == {"Warnings": ["w"]}


# ---- the runtime's flags ------------------------------------------------------------


def test_no_limits_only_lift_pids() -> None:
    assert update_args(Resources()) == ("--pids-limit", "-1")


def test_every_limit_becomes_a_flag() -> None:
    res = Resources(memory=64 * MB, memory_swap=128 * MB, memory_reservation=32 * MB, cpu_shares=512,
                    nano_cpus=5 * 10**8, cpuset_cpus="0", cpuset_mems="0", blkio_weight=300, pids_limit=50)  # fmt: skip
    assert update_args(res) == (
        "--memory", "67108864", "--memory-swap", "134217728", "--memory-reservation", "33554432",
        "--cpu-share", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0",
        "--cpuset-mems", "0", "--blkio-weight", "300", "--pids-limit", "50",
    )  # fmt: skip


def test_cpu_period_and_quota_as_given() -> None:
    args = update_args(Resources(cpu_period=20_000, cpu_quota=-1))
    assert args[:4] == ("--cpu-period", "20000", "--cpu-quota", "-1")
    assert update_args(Resources(nano_cpus=2 * 10**9))[:4] == ("--cpu-period", "100000", "--cpu-quota", "200000")


def test_swap_goes_only_with_memory() -> None:
    assert "--memory-swap" not in update_args(Resources(memory_swap=-1))
    assert update_args(Resources(memory=64 * MB, memory_swap=-1))[:4] == ("--memory", "67108864", "--memory-swap", "-1")


def test_cgroup_resources_follow_the_host_spec() -> None:
    h = HostSpec(memory=64 * MB, memory_swap=128 * MB, nano_cpus=10**9, cpu_shares=2, pids_limit=9, cpuset_cpus="1")
    res = cgroup_resources(h, FACTS)
    assert (res.memory, res.memory_swap, res.nano_cpus, res.cpu_shares, res.pids_limit, res.cpuset_cpus) == (
        64 * MB, 128 * MB, 10**9, 2, 9, "1")  # fmt: skip
    assert cgroup_resources(h, replace(FACTS, swap_limit=False)).memory_swap == 0  # no swap accounting here
