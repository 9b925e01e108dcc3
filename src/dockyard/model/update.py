"""`docker update`: what a request may change in a container's HostSpec, by dockerd's rules.

Pure. `check_update` judges the request alone, against the host's facts (dockerd's
verifyContainerSettings with update=true: a 400); `apply_update` merges it into the current
HostSpec (dockerd's Container.UpdateContainer: a zero, empty or absent field keeps the current
value; a clash with what is set already is a 409) and checks the merged limits (400), which
dockerd leaves to the runtime to refuse with a 500.

One deliberate difference: dockerd refuses `--memory` alone when the container has no swap
limit yet (MemorySwap 0 or -1: "Memory limit should be smaller than already set memoryswap
limit", moby#39541, the open fix moby#47874). Here MemorySwap -1 stays unlimited, and 0
becomes twice the new memory, which is what `docker run --memory` alone gives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dockyard.errors import Conflict, InvalidArgument
from dockyard.model.admission import HostFacts, check_resources
from dockyard.model.containers import HostSpec, RestartPolicy

MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


@dataclass(frozen=True)
class ResourceUpdate:
    """The body of POST /containers/{id}/update. Zero, "" and None leave a value as it is."""

    memory: int = 0
    memory_swap: int = 0  # memory + swap; -1: unlimited swap
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    blkio_weight: int = 0
    pids_limit: int | None = None  # 0: no limit (the API's 0 and negative values)
    restart_policy: RestartPolicy | None = None  # None: RestartPolicy.Name was empty

    @property
    def touches_resources(self) -> bool:
        """Does it change a cgroup limit (so a running container needs the runtime)?"""
        return self.pids_limit is not None or any(
            (self.memory, self.memory_swap, self.memory_reservation, self.nano_cpus, self.cpu_shares,
             self.cpu_period, self.cpu_quota, self.cpuset_cpus, self.cpuset_mems, self.blkio_weight)
        )  # fmt: skip


def check_restart_policy(policy: RestartPolicy) -> None:
    """dockerd's ValidateRestartPolicy, with its words."""
    if policy.name in ("always", "unless-stopped", "no"):
        if policy.maximum_retry_count != 0:
            message = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            if policy.maximum_retry_count < 0:
                message += " and cannot be negative"
            raise InvalidArgument(message)
    elif policy.name == "on-failure":
        if policy.maximum_retry_count < 0:
            raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    elif policy.name != "":
        raise InvalidArgument(
            f"invalid restart policy: unknown policy '{policy.name}'; use one of 'no', 'always', 'on-failure', "
            "or 'unless-stopped'"
        )


def _check_memory(u: ResourceUpdate) -> None:
    if u.memory != 0 and u.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if u.memory_swap < -1:
        raise InvalidArgument(f"invalid MemorySwap {u.memory_swap}: use -1 for unlimited swap")
    if u.memory > 0 and u.memory_swap > 0 and u.memory_swap < u.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if u.memory_reservation < 0 or 0 < u.memory_reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if u.memory > 0 and u.memory_reservation > 0 and u.memory < u.memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")


def _check_cpu(u: ResourceUpdate) -> None:
    if u.nano_cpus > 0 and u.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if u.nano_cpus > 0 and u.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if u.cpu_shares < 0:
        raise InvalidArgument(f"invalid CPU shares ({u.cpu_shares}): value must be a positive integer")
    if u.cpu_period != 0 and not 1000 <= u.cpu_period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if 0 < u.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if u.blkio_weight and not 10 <= u.blkio_weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")


def check_update(u: ResourceUpdate, facts: HostFacts) -> None:
    """The request on its own, in dockerd's order: restart policy, memory, CPU, then what
    this host can enforce. Raises InvalidArgument (400) before the container is looked up."""
    if u.restart_policy is not None:
        check_restart_policy(u.restart_policy)
    _check_memory(u)
    _check_cpu(u)
    # Only what the request sets is judged against the host: an unchanged limit passed at create.
    check_resources(
        HostSpec(
            memory=u.memory,
            memory_swap=u.memory_swap,
            nano_cpus=u.nano_cpus,
            cpuset_cpus=u.cpuset_cpus,
            cpuset_mems=u.cpuset_mems,
            blkio_weight=u.blkio_weight,
        ),
        facts,
    )


def _check_cpu_conflicts(current: HostSpec, u: ResourceUpdate) -> None:
    """NanoCpus sets period and quota itself: once one way is chosen, the other cannot follow."""
    if u.nano_cpus > 0 and current.cpu_period > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if u.nano_cpus > 0 and current.cpu_quota > 0:
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if u.cpu_period > 0 and current.nano_cpus > 0:
        raise Conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if u.cpu_quota > 0 and current.nano_cpus > 0:
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")


def _memory_swap(current: HostSpec, u: ResourceUpdate) -> int:
    if u.memory_swap != 0:
        return u.memory_swap
    if u.memory == 0:
        return current.memory_swap
    if current.memory_swap == 0:
        return u.memory * 2  # no swap limit yet: as `docker run --memory` alone
    if current.memory_swap > 0 and u.memory > current.memory_swap:
        raise Conflict(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        )
    return current.memory_swap


def _check_merged(h: HostSpec) -> None:
    """Limits that are each fine but do not fit together once merged (the kernel refuses them)."""
    if h.memory > 0 and h.memory_swap > 0 and h.memory_swap < h.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if h.memory == 0 and h.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if h.memory > 0 and h.memory_reservation > 0 and h.memory < h.memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")


def apply_update(current: HostSpec, u: ResourceUpdate) -> HostSpec:
    """The HostSpec after the update. Conflict (409) for what clashes with the current one,
    InvalidArgument (400) for merged limits that do not fit together."""
    _check_cpu_conflicts(current, u)
    memory_swap = _memory_swap(current, u)
    policy = current.restart_policy
    if u.restart_policy is not None and u.restart_policy.name != "":
        if current.auto_remove and u.restart_policy.name != "no":
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        policy = u.restart_policy
    pids_limit = current.pids_limit
    if u.pids_limit is not None:
        pids_limit = u.pids_limit if u.pids_limit > 0 else None
    merged = replace(
        current,
        memory=u.memory or current.memory,
        memory_swap=memory_swap,
        memory_reservation=u.memory_reservation or current.memory_reservation,
        nano_cpus=u.nano_cpus or current.nano_cpus,
        cpu_shares=u.cpu_shares or current.cpu_shares,
        cpu_period=u.cpu_period or current.cpu_period,
        cpu_quota=u.cpu_quota or current.cpu_quota,
        cpuset_cpus=u.cpuset_cpus or current.cpuset_cpus,
        cpuset_mems=u.cpuset_mems or current.cpuset_mems,
        blkio_weight=u.blkio_weight or current.blkio_weight,
        pids_limit=pids_limit,
        restart_policy=policy,
    )
    _check_merged(merged)
    return merged
