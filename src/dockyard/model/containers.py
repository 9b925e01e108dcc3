"""Containers: what the user asked for (spec), what we observed (state), and the legal moves."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.errors import Conflict
from dockyard.model.endpoints import Endpoint, EndpointRequest
from dockyard.model.health import Health
from dockyard.model.hostconfig import (
    DeviceMapping,
    DeviceRule,
    NamespaceMode,
    SecurityOptions,
    Ulimit,
    parse_cgroupns_mode,
    parse_ipc_mode,
    parse_pid_mode,
    parse_uts_mode,
)
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.model.mounts import MountSpec, parse_mounts

ZERO_TIME = "0001-01-01T00:00:00Z"


class ContainerStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


_MOVES: Mapping[ContainerStatus, frozenset[ContainerStatus]] = {
    ContainerStatus.CREATED: frozenset(
        {ContainerStatus.RUNNING, ContainerStatus.EXITED, ContainerStatus.REMOVING}
    ),
    ContainerStatus.RUNNING: frozenset(
        {ContainerStatus.EXITED, ContainerStatus.PAUSED, ContainerStatus.RESTARTING}
    ),
    # A paused container can die too (the OOM killer, kill -9 from the host).
    ContainerStatus.PAUSED: frozenset(
        {ContainerStatus.RUNNING, ContainerStatus.EXITED, ContainerStatus.RESTARTING}
    ),
    ContainerStatus.RESTARTING: frozenset(
        {ContainerStatus.RUNNING, ContainerStatus.EXITED, ContainerStatus.REMOVING}
    ),
    ContainerStatus.EXITED: frozenset(
        {ContainerStatus.RUNNING, ContainerStatus.REMOVING, ContainerStatus.RESTARTING}
    ),
    ContainerStatus.REMOVING: frozenset({ContainerStatus.DEAD, ContainerStatus.EXITED}),
    ContainerStatus.DEAD: frozenset({ContainerStatus.REMOVING}),
}


def check_move(current: ContainerStatus, target: ContainerStatus) -> None:
    if target not in _MOVES[current]:
        raise Conflict(f"cannot move a container from {current} to {target}")


_BACKOFF_FIRST = 0.1  # seconds; doubles per quick restart, as dockerd's restart manager
_BACKOFF_MAX = 60.0
_BACKOFF_RESET_AFTER = 10.0  # a run this long counts as healthy: back to the first delay


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"  # "", no, always, unless-stopped, on-failure
    maximum_retry_count: int = 0

    def should_restart(self, exit_code: int, restarts: int, stopped_by_user: bool) -> bool:
        """After an exit: restart? A stop or kill by the user always wins."""
        if stopped_by_user or self.name in ("", "no"):
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.maximum_retry_count == 0 or restarts < self.maximum_retry_count)
        return self.name in ("always", "unless-stopped")

    def on_daemon_start(self, exit_code: int, manually_stopped: bool) -> bool:
        """Start again when the daemon comes up? `always` even after a manual stop: that is
        its difference from `unless-stopped` (dockerd's rule)."""
        if self.name == "always":
            return True
        if manually_stopped:
            return False
        return self.name == "unless-stopped" or (self.name == "on-failure" and exit_code != 0)


def restart_delay(previous_delay: float, ran_for: float) -> float:
    """The wait before the next automatic restart."""
    if ran_for >= _BACKOFF_RESET_AFTER or previous_delay <= 0:
        return _BACKOFF_FIRST
    return min(previous_delay * 2, _BACKOFF_MAX)


@dataclass(frozen=True)
class LogConfig:
    type: str = ""  # "": the daemon's default driver (resolved when the container is made)
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostSpec:
    """HostConfig: how the container is placed on this host."""

    binds: tuple[str, ...] = ()
    network_mode: str = "default"
    port_bindings: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    restart_policy: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    runtime: str = ""
    privileged: bool = False
    publish_all_ports: bool = False
    readonly_rootfs: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # legacy links on the default bridge: "name:alias", names resolved at create
    security_opt: tuple[str, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    console_size: tuple[int, int] = (0, 0)
    init: bool | None = None
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int | None = None
    shm_size: int = 64 * 1024 * 1024
    oom_kill_disable: bool | None = False  # dockerd fills in false
    log_config: LogConfig = LogConfig()
    ipc_mode: str = "private"
    pid_mode: str = ""
    uts_mode: str = ""
    group_add: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[MountSpec, ...] = ()  # HostConfig.Mounts (--mount)
    volumes_from: tuple[str, ...] = ()  # HostConfig.VolumesFrom, as sent
    # Every mount as the create settled them (model/mountpoints.py): anonymous volumes named,
    # --volumes-from's added. None: not settled yet (a request), or a record made before.
    mount_points: tuple[MountSpec, ...] | None = None
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[DeviceRule, ...] = ()
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    blkio_weight: int = 0
    oom_score_adj: int = 0
    cgroup_parent: str = ""
    cgroupns_mode: str = "host"
    userns_mode: str = ""
    security: SecurityOptions = field(default_factory=SecurityOptions)  # parsed from security_opt
    annotations: Mapping[str, str] = field(default_factory=dict)
    isolation: str = ""  # "" or "default": the only one linux has

    # The namespace modes are kept as the user wrote them (inspect shows them back) and
    # were checked at create; these give the typed value.
    @property
    def ipc(self) -> NamespaceMode:
        return parse_ipc_mode(self.ipc_mode)

    @property
    def pid(self) -> NamespaceMode:
        return parse_pid_mode(self.pid_mode)

    @property
    def uts(self) -> NamespaceMode:
        return parse_uts_mode(self.uts_mode)

    @property
    def cgroupns(self) -> NamespaceMode:
        return parse_cgroupns_mode(self.cgroupns_mode)

    @functools.cached_property
    def all_mounts(self) -> tuple[MountSpec, ...]:
        """Every mount (-v, --mount, --tmpfs; once created, also its anonymous volumes and
        --volumes-from's), parsed once per spec: the spec is shared by every snapshot of
        the container, so bundles, inspect and cp reuse this."""
        if self.mount_points is not None:
            return self.mount_points
        return parse_mounts(self.binds, self.tmpfs, self.mounts)

    @property
    def init_enabled(self) -> bool:
        """--init (the daemon's default is off), only where we own the pid namespace."""
        return bool(self.init) and self.pid.private


@dataclass(frozen=True)
class ContainerSpec:
    """Config + HostConfig as created: the image's defaults already merged in."""

    image: str  # as the user named it
    hostname: str
    domainname: str = ""
    user: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    stop_timeout: int | None = None
    healthcheck: HealthConfig | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None
    network_disabled: bool = False
    mac_address: str = ""
    host: HostSpec = HostSpec()
    # The networks joined at each start (resolved at create; connect and disconnect change it).
    endpoints: tuple[EndpointRequest, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.entrypoint or ()) + (self.cmd or ())


@dataclass(frozen=True)
class ContainerState:
    """Observed state, replaced whole on every change."""

    status: ContainerStatus = ContainerStatus.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    # Set while running: who watches the process, and where it runs.
    monitor_pid: int = 0
    pid_start_time: int = 0
    boot_id: str = ""
    netns: str = ""  # the pinned network namespace the process runs in
    endpoints: tuple[Endpoint, ...] = ()  # its place on its networks while it runs
    manually_stopped: bool = False  # by docker stop/kill: restart policies leave it alone

    @property
    def running(self) -> bool:
        return self.status in (ContainerStatus.RUNNING, ContainerStatus.PAUSED)


@dataclass(frozen=True)
class Container:
    id: str
    name: str  # without the leading "/"
    created: str  # RFC 3339 with nanoseconds
    image_id: str
    spec: ContainerSpec
    state: ContainerState
    runtime: str  # the OCI runtime chosen at create time
    rw_layer: str  # directory name of the container's writable layer
    # Kept apart from `state`: probes update it while lifecycle changes are under way.
    health: Health | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]


def _env_key(item: str) -> str:
    return item.partition("=")[0]


def _merge_health(user: HealthConfig | None, image: HealthConfig | None) -> HealthConfig | None:
    """Fields the user left unset (empty test, zero durations) come from the image."""
    if user is None or image is None:
        return user or image
    from dataclasses import replace

    return replace(
        user,
        test=user.test or image.test,
        interval_ns=user.interval_ns or image.interval_ns,
        timeout_ns=user.timeout_ns or image.timeout_ns,
        start_period_ns=user.start_period_ns or image.start_period_ns,
        start_interval_ns=user.start_interval_ns or image.start_interval_ns,
        retries=user.retries or image.retries,
    )


def merge_image_config(spec: ContainerSpec, image: ImageConfig) -> ContainerSpec:
    """dockerd's merge of the image's defaults into what the user asked for."""
    from dataclasses import replace

    # dockerd's order: the user's entries, then the image's that the user did not set.
    user_keys = {_env_key(item) for item in spec.env}
    env = [*spec.env, *(item for item in image.env if _env_key(item) not in user_keys)]
    entrypoint, cmd = spec.entrypoint, spec.cmd
    if not entrypoint:
        if not cmd:
            cmd = image.cmd
        if entrypoint is None:
            entrypoint = image.entrypoint
    if entrypoint == ("",):
        entrypoint = ()
    return replace(
        spec,
        user=spec.user or image.user,
        env=tuple(env),
        cmd=cmd,
        entrypoint=entrypoint,
        working_dir=spec.working_dir or image.working_dir,
        labels={**image.labels, **spec.labels},
        exposed_ports=tuple(sorted({*image.exposed_ports, *spec.exposed_ports})),
        volumes=tuple(sorted({*image.volumes, *spec.volumes})),
        stop_signal=spec.stop_signal or image.stop_signal,
        healthcheck=_merge_health(spec.healthcheck, image.healthcheck),
        on_build=image.on_build,
        shell=image.shell,
    )
