"""engine.update.UpdateService over a real table and event bus, with a recording runtime:
when the runtime is called, what is persisted, what a failure leaves, which event is sent."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.engine.update import UpdateService
from dockyard.errors import Conflict, Internal, InvalidArgument, NotFound
from dockyard.model.admission import HostFacts
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
    RestartPolicy,
)
from dockyard.model.events import EventWindow
from dockyard.model.update import ResourceUpdate
from dockyard.runtime.spec import Resources
from dockyard.store.containers import ContainerRepository
from dockyard.store.db import Database

MB = 1024 * 1024
CID = "c0ffee00" * 8
FACTS = HostFacts(cpus=2, cpuset_cpus=frozenset({0, 1}))


class Runtime:
    """Records each `update`; raises what it is told to, for the first call only."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, Resources]] = []
        self.fail = fail

    async def update(self, runtime: str, container_id: str, resources: Resources) -> None:
        self.calls.append((runtime, container_id, resources))
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail


def _table(tmp_path: Path, status: ContainerStatus, host: HostSpec | None = None) -> ContainerTable:
    db = Database(tmp_path / "d.db")
    db.query("PRAGMA foreign_keys=OFF")  # no image rows in this test
    table = ContainerTable(ContainerRepository(db))
    spec = ContainerSpec("busybox", "h", labels={"k": "v"}, host=host or HostSpec())
    c = Container(CID, "web", "2026-12-01T00:00:00Z", "sha256:i", spec, ContainerState(status=status), "runc", "rw")
    table.reserve_name(c.name, c.id)
    table.add(c)
    return table


def _service(table: ContainerTable, runtime: Runtime, events: EventBus | None = None) -> UpdateService:
    return UpdateService(table, runtime, events or EventBus(), facts=lambda: FACTS)


def _stored(tmp_path: Path) -> HostSpec:
    """The spec as a daemon restart would read it back."""
    return ContainerRepository(Database(tmp_path / "d.db")).all()[0].spec.host


def _update(service: UpdateService, ref: str, u: ResourceUpdate) -> tuple[str, ...]:
    return asyncio.run(service.update(ref, u))


def test_a_running_container_gets_the_whole_set_of_limits_and_keeps_them(tmp_path: Path) -> None:
    table = _table(tmp_path, ContainerStatus.RUNNING, HostSpec(cpu_shares=100))
    runtime = Runtime()
    u = ResourceUpdate(memory=64 * MB, memory_swap=128 * MB, nano_cpus=5 * 10**8, pids_limit=50)
    assert _update(_service(table, runtime), "web", u) == ()
    [(name, cid, res)] = runtime.calls
    assert (name, cid) == ("runc", CID)
    assert (res.memory, res.memory_swap, res.nano_cpus, res.pids_limit, res.cpu_shares) == (
        64 * MB, 128 * MB, 5 * 10**8, 50, 100)  # fmt: skip
    c = table.resolve("web")
    assert (c.spec.host.memory, c.spec.host.pids_limit, c.spec.host.cpu_shares) == (64 * MB, 50, 100)
    assert _stored(tmp_path) == c.spec.host


@pytest.mark.parametrize("status", [ContainerStatus.CREATED, ContainerStatus.EXITED, ContainerStatus.RESTARTING])
def test_a_container_without_a_process_only_gets_the_spec(tmp_path: Path, status: ContainerStatus) -> None:
    table = _table(tmp_path, status)
    runtime = Runtime()
    _update(_service(table, runtime), CID[:8], ResourceUpdate(memory=64 * MB, cpu_shares=512))
    assert runtime.calls == []
    assert (_stored(tmp_path).memory, _stored(tmp_path).memory_swap, _stored(tmp_path).cpu_shares) == (64 * MB, 128 * MB, 512)


def test_a_paused_container_is_updated_live(tmp_path: Path) -> None:
    runtime = Runtime()
    _update(_service(_table(tmp_path, ContainerStatus.PAUSED), runtime), "web", ResourceUpdate(cpu_shares=512))
    assert len(runtime.calls) == 1


def test_a_restart_policy_alone_needs_no_runtime(tmp_path: Path) -> None:
    table = _table(tmp_path, ContainerStatus.RUNNING)
    runtime = Runtime()
    _update(_service(table, runtime), "web", ResourceUpdate(restart_policy=RestartPolicy("on-failure", 3)))
    assert runtime.calls == []
    assert _stored(tmp_path).restart_policy == RestartPolicy("on-failure", 3)


def test_a_runtime_failure_puts_the_old_limits_back_and_keeps_the_old_spec(tmp_path: Path) -> None:
    old = HostSpec(memory=64 * MB, memory_swap=128 * MB)
    table = _table(tmp_path, ContainerStatus.RUNNING, old)
    runtime = Runtime(fail=Internal("runc update failed: unable to set memory limit to 6291456 (current usage: 9)"))
    events = EventBus()
    with pytest.raises(Internal, match=f"^Cannot update container {CID}: runc update failed: unable to set memory"):
        _update(_service(table, runtime, events), "web", ResourceUpdate(memory=6 * MB))
    assert [res.memory for _, _, res in runtime.calls] == [6 * MB, 64 * MB]  # tried, then put back
    assert table.resolve("web").spec.host == old
    assert _stored(tmp_path) == old
    assert _events(events) == []


def test_a_container_that_exited_meanwhile_keeps_the_update_for_its_next_start(tmp_path: Path) -> None:
    table = _table(tmp_path, ContainerStatus.RUNNING)
    runtime = Runtime(fail=Conflict("runc update: container not running"))
    _update(_service(table, runtime), "web", ResourceUpdate(cpu_shares=512))
    assert len(runtime.calls) == 1
    assert _stored(tmp_path).cpu_shares == 512


def test_the_update_event_carries_the_containers_attributes(tmp_path: Path) -> None:
    events = EventBus()
    _update(_service(_table(tmp_path, ContainerStatus.EXITED), Runtime(), events), "web", ResourceUpdate(cpu_shares=2))
    [event] = _events(events)
    assert (event.type, event.action, event.actor_id) == ("container", "update", CID)
    assert dict(event.attributes) == {"image": "busybox", "name": "web", "k": "v"}


@pytest.mark.parametrize("status", [ContainerStatus.REMOVING, ContainerStatus.DEAD])
def test_a_container_being_removed_cannot_be_updated(tmp_path: Path, status: ContainerStatus) -> None:
    table = _table(tmp_path, status)
    with pytest.raises(Conflict, match=f'^Cannot update container {CID}: container is marked for removal and cannot be "update"$'):
        _update(_service(table, Runtime()), "web", ResourceUpdate(cpu_shares=2))


def test_clashes_name_the_container_and_change_nothing(tmp_path: Path) -> None:
    old = HostSpec(nano_cpus=10**9)
    table = _table(tmp_path, ContainerStatus.RUNNING, old)
    runtime = Runtime()
    with pytest.raises(Conflict, match=f"^Cannot update container {CID}: Conflicting options: CPU Period cannot"):
        _update(_service(table, runtime), "web", ResourceUpdate(cpu_period=100_000))
    assert runtime.calls == [] and _stored(tmp_path) == old


def test_a_bad_request_is_400_before_the_container_is_looked_up(tmp_path: Path) -> None:
    service = _service(_table(tmp_path, ContainerStatus.RUNNING), Runtime())
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        _update(service, "ghost", ResourceUpdate(memory=1))
    with pytest.raises(NotFound, match="No such container: ghost"):
        _update(service, "ghost", ResourceUpdate(memory=64 * MB))


def test_the_update_waits_for_the_lifecycle_lock(tmp_path: Path) -> None:
    """A start holding the lock finishes before the update reads the spec (and the state)."""
    table = _table(tmp_path, ContainerStatus.EXITED)
    runtime = Runtime()

    async def scenario() -> None:
        live = table.live(CID)
        await live.lock.acquire()
        task = asyncio.create_task(_service(table, runtime).update("web", ResourceUpdate(cpu_shares=7)))
        await asyncio.sleep(0.01)
        assert not task.done()
        c = table.resolve("web")  # the start publishes its state while it holds the lock
        table.publish(CID, replace(c.state, status=ContainerStatus.RUNNING))
        live.lock.release()
        await task

    asyncio.run(scenario())
    assert len(runtime.calls) == 1  # it saw the container running
    assert table.resolve("web").spec.host.cpu_shares == 7


def _events(bus: EventBus) -> list:  # type: ignore[type-arg]
    async def collect() -> list:  # type: ignore[type-arg]
        return [e async for e in bus.follow(EventWindow(since_ns=0, until_ns=2**62, only_past=True))]

    return asyncio.run(collect())
