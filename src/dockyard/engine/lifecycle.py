"""Lifecycle: start, stop, kill, pause, unpause, restart, resize, wait, and recording an exit.

Each change of one container runs under its lock: decide, do the I/O, publish the new state
through the table (which enforces the state table), then emit the event. Waiting for an exit
never holds the lock, so the exit path (which takes it) can always run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal as signals
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from dockyard.engine.attach import Attachments
from dockyard.engine.bundles import ContainerFiles, write_bundle
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.events import EventBus
from dockyard.engine.exits import ExitMonitor
from dockyard.engine.firewalling import Firewalling
from dockyard.engine.health import HealthMonitor
from dockyard.engine.logs import LogService
from dockyard.engine.rootfs import RootfsMounts
from dockyard.engine.table import ContainerTable, ExitStatus, Live
from dockyard.engine.volumes import VolumeService
from dockyard.errors import Conflict, Internal, InvalidArgument, NotModified, StartFailed
from dockyard.linux.process import ProcessHandle, boot_id, start_time
from dockyard.model import times
from dockyard.model.containers import Container, ContainerState, ContainerStatus
from dockyard.model.endpoints import Endpoint
from dockyard.model.events import attributes_of
from dockyard.model.hostconfig import NamespaceKind, NamespaceMode
from dockyard.model.signals import parse_signal
from dockyard.network.dns import DnsServers
from dockyard.network.netns import NetnsPool
from dockyard.network.upstream import upstreams_for
from dockyard.runtime.driver import Launch, RuntimeDriver
from dockyard.runtime.seccomp import SeccompProfiles
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
_KILL_WAIT = 10.0  # dockerd's: how long a SIGKILL may take to show as an exit
_KILL_RETRY_WAIT = 2.0


def _volume_names(c: Container) -> list[str]:
    return [m.source for m in c.spec.host.all_mounts if m.type == "volume"]


@dataclass(frozen=True)
class ExitRecord:
    """What an exit left: the container as now published, and whether it restarts."""

    container: Container
    restarting: bool


class Lifecycle(Component):
    def __init__(
        self,
        table: ContainerTable,
        driver: RuntimeDriver,
        attachments: Attachments,
        exits: ExitMonitor,
        netns: NetnsPool,
        mounts: RootfsMounts,
        health: HealthMonitor,
        logs: LogService,
        seccomp: SeccompProfiles,
        files: Callable[[str], ContainerFiles],
        events: EventBus,
        endpoints: Endpoints,
        dns: DnsServers,
        firewalling: Firewalling,
        volumes: VolumeService,
    ) -> None:
        self._volumes = volumes
        self._endpoints = endpoints
        self._firewalling = firewalling
        self._dns = dns
        self._seccomp = seccomp
        self._health = health
        self._logs = logs
        self._table = table
        self._driver = driver
        self._attachments = attachments
        self._exits = exits
        self._netns = netns
        self._mounts = mounts
        self._files = files
        self._events = events
        self._tasks = Tasks("lifecycle")
        self.boot_id = boot_id()
        self._shutting_down = False

    def _emit(self, action: str, c: Container, **extra: str) -> None:
        self._events.publish("container", action, c.id, attributes_of(c, **extra))

    # ---- start -------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self._table.resolve(ref)
        live = self._table.live(c.id)
        async with live.lock:
            c = self._table.current(c)
            if c.state.status in (ContainerStatus.RUNNING, ContainerStatus.PAUSED):
                raise NotModified("container already started")
            if c.state.status is ContainerStatus.RESTARTING:
                c = self.call_off_restart(c, live)
            if c.state.status in (ContainerStatus.REMOVING, ContainerStatus.DEAD):
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            await self.start_locked(c, live)

    async def start_locked(self, c: Container, live: Live, *, keep_restart_count: bool = False) -> None:
        """Start `c`, whose lock the caller holds. A failure leaves nothing running or mounted."""
        if live.runtime_cleanup is not None:
            await live.runtime_cleanup  # the runtime must have forgotten the last run
            live.runtime_cleanup = None
        files = self._files(c.id)
        t0 = time.perf_counter()
        self._tasks.spawn(self._driver.prepay_cgroup_move(), "cgroup-prepay")
        rootfs = await self._mounts.acquire(c)
        t_mount = time.perf_counter()
        created = False
        netns = ""
        endpoints: tuple[Endpoint, ...] = ()
        try:
            await self._volumes.mount_for(c.id, _volume_names(c))  # before the bundle: copy-up goes in
            mode = c.spec.host.network_mode
            joined: str | None = None  # the namespace joined (the host's: None); netns: the one we pin
            shared = files
            if mode.startswith("container:"):
                other = self._table.resolve(mode.partition(":")[2])
                if other.id == c.id:
                    raise InvalidArgument("cannot join own network namespace")
                if not other.state.running or not other.state.pid:
                    raise Conflict(f"cannot join network of a non running container: {other.id}")
                joined = f"/proc/{other.state.pid}/ns/net"
                shared = self._files(other.id)
            elif mode != "host":
                netns = str(await self._netns.take())
                joined = netns
                endpoints = await self._endpoints.attach(c, Path(netns))
                endpoints = await self._firewalling.publish(c, endpoints)
                self._endpoints.republished(c, endpoints)
                if self._endpoints.wants_dns(endpoints):
                    await self.serve_dns(c, netns)
            t_network = time.perf_counter()
            keep_filter_as = await asyncio.to_thread(
                write_bundle, self._endpoints.with_links(c), files, rootfs, joined,
                endpoints=endpoints,
                host_files=shared,
                host_gateway=self._endpoints.host_gateway(),
                embedded_dns=self._endpoints.wants_dns(endpoints),
                pid_namespace=self._joined(c.spec.host.pid, "pid"),
                ipc_namespace=self._joined(c.spec.host.ipc, "ipc"),
                seccomp=self._seccomp,
                seccomp_filter=functools.partial(self._driver.seccomp_filter, c.runtime),
            )  # fmt: skip
            t_bundle = time.perf_counter()
            log_setup = self._logs.of(c)
            launched = await self._driver.create(
                Launch(
                    container_id=c.id,
                    name=c.name,
                    runtime=c.runtime,
                    bundle=files.bundle,
                    log_path=log_setup.spool,
                    log_size_max=log_setup.spool_max,
                    exit_dir=files.exit_dir,
                    persist_dir=files.persist,
                    tty=c.spec.tty,
                    stdin=c.spec.open_stdin,
                    stdin_once=c.spec.stdin_once,
                    seccomp_key=keep_filter_as,
                )
            )
            created = True
            live.process = ProcessHandle(launched.pid)
            live.monitor = ProcessHandle(launched.monitor_pid)
            t_created = time.perf_counter()
            await self._logs.started(c, log_setup)
            await self._attachments.connect_waiting(c.id)
            await self._driver.start(c.runtime, c.id)
            t_started = time.perf_counter()
            log.debug(
                "container %s: mount %.1f ms, network %.1f ms, bundle %.1f ms, create %.1f ms, start %.1f ms",
                c.id[:12], (t_mount - t0) * 1e3, (t_network - t_mount) * 1e3, (t_bundle - t_network) * 1e3,
                (t_created - t_bundle) * 1e3, (t_started - t_created) * 1e3,
            )  # fmt: skip
        except BaseException as exc:
            await self._undo_start(c, live, created)
            await self._firewalling.unpublish(c.id)
            await self._dns.remove(netns, clear_redirect=False)
            await self._endpoints.detach(endpoints, c.id)
            await self._netns.release(netns)
            if not isinstance(exc, asyncio.CancelledError):
                message = getattr(exc, "message", str(exc))
                code = exc.exit_code if isinstance(exc, StartFailed) else 128
                self._table.publish(c.id, replace(c.state, error=message, exit_code=code))
            raise
        state = ContainerState(
            status=ContainerStatus.RUNNING,
            pid=launched.pid,
            started_at=times.now(),
            restart_count=c.state.restart_count if keep_restart_count else 0,
            monitor_pid=launched.monitor_pid,
            pid_start_time=start_time(launched.pid),
            boot_id=self.boot_id,
            netns=netns,
            endpoints=endpoints,
        )
        live.stopped_by_user = False
        if not keep_restart_count:
            live.restart_delay = 0.0
        c = self._table.publish(c.id, state)
        self._emit("start", c)
        self._exits.watch(c.id, live.monitor)
        self._health.started(c)

    async def serve_dns(self, c: Container, netns: str) -> None:
        """The embedded DNS server in `netns`, answering from the container's networks and
        forwarding to its resolvers (`--dns`, the daemon's `dns`, else the host's)."""
        ndots_set = any(o.startswith("ndots:") for o in c.spec.host.dns_options)
        container_id = c.id
        await self._dns.add(netns, lambda: self._endpoints.name_table(container_id, ndots_set),
                            upstreams_for(c.spec.host.dns or self._files(c.id).config.network.dns))  # fmt: skip

    def restore_dns(self, running: list[Container]) -> None:
        """After a daemon restart: the DNS servers of the containers that still run, in the
        background (each redirect rule is an nft run of ~20 ms; serving does not wait)."""
        self._tasks.spawn(self._restore_dns(running), "restore-dns")

    async def _restore_dns(self, running: list[Container]) -> None:
        for c in running:
            if c.state.netns and self._endpoints.wants_dns(c.state.endpoints) and c.state.netns not in self._dns:
                try:
                    await self.serve_dns(c, c.state.netns)
                except Exception:
                    log.exception("container %s: its DNS server could not be restored", c.id[:12])

    def _joined(self, mode: NamespaceMode, kind: str) -> str:
        """For `container:<id>`: that container's namespace while it runs, else "" (the
        bundle then refuses the start with dockerd's words)."""
        if mode.kind is not NamespaceKind.CONTAINER:
            return ""
        other = self._table.get(mode.container)
        if other is None:
            raise InvalidArgument(f"No such container: {mode.container}")
        if not other.state.running or not other.state.pid:
            return ""
        if kind == "ipc" and other.spec.host.ipc.kind in (NamespaceKind.PRIVATE, NamespaceKind.NONE):
            raise InvalidArgument(f"container {other.id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
        return f"/proc/{other.state.pid}/ns/{kind}"

    async def _undo_start(self, c: Container, live: Live, created: bool) -> None:
        with contextlib.suppress(Exception):
            await self._logs.failed_start(c)
        if created:
            with contextlib.suppress(Exception):
                await self._driver.delete(c.runtime, c.id)
            if live.monitor is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await live.monitor.wait()
        live.close_handles()
        self._attachments.release(c.id)
        await self._volumes.unmount_for(c.id, _volume_names(c))
        with contextlib.suppress(Exception):
            await self._mounts.release(c)

    async def clear_leftovers(self, c: Container) -> None:
        """Start-up, for a container the database says is not running: nothing of a start the
        daemon did not finish (it was killed) may live on: no monitor, no created process,
        no mount."""
        files = self._files(c.id)
        pid = self._driver.monitor_pid(files.bundle)
        if pid and self._driver.is_monitor_of(pid, c.id):
            monitor = ProcessHandle.adopt(pid, 0)
            if monitor is not None:
                log.info("container %s: ending the monitor of an unfinished start", c.id[:12])
                monitor.send(signals.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await monitor.wait()
                monitor.close()
        with contextlib.suppress(Exception):
            await self._driver.delete(c.runtime, c.id)  # a created process waiting for start dies
        await self._mounts.release(c)  # unmounted if a start mounted it

    def adopt_volumes(self, c: Container) -> None:
        """A container found running at start-up holds its volumes' mounts already."""
        self._volumes.adopt(c.id, _volume_names(c))

    async def unmount_idle_volumes(self) -> None:
        """Start-up, once the running containers are adopted: volumes mounted for none go."""
        await self._volumes.unmount_idle()

    def ship_leftover_log(self, c: Container) -> None:
        """What a stopped container's spool still holds (a crash came between its exit and
        the end of its shipping) goes to its log, in the background."""
        self._tasks.spawn(self._logs.ended(c), f"leftover-log-{c.id[:12]}")

    # ---- the exit path -----------------------------------------------------------------

    async def record_exit(self, container_id: str) -> ExitRecord | None:
        """The monitor of `container_id` ended: record how, clean up, decide on a restart.

        None when the container is gone (removed meanwhile) or was not running.
        """
        c = self._table.get(container_id)
        if c is None:
            return None
        live = self._table.live(container_id)
        async with live.lock:
            c = self._table.current(c)
            if not c.state.running:
                return None  # reported twice (adoption raced a watcher): recorded already
            self._health.stopped(container_id)
            files = self._files(container_id)
            ended = self._driver.exit_of(files.exit_dir, files.persist, container_id)
            error = "" if ended.code is not None else "container monitor exited without an exit code"
            # Side by side: the unmount and network teardown, and the rest of the log shipped
            # (LogPath holds every line before anyone is told).
            cleaned, _ = await asyncio.gather(self._cleanup_runtime(c, live), self._ship_rest(c), return_exceptions=True)
            if isinstance(cleaned, BaseException):
                raise cleaned
            state = replace(
                c.state,
                status=ContainerStatus.EXITED,
                pid=0,
                exit_code=ended.code if ended.code is not None else 255,
                error=error,
                oom_killed=ended.oom_killed,
                finished_at=times.now(),
                monitor_pid=0,
                pid_start_time=0,
                netns="",
                endpoints=(),
                manually_stopped=live.stopped_by_user or c.state.manually_stopped,
            )
            policy = c.spec.host.restart_policy
            restarting = not self._shutting_down and policy.should_restart(
                state.exit_code, state.restart_count, state.manually_stopped
            )
            if restarting:
                state = replace(state, status=ContainerStatus.RESTARTING)
            c = self._table.publish(container_id, state)
            if ended.oom_killed:
                self._emit("oom", c)
            ran = (times.parse_ns(state.finished_at) - times.parse_ns(c.state.started_at)) // 1_000_000_000
            self._emit("die", c, exitCode=str(state.exit_code), execDuration=str(max(ran, 0)))
            log.debug("container %s: exit recorded", c.id[:12])
            self._table.notify_exit(container_id, ExitStatus(state.exit_code, error))
        return ExitRecord(c, restarting)

    async def _ship_rest(self, c: Container) -> None:
        try:
            await self._logs.ended(c)
        except Exception:
            log.exception("container %s: shipping the rest of its log failed", c.id[:12])

    async def _cleanup_runtime(self, c: Container, live: Live) -> None:
        """After an exit: unmount now; the runtime's own state is deleted in the background
        (a start of the same container waits for it, and so does `rm`), begun first so that
        it runs beside the unmount and the rest of the exit path."""
        live.close_handles()
        live.runtime_cleanup = self._tasks.spawn(self._driver.delete(c.runtime, c.id), f"delete-{c.id[:12]}")
        try:
            await self._mounts.release(c)
        except Exception:
            log.exception("container %s: unmount failed", c.id[:12])
        await self._volumes.unmount_for(c.id, _volume_names(c))
        await self._firewalling.unpublish(c.id)
        await self._dns.remove(c.state.netns, clear_redirect=False)  # the namespace goes: no nft run
        await self._endpoints.detach(c.state.endpoints, c.id, unplug=False)  # the namespace takes them along
        await self._netns.release(c.state.netns)

    def call_off_restart(self, c: Container, live: Live) -> Container:
        """A pending automatic restart is called off (start, stop, rm): it stays exited."""
        if live.restart_task is not None:
            live.restart_task.cancel()
            live.restart_task = None
        if c.state.status is ContainerStatus.RESTARTING:
            c = self._table.publish(c.id, replace(c.state, status=ContainerStatus.EXITED, manually_stopped=True))
        return c

    # ---- signals, stop, restart --------------------------------------------------------

    async def stop_all(self, timeout: int) -> None:
        """The daemon stops without live-restore: every running container is stopped, each
        given its stop timeout but no more than `timeout`. Not by the user: restart policies
        bring them back when the daemon starts again, and none restarts meanwhile."""
        self._shutting_down = True
        running = [c for c in self._table.all() if c.state.running]
        if not running:
            return
        log.info("stopping %d containers (live-restore is off)", len(running))

        def within(c: Container) -> int:
            own = c.spec.stop_timeout if c.spec.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
            return min(own, timeout) if own >= 0 else timeout

        async with asyncio.TaskGroup() as group:
            for c in running:
                group.create_task(self._stop(c, within(c), by_user=False))

    def mark_stopped(self, c: Container) -> None:
        """Stopped on purpose: no restart policy brings it back, even if the daemon is killed
        before the exit is seen (so it is written down, not only remembered)."""
        self._table.live(c.id).stopped_by_user = True
        current = self._table.current(c)
        if current.state.running and not current.state.manually_stopped:
            self._table.publish(c.id, replace(current.state, manually_stopped=True))

    def _signal(self, c: Container, sig: int) -> None:
        process = self._table.live(c.id).process
        if not c.state.running or process is None or not process.send(sig):
            raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")

    async def kill(self, ref: str, signal_name: str = "") -> None:
        c = self._table.resolve(ref)
        sig = parse_signal(signal_name) if signal_name else signals.SIGKILL
        if c.state.status is ContainerStatus.PAUSED and sig == signals.SIGKILL:
            await self._driver.resume(c.runtime, c.id)
        if sig in (signals.SIGKILL, parse_signal(c.spec.stop_signal or "SIGTERM")):
            # Killed on purpose: the restart policy leaves it down. (HUP, USR1... are messages.)
            self.mark_stopped(c)
        if sig != signals.SIGKILL:
            self._signal(c, sig)
            self._emit("kill", c, signal=str(sig))
            return
        # As dockerd: a SIGKILL answers once the exit is recorded (clients read the exit code
        # or remove the container right after), with one more try if none came in 10 s.
        exited = self._table.next_exit(c.id)
        try:
            self._signal(c, sig)
        except Conflict:
            exited.cancel()
            raise
        self._emit("kill", c, signal=str(sig))
        for wait in (_KILL_WAIT, _KILL_RETRY_WAIT):
            try:
                async with asyncio.timeout(wait):
                    await asyncio.shield(exited)
                return
            except TimeoutError:
                with contextlib.suppress(Conflict):
                    self._signal(self._table.current(c), sig)
        exited.cancel()
        raise Internal(f"tried to kill container {c.id}, but did not receive an exit event")

    async def kill_for_removal(self, c: Container) -> None:
        """rm -f: SIGKILL (a paused one thawed first) and wait for the exit to be recorded."""
        exited = self._table.next_exit(c.id)
        with contextlib.suppress(Conflict):
            if c.state.status is ContainerStatus.PAUSED:
                await self._driver.resume(c.runtime, c.id)
            self._signal(c, signals.SIGKILL)
        await exited

    async def stop(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None:
        c = self._table.resolve(ref)
        if c.state.status is ContainerStatus.RESTARTING:
            live = self._table.live(c.id)
            async with live.lock:
                c = self.call_off_restart(self._table.current(c), live)
            if not c.state.running:  # else the restart won the race: stop it below
                self._emit("stop", c)
                return
        if not c.state.running:
            raise NotModified("container already stopped")
        await self._stop(c, timeout, signal_name)
        self._emit("stop", self._table.current(c))

    async def _stop(self, c: Container, timeout: int | None, signal_name: str = "", *, by_user: bool = True) -> None:
        sig = parse_signal(signal_name or c.spec.stop_signal or "SIGTERM")
        if timeout is None:
            timeout = c.spec.stop_timeout if c.spec.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
        if c.state.status is ContainerStatus.PAUSED:
            # A frozen process cannot act on a signal; thaw it first, as dockerd does.
            await self.unpause(c.id)
            c = self._table.current(c)
        exited = self._table.next_exit(c.id)
        if by_user:
            self.mark_stopped(c)
        try:
            self._signal(c, sig)
        except Conflict:
            exited.cancel()
            return
        self._emit("kill", c, signal=str(sig))
        if timeout < 0:
            await exited
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(exited)
            return
        except TimeoutError:
            log.info("container %s: no exit %ss after signal %d; killing", c.id[:12], timeout, sig)
        with contextlib.suppress(Conflict):
            self._signal(self._table.current(c), signals.SIGKILL)
            self._emit("kill", c, signal=str(int(signals.SIGKILL)))
        await exited

    async def restart(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None:
        c = self._table.resolve(ref)
        if c.state.running:
            await self._stop(c, timeout, signal_name)
        live = self._table.live(c.id)
        async with live.lock:
            c = self.call_off_restart(self._table.current(c), live)
            if not c.state.running:
                await self.start_locked(c, live)
        self._emit("restart", self._table.current(c))

    async def pause(self, ref: str) -> None:
        c = self._table.resolve(ref)
        async with self._table.live(c.id).lock:
            c = self._table.current(c)
            if c.state.status is ContainerStatus.PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status is not ContainerStatus.RUNNING:
                raise Conflict(f"Container {c.id} is not running")
            await self._driver.pause(c.runtime, c.id)
            c = self._table.publish(c.id, replace(c.state, status=ContainerStatus.PAUSED))
            self._health.stopped(c.id)
        self._emit("pause", c)

    async def unpause(self, ref: str) -> None:
        c = self._table.resolve(ref)
        async with self._table.live(c.id).lock:
            c = self._table.current(c)
            if c.state.status is not ContainerStatus.PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await self._driver.resume(c.runtime, c.id)
            c = self._table.publish(c.id, replace(c.state, status=ContainerStatus.RUNNING))
            self._health.resumed(c)
        self._emit("unpause", c)

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self._table.resolve(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        self._driver.resize(self._files(c.id).bundle, height, width)
        self._emit("resize", c, height=str(height), width=str(width))

    # ---- wait --------------------------------------------------------------------------

    def waiter(self, ref: str, condition: str = "not-running") -> asyncio.Future[ExitStatus]:
        """What `POST /wait` awaits; the container is resolved now, so a 404 comes first."""
        c = self._table.resolve(ref)
        if condition in ("", "not-running"):
            if not c.state.running:
                done: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
                done.set_result(ExitStatus(c.state.exit_code))
                return done
            return self._table.next_exit(c.id)
        if condition == "next-exit":
            return self._table.next_exit(c.id)
        if condition == "removed":
            return self._table.removal(c.id)
        raise InvalidArgument(f"invalid condition: {condition!r}")
