"""Healthchecks: --health-* and the image's HEALTHCHECK, State.Health, events, ps filters."""

from __future__ import annotations

import json
import time

from tests.conftest import Daemon


def _health(daemon: Daemon, cid: str) -> dict[str, object]:
    return json.loads(daemon.out("inspect", cid))[0]["State"].get("Health") or {}


def _wait_status(daemon: Daemon, cid: str, status: str, timeout: float = 15) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        health = _health(daemon, cid)
        if health.get("Status") == status:
            return health
        assert time.monotonic() < deadline, f"health never became {status}: {health}"
        time.sleep(0.1)


def test_healthy_then_unhealthy_with_a_log_and_events(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out(
        "run", "-d", "--health-cmd", "cat /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
        "--health-timeout", "2s", busybox, "sh", "-c", "touch /tmp/ok; sleep 300",
    )  # fmt: skip
    try:
        assert _health(daemon, cid).get("Status") in ("starting", "healthy")
        healthy = _wait_status(daemon, cid, "healthy")
        log = healthy["Log"]
        assert isinstance(log, list) and log[-1]["ExitCode"] == 0
        assert daemon.out("ps", "-q", "--no-trunc", "--filter", "health=healthy", "--filter", f"id={cid}") == cid
        assert "(healthy)" in daemon.out("ps", "--filter", f"id={cid}", "--format", "{{.Status}}")
        daemon.docker("exec", cid, "rm", "/tmp/ok")
        unhealthy = _wait_status(daemon, cid, "unhealthy")
        assert unhealthy["FailingStreak"] >= 2
        assert "No such file" in unhealthy["Log"][-1]["Output"]
        until = str(int(time.time()) + 1)
        actions = daemon.out("events", "--since", "60s", "--until", until, "--filter", f"container={cid}",
                             "--filter", "event=health_status", "--format", "{{.Action}}").splitlines()  # fmt: skip
        assert "health_status: healthy" in actions and "health_status: unhealthy" in actions
    finally:
        daemon.docker("rm", "-f", cid)


def test_a_probe_that_times_out(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out(
        "run", "-d", "--health-cmd", "sleep 5", "--health-interval", "200ms", "--health-timeout", "300ms",
        "--health-retries", "1", busybox, "sleep", "300",
    )  # fmt: skip
    try:
        health = _wait_status(daemon, cid, "unhealthy")
        assert health["Log"][-1]["ExitCode"] == -1
        assert health["Log"][-1]["Output"].startswith("Health check exceeded timeout (300ms)")
    finally:
        daemon.docker("rm", "-f", cid)


def test_the_images_healthcheck_and_no_healthcheck(daemon: Daemon, busybox_tar: bytes) -> None:
    daemon.docker("import", "--change", 'HEALTHCHECK --interval=200ms CMD ["true"]', "-", "healthy:img", input=busybox_tar)
    with_check = daemon.out("run", "-d", "healthy:img", "sleep", "300")
    without = daemon.out("run", "-d", "--no-healthcheck", "healthy:img", "sleep", "300")
    try:
        _wait_status(daemon, with_check, "healthy")
        time.sleep(0.5)
        assert _health(daemon, without) == {}
        assert without in daemon.out("ps", "-q", "--no-trunc", "--filter", "health=none")
    finally:
        daemon.docker("rm", "-f", with_check, without)
        daemon.docker("rmi", "healthy:img")
