"""model.health: probes from configs, and what each result does (dockerd's rules)."""

from __future__ import annotations

import pytest

from dockyard.model.health import (
    DEFAULT_INTERVAL_NS,
    MAX_LOG_ENTRIES,
    Health,
    HealthStatus,
    Probe,
    ProbeResult,
    after_probe,
    at_start,
    at_stop,
    next_delay_ns,
    probe_of,
    probe_output,
    timeout_message,
)
from dockyard.model.images import HealthConfig

S = 1_000_000_000


def _probe(retries: int = 3, start_period: int = 0) -> Probe:
    return Probe(("true",), 30 * S, 30 * S, start_period, 5 * S, retries)


def _result(code: int, at: int = 100 * S) -> ProbeResult:
    return ProbeResult(at, at + 1, code, "out")


def test_probe_kinds_and_defaults() -> None:
    assert probe_of(None, None) is None
    assert probe_of(HealthConfig(test=("NONE",)), None) is None
    assert probe_of(HealthConfig(test=("BOGUS", "x")), None) is None
    assert probe_of(HealthConfig(test=("CMD",)), None) is None
    cmd = probe_of(HealthConfig(test=("CMD", "cat", "/ok")), None)
    assert cmd == Probe(("cat", "/ok"), DEFAULT_INTERVAL_NS, 30 * S, 0, 5 * S, 3)
    shell = probe_of(HealthConfig(test=("CMD-SHELL", "test -f /ok"), interval_ns=S, retries=1), None)
    assert shell is not None and shell.argv == ("/bin/sh", "-c", "test -f /ok")
    assert shell.interval_ns == S and shell.retries == 1
    own_shell = probe_of(HealthConfig(test=("CMD-SHELL", "x")), ("/bin/bash", "-lc"))
    assert own_shell is not None and own_shell.argv == ("/bin/bash", "-lc", "x")


def test_a_success_makes_it_healthy_and_resets_the_streak() -> None:
    h = after_probe(Health(HealthStatus.UNHEALTHY, 5), _result(0), _probe(), started_ns=0)
    assert h.status is HealthStatus.HEALTHY and h.failing_streak == 0


def test_failures_count_up_to_the_retries() -> None:
    h = Health()
    for expected in (HealthStatus.STARTING, HealthStatus.STARTING, HealthStatus.UNHEALTHY):
        h = after_probe(h, _result(1), _probe(retries=3), started_ns=0)
        assert h.status is expected
    assert h.failing_streak == 3


def test_failures_inside_the_start_period_do_not_count_while_starting() -> None:
    probe = _probe(retries=1, start_period=60 * S)
    h = after_probe(Health(), _result(1, at=10 * S), probe, started_ns=0)
    assert h == Health(HealthStatus.STARTING, 0, h.log)
    # Once healthy, a failure counts even inside the start period.
    h = after_probe(Health(HealthStatus.HEALTHY), _result(1, at=10 * S), probe, started_ns=0)
    assert h.status is HealthStatus.UNHEALTHY
    # After the start period, failures count.
    h = after_probe(Health(), _result(1, at=61 * S), probe, started_ns=0)
    assert h.status is HealthStatus.UNHEALTHY


def test_the_log_keeps_the_last_five_oldest_first() -> None:
    h = Health()
    for i in range(8):
        h = after_probe(h, _result(0, at=i * S), _probe(), started_ns=0)
    assert len(h.log) == MAX_LOG_ENTRIES
    assert [r.start_ns for r in h.log] == [i * S for i in range(3, 8)]


def test_start_and_stop() -> None:
    old = Health(HealthStatus.HEALTHY, 2, (_result(0),))
    assert at_start(old) == Health(HealthStatus.STARTING, 0, old.log)
    assert at_start(None) == Health()
    assert at_stop(old).status is HealthStatus.UNHEALTHY


@pytest.mark.parametrize(
    ("status", "now", "delay"),
    [(HealthStatus.STARTING, 10 * S, 5 * S), (HealthStatus.HEALTHY, 10 * S, 30 * S), (HealthStatus.STARTING, 70 * S, 30 * S)],
)
def test_the_start_interval_applies_while_starting_in_the_start_period(status: HealthStatus, now: int, delay: int) -> None:
    assert next_delay_ns(_probe(start_period=60 * S), Health(status), 0, now) == delay


def test_output_is_cut_at_4096_bytes() -> None:
    assert probe_output(b"ok\n") == "ok\n"
    assert probe_output(b"x" * 5000) == "x" * 4096 + "..."


def test_timeout_message_as_go_prints_durations() -> None:
    assert timeout_message(30 * S, "") == "Health check exceeded timeout (30s)"
    assert timeout_message(1_500_000_000, "partial") == "Health check exceeded timeout (1.5s): partial"
