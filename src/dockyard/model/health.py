"""Healthchecks: the probe a container's config asks for, and what each result does to its
health (dockerd's daemon/health.go rules, as values in and values out)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from dockyard.model.images import HealthConfig
from dockyard.model.times import go_duration

DEFAULT_INTERVAL_NS = 30_000_000_000
DEFAULT_TIMEOUT_NS = 30_000_000_000
DEFAULT_START_INTERVAL_NS = 5_000_000_000
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096


class HealthStatus(enum.StrEnum):
    NONE = "none"  # no healthcheck (what `ps --filter health=none` matches)
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class ProbeResult:
    start_ns: int
    end_ns: int
    exit_code: int  # -1: the probe could not run or timed out
    output: str


@dataclass(frozen=True)
class Health:
    status: HealthStatus = HealthStatus.STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()  # the last few results, oldest first


@dataclass(frozen=True)
class Probe:
    """A healthcheck with dockerd's defaults filled in."""

    argv: tuple[str, ...]
    interval_ns: int
    timeout_ns: int
    start_period_ns: int
    start_interval_ns: int
    retries: int


def probe_of(config: HealthConfig | None, shell: tuple[str, ...] | None) -> Probe | None:
    """The probe to run, or None: no healthcheck, `NONE`, an unknown type, or no command."""
    if config is None or not config.test:
        return None
    kind, command = config.test[0], config.test[1:]
    if kind == "CMD":
        argv = command
    elif kind == "CMD-SHELL":
        argv = (*(shell or ("/bin/sh", "-c")), *command)
    else:
        return None
    if not command:
        return None
    return Probe(
        argv=argv,
        interval_ns=config.interval_ns or DEFAULT_INTERVAL_NS,
        timeout_ns=config.timeout_ns or DEFAULT_TIMEOUT_NS,
        start_period_ns=config.start_period_ns,
        start_interval_ns=config.start_interval_ns or DEFAULT_START_INTERVAL_NS,
        retries=config.retries if config.retries > 0 else DEFAULT_RETRIES,
    )


def status_of(health: Health | None, config: HealthConfig | None) -> HealthStatus:
    """A container's health as `ps --filter health=` sees it: none without a healthcheck."""
    if health is None or probe_of(config, None) is None:
        return HealthStatus.NONE
    return health.status


def at_start(health: Health | None) -> Health:
    """A (re)started container is starting again; its log stays."""
    return replace(health or Health(), status=HealthStatus.STARTING, failing_streak=0)


def at_stop(health: Health) -> Health:
    """Probes stop with the container (or a pause), and dockerd then calls it unhealthy."""
    return replace(health, status=HealthStatus.UNHEALTHY)


def next_delay_ns(probe: Probe, health: Health, started_ns: int, now_ns: int) -> int:
    """The wait before the next probe: the start interval while starting within the start
    period, the interval otherwise."""
    in_start_period = now_ns - started_ns < probe.start_period_ns
    if in_start_period and health.status is HealthStatus.STARTING:
        return probe.start_interval_ns
    return probe.interval_ns


def after_probe(health: Health, result: ProbeResult, probe: Probe, started_ns: int) -> Health:
    """The health after one result. Failures while still starting inside the start period
    do not count toward the retries."""
    log = (*health.log, result)[-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        return Health(HealthStatus.HEALTHY, 0, log)
    streak = health.failing_streak
    status = health.status
    counts = not (status is HealthStatus.STARTING and result.start_ns - started_ns < probe.start_period_ns)
    if counts:
        streak += 1
        if streak >= probe.retries:
            status = HealthStatus.UNHEALTHY
    return Health(status, streak, log)


def probe_output(data: bytes) -> str:
    """At most 4096 bytes of what the probe printed, `...` marking a cut (dockerd's rule)."""
    text = data[:MAX_OUTPUT].decode(errors="replace")
    return text + "..." if len(data) > MAX_OUTPUT else text


def timeout_message(timeout_ns: int, output: str) -> str:
    shown = go_duration(timeout_ns)
    return f"Health check exceeded timeout ({shown}): {output}" if output else f"Health check exceeded timeout ({shown})"
