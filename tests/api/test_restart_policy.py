"""Restart policies: automatic restarts, back-off, and what stops them."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Daemon


def _state(d: Daemon, name: str) -> dict[str, object]:
    return json.loads(d.out("inspect", name))[0]  # type: ignore[no-any-return]


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_on_failure_restarts_up_to_the_limit(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", busybox, "sh", "-c", "echo run; exit 3")
    try:
        _wait_for(lambda: _state(daemon, "flaky")["RestartCount"] == 2 and _state(daemon, "flaky")["State"]["Status"] == "exited")  # type: ignore[index]
        time.sleep(0.5)  # and no third restart follows
        state = _state(daemon, "flaky")
        assert state["RestartCount"] == 2
        assert state["State"]["ExitCode"] == 3  # type: ignore[index]
        assert daemon.out("logs", "flaky").split() == ["run", "run", "run"]
    finally:
        daemon.docker("rm", "-f", "flaky", check=False)


def test_on_failure_does_not_restart_success(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "--name", "fine", "--restart", "on-failure", busybox, "true")
    try:
        time.sleep(0.4)
        assert _state(daemon, "fine")["RestartCount"] == 0
        assert _state(daemon, "fine")["State"]["Status"] == "exited"  # type: ignore[index]
    finally:
        daemon.docker("rm", "-f", "fine", check=False)


def test_always_restarts_until_stopped(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-d", "--name", "phoenix", "--restart", "always", busybox, "sh", "-c", "sleep 0.1")
    try:
        _wait_for(lambda: _state(daemon, "phoenix")["RestartCount"] >= 2)  # type: ignore[operator]
        daemon.docker("stop", "-t", "1", "phoenix")
        count = _state(daemon, "phoenix")["RestartCount"]
        time.sleep(1.0)
        state = _state(daemon, "phoenix")
        assert state["State"]["Status"] == "exited"  # type: ignore[index]
        assert state["RestartCount"] == count
    finally:
        daemon.docker("rm", "-f", "phoenix", check=False)


def test_restarting_container_can_be_force_removed(daemon: Daemon, busybox: str) -> None:
    daemon.docker("run", "-d", "--name", "loop", "--restart", "always", busybox, "false")
    try:
        _wait_for(lambda: _state(daemon, "loop")["RestartCount"] >= 1)  # type: ignore[operator]
        daemon.docker("rm", "-f", "loop")
        assert "loop" not in daemon.out("ps", "-a", "--format", "{{.Names}}").split()
    finally:
        daemon.docker("rm", "-f", "loop", check=False)


def test_rm_and_restart_conflict(daemon: Daemon, busybox: str) -> None:
    result = daemon.docker("create", "--rm", "--restart", "always", busybox, "true", check=False)
    assert result.returncode != 0
    assert b"conflicting options" in result.stderr.lower() or b"AutoRemove" in result.stderr


@pytest.mark.parametrize(("policy", "expected"), [("always", True), ("unless-stopped", False), ("no", False)])
def test_policies_on_daemon_start(daemon_factory, busybox_tar: bytes, policy: str, expected: bool) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    d.docker("run", "-d", "--name", "svc", "--restart", policy, "busybox", "sleep", "300")
    d.docker("stop", "-t", "0", "svc")  # stopped by hand: only `always` comes back at start
    d.stop()
    d.start()
    _wait_for(lambda: True)
    if expected:
        _wait_for(lambda: _state(d, "svc")["State"]["Running"] is True)  # type: ignore[index]
    else:
        time.sleep(0.5)
        assert _state(d, "svc")["State"]["Running"] is False  # type: ignore[index]


def test_daemon_refuses_auto_remove_with_restart_policy(daemon: Daemon, busybox: str) -> None:
    import docker

    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as caught:
        client.containers.create(busybox, "true", auto_remove=True, restart_policy={"Name": "always"})
    assert caught.value.status_code == 400
    assert "can't create 'AutoRemove' container with restart policy" in str(caught.value)
