"""engine.reconcile.plan: what start-up does with each container, from what it saw."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dockyard.engine.reconcile import Action, Seen, Step, plan
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
    RestartPolicy,
)


def _container(status: ContainerStatus, *, policy: str = "no", auto_remove: bool = False,
               exit_code: int = 0, manually_stopped: bool = False, cid: str = "c1") -> Container:  # fmt: skip
    host = HostSpec(restart_policy=RestartPolicy(policy), auto_remove=auto_remove)
    return Container(
        id=cid,
        name=cid,
        created="2026-12-01T00:00:00Z",
        image_id="sha256:i",
        spec=ContainerSpec(image="busybox", hostname="h", host=host),
        state=ContainerState(status=status, exit_code=exit_code, manually_stopped=manually_stopped),
        runtime="runc",
        rw_layer="rw",
    )


def _steps(*seen: Seen) -> list[Step]:
    return [a.step for a in plan(seen)]


@pytest.mark.parametrize("status", [ContainerStatus.RUNNING, ContainerStatus.PAUSED])
def test_a_running_container_is_adopted_when_its_monitor_lives(status: ContainerStatus) -> None:
    assert _steps(Seen(_container(status), monitor_alive=True)) == [Step.ADOPT]


@pytest.mark.parametrize("policy", ["no", "always", "on-failure"])
def test_a_running_container_whose_monitor_died_is_settled_on_the_exit_path(policy: str) -> None:
    # Its restart policy and --rm are applied by the exit path, not here: no START too.
    c = _container(ContainerStatus.RUNNING, policy=policy)
    assert _steps(Seen(c, monitor_alive=False)) == [Step.SETTLE]


def test_a_removal_cut_short_is_finished() -> None:
    assert _steps(Seen(_container(ContainerStatus.REMOVING), False)) == [Step.MARK_DEAD, Step.REMOVE]


def test_restarting_becomes_exited_then_starts_by_policy() -> None:
    c = _container(ContainerStatus.RESTARTING, policy="always", exit_code=1)
    assert _steps(Seen(c, False)) == [Step.SET_EXITED, Step.START]


@pytest.mark.parametrize(
    ("policy", "exit_code", "manually_stopped", "starts"),
    [
        ("no", 1, False, False),
        ("always", 0, False, True),
        ("always", 0, True, True),  # `always` even after docker stop: dockerd's rule
        ("unless-stopped", 0, False, True),
        ("unless-stopped", 0, True, False),
        ("on-failure", 1, False, True),
        ("on-failure", 0, False, False),
        ("on-failure", 1, True, False),
    ],
)
def test_exited_containers_start_as_their_policy_says(
    policy: str, exit_code: int, manually_stopped: bool, starts: bool
) -> None:
    c = _container(ContainerStatus.EXITED, policy=policy, exit_code=exit_code, manually_stopped=manually_stopped)
    assert _steps(Seen(c, False)) == ([Step.START] if starts else [])


@pytest.mark.parametrize("status", [ContainerStatus.CREATED, ContainerStatus.DEAD])
def test_created_and_dead_containers_are_left_alone(status: ContainerStatus) -> None:
    assert _steps(Seen(_container(status, policy="always"), False)) == []


@pytest.mark.parametrize("status", [ContainerStatus.CREATED, ContainerStatus.DEAD])
def test_a_rm_container_that_never_ran_or_died_is_removed(status: ContainerStatus) -> None:
    # dockerd's restore: an AutoRemove container that is not running is removed
    # (a `docker run --rm` whose daemon was killed between create and start).
    assert _steps(Seen(_container(status, auto_remove=True), False)) == [Step.REMOVE]


def test_an_exited_rm_container_is_removed() -> None:
    c = _container(ContainerStatus.EXITED, auto_remove=True)
    assert plan([Seen(c, False)]) == [Action(Step.REMOVE, "c1")]


def test_a_monitor_alive_flag_never_adopts_a_stopped_container() -> None:
    c = _container(ContainerStatus.EXITED)
    assert _steps(Seen(c, monitor_alive=True)) == []


def test_actions_keep_the_containers_order() -> None:
    a = _container(ContainerStatus.RUNNING, cid="a")
    b = replace(_container(ContainerStatus.REMOVING, cid="b"))
    assert plan([Seen(a, True), Seen(b, False)]) == [
        Action(Step.ADOPT, "a"), Action(Step.MARK_DEAD, "b"), Action(Step.REMOVE, "b"),
    ]
