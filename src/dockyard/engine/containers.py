"""Containers: create, start, stop, kill, remove, wait, and the exit path.

One ContainerService owns every container. Readers (`ps`, `inspect`) read the
current immutable snapshot and never wait. Lifecycle changes of one container
take its lock: decide -> do the I/O -> one short transaction -> publish the
new snapshot -> emit the event. Waiting for an exit never holds the lock, so
the exit path (which takes it) can always run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal as signals
import time
from dataclasses import dataclass, field, replace

from dockyard.config import DaemonConfig
from dockyard.engine.bundles import ContainerFiles, write_bundle
from dockyard.engine.events import EventBus
from dockyard.engine.images import ImageService
from dockyard.errors import Conflict, InvalidArgument, NotFound, NotModified
from dockyard.layers.overlay import LayerDirs
from dockyard.linux.fs import Trash
from dockyard.linux.process import ProcessHandle, boot_id, start_time
from dockyard.model import times
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    merge_image_config,
    restart_delay,
)
from dockyard.model.filters import Filters, parse_time_filter
from dockyard.model.ids import new_id
from dockyard.model.mounts import parse_mounts
from dockyard.model.names import generate_name, validate_name
from dockyard.model.signals import parse_signal
from dockyard.network.netns import NetnsPool
from dockyard.runtime import conmon
from dockyard.runtime.attach import AttachConnection
from dockyard.runtime.oci import OciRuntime
from dockyard.store.containers import ContainerRepository

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10


@dataclass(frozen=True)
class ExitStatus:
    code: int
    error: str = ""


@dataclass
class _Live:
    """Run-time handles of one container; never persisted, rebuilt at start-up."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exit_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    removal_waiters: list[asyncio.Future[ExitStatus]] = field(default_factory=list)
    pending_attach: list[asyncio.Future[AttachConnection | None]] = field(default_factory=list)
    process: ProcessHandle | None = None
    monitor: ProcessHandle | None = None
    runtime_cleanup: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    restart_delay: float = 0.0
    stopped_by_user: bool = False


class ContainerService:
    def __init__(
        self,
        config: DaemonConfig,
        repo: ContainerRepository,
        images: ImageService,
        dirs: LayerDirs,
        events: EventBus,
        netns: NetnsPool,
    ) -> None:
        self._config = config
        self._netns = netns
        self._repo = repo
        self._images = images
        self._dirs = dirs
        self._events = events
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._live: dict[str, _Live] = {}
        self._group: asyncio.TaskGroup | None = None
        self._trash = Trash(config.data_root / "trash")
        self._boot_id = boot_id()
        self._runtimes = {
            name: OciRuntime(name, opt.path, str(config.exec_root / "runtime" / name), opt.args)
            for name, opt in config.runtimes.items()
        }
        for c in repo.all():
            self._containers[c.id] = c
            self._names[c.name] = c.id
            self._live[c.id] = _Live()

    # ---- wiring ------------------------------------------------------------------------

    def bind(self, group: asyncio.TaskGroup) -> None:
        """Background work (exit watchers) runs in the daemon's TaskGroup."""
        self._group = group

    def users_of(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c.id, c.state.running) for c in self._containers.values() if c.image_id == image_id]

    def count_using(self, image_id: str) -> int:
        return sum(1 for c in self._containers.values() if c.image_id == image_id)

    def files(self, container_id: str) -> ContainerFiles:
        return ContainerFiles(self._config, container_id)

    # ---- reads -------------------------------------------------------------------------

    def all(self) -> list[Container]:
        return list(self._containers.values())

    def get(self, container_id: str) -> Container | None:
        return self._containers.get(container_id)

    def resolve(self, ref: str) -> Container:
        """By full id, name, or unique id prefix (dockerd's order)."""
        found = self._containers.get(ref)
        if found is not None:
            return found
        by_name = self._names.get(ref.lstrip("/"))
        if by_name is not None:
            return self._containers[by_name]
        if ref and all(ch in "0123456789abcdef" for ch in ref):
            matches = [c for i, c in self._containers.items() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def query(self, filters: Filters, include_all: bool, limit: int = -1) -> list[Container]:
        filters.validate(
            ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume",
             "network", "health", "is-task", "publish", "expose")
        )  # fmt: skip
        statuses = filters.values("status")
        for status in statuses:
            if status not in {s.value for s in ContainerStatus}:
                raise InvalidArgument(f"invalid filter 'status={status}'")
        ordered = sorted(self._containers.values(), key=lambda c: c.created, reverse=True)
        before = self._bound(filters, "before")
        since = self._bound(filters, "since")
        ancestors = {self._images.resolve(a).id for a in filters.values("ancestor") if self._image_known(a)}
        out = []
        for c in ordered:
            if not include_all and not c.state.running and not filters.has("status") and not filters.has("exited"):
                continue
            if filters.has("id") and not any(c.id.startswith(v) for v in filters.values("id")):
                continue
            if filters.has("name") and not any(v.lstrip("/") in c.name for v in filters.values("name")):
                continue
            if not filters.match_labels(c.spec.labels):
                continue
            if statuses and c.state.status.value not in statuses:
                continue
            if filters.has("exited") and (
                c.state.status is not ContainerStatus.EXITED
                or str(c.state.exit_code) not in filters.values("exited")
            ):
                continue
            if filters.has("ancestor") and c.image_id not in ancestors:
                continue
            if before is not None and c.created >= before.created:
                continue
            if since is not None and c.created <= since.created:
                continue
            out.append(c)
        return out[:limit] if limit > 0 else out

    def _image_known(self, name: str) -> bool:
        try:
            self._images.resolve(name)
            return True
        except NotFound:
            return False

    def _bound(self, filters: Filters, key: str) -> Container | None:
        values = filters.values(key)
        return self.resolve(next(iter(values))) if values else None

    def counts(self) -> tuple[int, int, int, int]:
        running = paused = stopped = 0
        for c in self._containers.values():
            if c.state.status is ContainerStatus.RUNNING:
                running += 1
            elif c.state.status is ContainerStatus.PAUSED:
                paused += 1
            else:
                stopped += 1
        return len(self._containers), running, paused, stopped

    # ---- create ------------------------------------------------------------------------

    def _reserve_name(self, name: str, container_id: str) -> str:
        if name:
            name = validate_name(name)
            holder = self._names.get(name)
            if holder is not None:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container "{holder}". '
                    "You have to remove (or rename) that container to be able to reuse that name."
                )
        else:
            name = generate_name()
            while name in self._names:
                name = generate_name()
        self._names[name] = container_id
        return name

    async def create(self, spec: ContainerSpec, name: str) -> Container:
        image = self._images.resolve(spec.image)
        container_id = new_id()
        spec = merge_image_config(spec, image.image.config)
        if not spec.hostname:
            spec = replace(spec, hostname=container_id[:12])
        if not spec.argv:
            raise InvalidArgument("no command specified")
        runtime = spec.host.runtime or self._config.default_runtime
        if runtime not in self._runtimes:
            raise InvalidArgument(f"unknown or invalid runtime name: {runtime}")
        if spec.host.network_mode not in ("default", "bridge", "none", ""):
            raise NotFound(f"network {spec.host.network_mode} not found")
        if spec.host.port_bindings and any(spec.host.port_bindings.values()) or spec.host.publish_all_ports:
            raise InvalidArgument("publishing ports is not supported yet: containers have loopback only")
        parse_mounts(spec.host.binds, spec.host.tmpfs)  # refuse a bad mount now, not at start
        if spec.host.auto_remove and spec.host.restart_policy.name not in ("", "no"):
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        name = self._reserve_name(name, container_id)
        files = self.files(container_id)
        rw_layer = self._dirs.new_cache_id()
        container = Container(
            id=container_id,
            name=name,
            created=times.now(),
            image_id=image.id,
            spec=spec,
            state=ContainerState(),
            runtime=runtime,
            rw_layer=rw_layer,
        )
        try:
            await asyncio.to_thread(self._prepare_files, files, rw_layer, spec.hostname)
            self._repo.add(container)
        except BaseException:
            self._names.pop(name, None)
            await asyncio.to_thread(self._remove_files, files, rw_layer)
            raise
        self._containers[container_id] = container
        self._live[container_id] = _Live()
        self._events.publish("container", "create", container_id, self._attrs(container))
        return container

    def _prepare_files(self, files: ContainerFiles, rw_layer: str, hostname: str) -> None:
        self._dirs.create_rw(rw_layer)
        files.write_host_files(hostname)

    def _remove_files(self, files: ContainerFiles, rw_layer: str) -> None:
        """Move the container's directories to the trash (fast renames); emptied later."""
        self._dirs.discard(rw_layer, self._trash)
        self._trash.discard(files.data)
        shutil.rmtree(files.bundle, ignore_errors=True)  # a few small files on tmpfs

    async def _empty_trash(self) -> None:
        await asyncio.to_thread(self._trash.empty)

    def _attrs(self, c: Container, **extra: str) -> dict[str, str]:
        return {**c.spec.labels, "image": c.spec.image, "name": c.name, **extra}

    def _set_state(self, container_id: str, state: ContainerState) -> Container:
        """Persist, then publish the new snapshot."""
        self._repo.save_state(container_id, state)
        updated = replace(self._containers[container_id], state=state)
        self._containers[container_id] = updated
        return updated

    # ---- start -------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.resolve(ref)
        live = self._live[c.id]
        async with live.lock:
            c = self._containers[c.id]
            if c.state.status in (ContainerStatus.RUNNING, ContainerStatus.PAUSED):
                raise NotModified("container already started")
            if c.state.status is ContainerStatus.RESTARTING:
                c = self._cancel_restart(c, live)
            if c.state.status in (ContainerStatus.REMOVING, ContainerStatus.DEAD):
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            await self._start_locked(c, live)

    async def _start_locked(self, c: Container, live: _Live, *, keep_restart_count: bool = False) -> None:
        if live.runtime_cleanup is not None:
            await live.runtime_cleanup  # the runtime must have forgotten the last run
            live.runtime_cleanup = None
        files = self.files(c.id)
        runtime = self._runtimes[c.runtime]
        if runtime.has_state(c.id):
            await runtime.delete(c.id, force=True)  # left by a daemon that stopped mid-cleanup
        lowers = self._images.layer_cache_ids(c.image_id)
        t0 = time.perf_counter()
        rootfs = await asyncio.to_thread(self._dirs.mount, c.rw_layer, lowers)
        t_mount = time.perf_counter()
        created: conmon.Created | None = None
        netns = ""
        try:
            netns = str(await self._netns.take())
            await asyncio.to_thread(write_bundle, c, files, rootfs, netns)
            t_bundle = time.perf_counter()
            created = await conmon.create(
                conmon.ConmonRequest(
                    container_id=c.id,
                    name=c.name,
                    runtime_path=runtime.path,
                    runtime_args=runtime.global_args,
                    bundle=files.bundle,
                    log_path=files.log,
                    exit_dir=files.exit_dir,
                    persist_dir=files.persist,
                    tty=c.spec.tty,
                    stdin=c.spec.open_stdin,
                    stdin_once=c.spec.stdin_once,
                )
            )
            live.process = ProcessHandle(created.pid)
            live.monitor = ProcessHandle(created.monitor_pid)
            t_created = time.perf_counter()
            await self._connect_pending_attach(c, live)
            await runtime.start(c.id)
            t_started = time.perf_counter()
            log.debug(
                "container %s: mount %.1f ms, bundle %.1f ms, create %.1f ms, start %.1f ms",
                c.id[:12], (t_mount - t0) * 1e3, (t_bundle - t_mount) * 1e3,
                (t_created - t_bundle) * 1e3, (t_started - t_created) * 1e3,
            )  # fmt: skip
        except BaseException as exc:
            await self._undo_start(c, live, created is not None)
            await self._netns.release(netns)
            if not isinstance(exc, asyncio.CancelledError):
                message = getattr(exc, "message", str(exc))
                self._set_state(c.id, replace(c.state, error=message, exit_code=_start_exit_code(message)))
                if c.spec.host.auto_remove and self._group is not None:
                    # As dockerd: a --rm container that cannot start is removed (after this lock).
                    self._group.create_task(self._quiet_remove(c.id))
            raise
        state = ContainerState(
            status=ContainerStatus.RUNNING,
            pid=created.pid,
            started_at=times.now(),
            restart_count=c.state.restart_count if keep_restart_count else 0,
            monitor_pid=created.monitor_pid,
            pid_start_time=start_time(created.pid),
            boot_id=self._boot_id,
            netns=netns,
        )
        live.stopped_by_user = False
        if not keep_restart_count:
            live.restart_delay = 0.0
        c = self._set_state(c.id, state)
        self._events.publish("container", "start", c.id, self._attrs(c))
        self._watch(c.id, live.monitor)

    async def _undo_start(self, c: Container, live: _Live, created: bool) -> None:
        runtime = self._runtimes[c.runtime]
        if created:
            with contextlib.suppress(Exception):
                await runtime.delete(c.id, force=True)
            if live.monitor is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await live.monitor.wait()
        for handle in (live.process, live.monitor):
            if handle is not None:
                handle.close()
        live.process = live.monitor = None
        for fut in live.pending_attach:
            if not fut.done():
                fut.set_result(None)
        live.pending_attach.clear()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._dirs.unmount, c.rw_layer)

    def _watch(self, container_id: str, monitor: ProcessHandle) -> None:
        assert self._group is not None, "ContainerService.bind() was not called"
        self._group.create_task(self._watch_exit(container_id, monitor), name=f"exit-{container_id[:12]}")

    async def _watch_exit(self, container_id: str, monitor: ProcessHandle) -> None:
        await monitor.wait()
        log.debug("container %s: monitor exited", container_id[:12])
        await self._settle_exit(container_id)

    async def _settle_exit(self, container_id: str) -> None:
        try:
            await self._on_exit(container_id)
        except Exception:
            log.exception("container %s: exit handling failed", container_id[:12])

    # ---- the exit path -----------------------------------------------------------------

    async def _on_exit(self, container_id: str) -> None:
        live = self._live.get(container_id)
        if live is None:
            return
        async with live.lock:
            c = self._containers[container_id]
            files = self.files(container_id)
            code = conmon.read_exit_code(files.exit_dir, container_id)
            error = "" if code is not None else "container monitor exited without an exit code"
            oom = conmon.oom_killed(files.persist)
            await self._cleanup_runtime(c, live)
            state = replace(
                c.state,
                status=ContainerStatus.EXITED,
                pid=0,
                exit_code=code if code is not None else 255,
                error=error,
                oom_killed=oom,
                finished_at=times.now(),
                monitor_pid=0,
                pid_start_time=0,
                netns="",
                manually_stopped=live.stopped_by_user,
            )
            policy = c.spec.host.restart_policy
            restart = policy.should_restart(state.exit_code, state.restart_count, live.stopped_by_user)
            if restart:
                state = replace(state, status=ContainerStatus.RESTARTING)
            c = self._set_state(container_id, state)
            if oom:
                self._events.publish("container", "oom", c.id, self._attrs(c))
            self._events.publish("container", "die", c.id, self._attrs(c, exitCode=str(state.exit_code)))
            log.debug("container %s: exit recorded", c.id[:12])
            status = ExitStatus(state.exit_code, error)
            for fut in live.exit_waiters:
                if not fut.done():
                    fut.set_result(status)
            live.exit_waiters.clear()
        if restart:
            ran_for = (times.parse_ns(state.finished_at) - times.parse_ns(state.started_at)) / 1e9
            live.restart_delay = restart_delay(live.restart_delay, ran_for)
            assert self._group is not None
            live.restart_task = self._group.create_task(self._restart_later(container_id, live.restart_delay))
        elif c.spec.host.auto_remove:
            try:
                await self.remove(container_id, force=True)
            except NotFound:
                pass

    async def _restart_later(self, container_id: str, delay: float) -> None:
        """The restart policy's automatic start, after its back-off delay."""
        await asyncio.sleep(delay)
        live = self._live.get(container_id)
        if live is None:
            return
        async with live.lock:
            live.restart_task = None
            c = self._containers.get(container_id)
            if c is None or c.state.status is not ContainerStatus.RESTARTING:
                return  # stopped or removed meanwhile
            if live.stopped_by_user:  # a stop or rm is waiting for this lock
                self._cancel_restart(c, live)
                return
            c = self._set_state(c.id, replace(c.state, restart_count=c.state.restart_count + 1))
            try:
                await self._start_locked(c, live, keep_restart_count=True)
            except Exception:
                log.exception("container %s: restart failed", c.id[:12])
                c = self._containers[c.id]
                self._set_state(c.id, replace(c.state, status=ContainerStatus.EXITED))

    def _cancel_restart(self, c: Container, live: _Live) -> Container:
        """A pending automatic restart is called off (stop, rm): the container stays exited."""
        if live.restart_task is not None:
            live.restart_task.cancel()
            live.restart_task = None
        if c.state.status is ContainerStatus.RESTARTING:
            c = self._set_state(c.id, replace(c.state, status=ContainerStatus.EXITED, manually_stopped=True))
        return c

    async def _cleanup_runtime(self, c: Container, live: _Live) -> None:
        """After an exit: unmount now; the runtime's own state is deleted in the background
        (a start of the same container waits for it), off the path of `docker run --rm`."""
        for handle in (live.process, live.monitor):
            if handle is not None:
                handle.close()
        live.process = live.monitor = None
        try:
            await asyncio.to_thread(self._dirs.unmount, c.rw_layer)
        except Exception:
            log.exception("container %s: unmount failed", c.id[:12])
        await self._netns.release(c.state.netns)
        assert self._group is not None
        live.runtime_cleanup = self._group.create_task(self._delete_runtime_state(c))

    async def _delete_runtime_state(self, c: Container) -> None:
        try:
            await self._runtimes[c.runtime].delete(c.id, force=True)
        except Exception:
            log.exception("container %s: runtime delete failed", c.id[:12])

    # ---- signals, stop, restart --------------------------------------------------------

    def _signal(self, c: Container, sig: int) -> None:
        live = self._live[c.id]
        if not c.state.running or live.process is None:
            raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")
        if not live.process.send(sig):
            raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")

    async def kill(self, ref: str, signal_name: str = "") -> None:
        c = self.resolve(ref)
        sig = parse_signal(signal_name) if signal_name else signals.SIGKILL
        if c.state.status is ContainerStatus.PAUSED and sig == signals.SIGKILL:
            await self._runtimes[c.runtime].resume(c.id)
        if sig in (signals.SIGKILL, parse_signal(c.spec.stop_signal or "SIGTERM")):
            # Killed on purpose: the restart policy leaves it down. (HUP, USR1... are messages.)
            self._live[c.id].stopped_by_user = True
        self._signal(c, sig)
        self._events.publish("container", "kill", c.id, self._attrs(c, signal=str(sig)))

    def _exit_future(self, container_id: str) -> asyncio.Future[ExitStatus]:
        fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._live[container_id].exit_waiters.append(fut)
        return fut

    async def stop(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None:
        c = self.resolve(ref)
        if c.state.status is ContainerStatus.RESTARTING:
            async with self._live[c.id].lock:
                c = self._cancel_restart(self._containers[c.id], self._live[c.id])
            if not c.state.running:  # else the restart won the race: stop it below
                self._events.publish("container", "stop", c.id, self._attrs(c))
                return
        if not c.state.running:
            raise NotModified("container already stopped")
        await self._stop(c, timeout, signal_name)
        self._events.publish("container", "stop", c.id, self._attrs(self._containers.get(c.id, c)))

    async def _stop(self, c: Container, timeout: int | None, signal_name: str = "") -> None:
        sig = parse_signal(signal_name or c.spec.stop_signal or "SIGTERM")
        if timeout is None:
            timeout = c.spec.stop_timeout if c.spec.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
        if c.state.status is ContainerStatus.PAUSED:
            # A frozen process cannot act on a signal; thaw it first, as dockerd does.
            await self.unpause(c.id)
            c = self._containers[c.id]
        exited = self._exit_future(c.id)
        self._live[c.id].stopped_by_user = True
        try:
            self._signal(c, sig)
        except Conflict:
            exited.cancel()
            return
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
            self._signal(self._containers[c.id], signals.SIGKILL)
        await exited

    async def restart(self, ref: str, timeout: int | None = None, signal_name: str = "") -> None:
        c = self.resolve(ref)
        if c.state.running:
            await self._stop(c, timeout, signal_name)
        live = self._live[c.id]
        async with live.lock:
            c = self._cancel_restart(self._containers[c.id], live)
            if not c.state.running:
                await self._start_locked(c, live)
        self._events.publish("container", "restart", c.id, self._attrs(self._containers[c.id]))

    async def pause(self, ref: str) -> None:
        c = self.resolve(ref)
        async with self._live[c.id].lock:
            c = self._containers[c.id]
            if c.state.status is ContainerStatus.PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status is not ContainerStatus.RUNNING:
                raise Conflict(f"Container {c.id} is not running")
            await self._runtimes[c.runtime].pause(c.id)
            c = self._set_state(c.id, replace(c.state, status=ContainerStatus.PAUSED))
        self._events.publish("container", "pause", c.id, self._attrs(c))

    async def unpause(self, ref: str) -> None:
        c = self.resolve(ref)
        async with self._live[c.id].lock:
            c = self._containers[c.id]
            if c.state.status is not ContainerStatus.PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await self._runtimes[c.runtime].resume(c.id)
            c = self._set_state(c.id, replace(c.state, status=ContainerStatus.RUNNING))
        self._events.publish("container", "unpause", c.id, self._attrs(c))

    # ---- wait --------------------------------------------------------------------------

    async def wait(self, ref: str, condition: str = "not-running") -> ExitStatus:
        c = self.resolve(ref)
        live = self._live[c.id]
        if condition in ("", "not-running"):
            if not c.state.running:
                return ExitStatus(c.state.exit_code)
            return await self._exit_future(c.id)
        if condition == "next-exit":
            return await self._exit_future(c.id)
        if condition == "removed":
            fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
            live.removal_waiters.append(fut)
            return await fut
        raise InvalidArgument(f"invalid condition: {condition!r}")

    # ---- remove ------------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False) -> None:
        for _ in range(3):
            c = self.resolve(ref)
            live = self._live[c.id]
            if c.state.running or c.state.status is ContainerStatus.RESTARTING:
                if not force:
                    state = "restarting" if c.state.status is ContainerStatus.RESTARTING else "running"
                    raise Conflict(
                        f"cannot remove container \"/{c.name}\": container is {state}: stop the "
                        "container before removing or force remove"
                    )
                live.stopped_by_user = True  # no restart policy brings it back
            if c.state.running:
                exited = self._exit_future(c.id)
                with contextlib.suppress(Conflict):
                    if c.state.status is ContainerStatus.PAUSED:
                        await self._runtimes[c.runtime].resume(c.id)
                    self._signal(c, signals.SIGKILL)
                await exited
            async with live.lock:
                current = self._containers.get(c.id)
                if current is None:
                    return  # removed meanwhile (auto-remove)
                current = self._cancel_restart(current, live)
                if current.state.running:
                    continue  # an automatic restart won the race: kill it again
                await self._remove_locked(current, live)
                return
        raise Conflict(f"container {ref} keeps starting again; not removing it")

    async def _remove_locked(self, c: Container, live: _Live) -> None:
        """The removal itself, under the container's lock, once nothing runs."""
        if c.state.status is ContainerStatus.REMOVING:
            raise Conflict(f"removal of container {c.id} is already in progress")
        self._set_state(c.id, replace(c.state, status=ContainerStatus.REMOVING))
        files = self.files(c.id)
        try:
            await asyncio.to_thread(self._remove_files, files, c.rw_layer)
        except Exception:
            self._set_state(c.id, replace(c.state, status=ContainerStatus.DEAD))
            raise
        self._repo.delete(c.id)
        assert self._group is not None
        self._group.create_task(self._empty_trash())
        del self._containers[c.id]
        self._names.pop(c.name, None)
        self._live.pop(c.id, None)
        self._events.publish("container", "destroy", c.id, self._attrs(c))
        log.debug("container %s: removed", c.id[:12])
        status = ExitStatus(c.state.exit_code)
        for fut in live.removal_waiters + live.exit_waiters:
            if not fut.done():
                fut.set_result(status)
        for pending in live.pending_attach:
            if not pending.done():
                pending.set_result(None)

    async def prune(self, filters: Filters) -> tuple[list[str], int]:
        """Remove every stopped container the filters select: (ids, bytes freed)."""
        filters.validate(("label", "label!", "until"))
        now = time.time_ns()
        until = min((parse_time_filter(v, now) for v in filters.values("until")), default=None)
        removed: list[str] = []
        freed = 0
        for c in list(self._containers.values()):
            if c.state.running or c.state.status is ContainerStatus.REMOVING:
                continue
            if not filters.match_labels(c.spec.labels):
                continue
            if until is not None and times.parse_ns(c.created) > until:
                continue
            size = await asyncio.to_thread(self._dirs.size, c.rw_layer)
            try:
                await self.remove(c.id)
            except (NotFound, Conflict):
                continue  # started or removed meanwhile
            removed.append(c.id)
            freed += size
        self._events.publish("container", "prune", "", {"reclaimed": str(freed)})
        return removed, freed

    async def sizes(self, c: Container) -> dict[str, int]:
        """Docker's SizeRw (the writable layer) and SizeRootFs (that plus the image)."""
        rw = await asyncio.to_thread(self._dirs.size, c.rw_layer)
        return {"SizeRw": rw, "SizeRootFs": rw + self._images.size_of(c.image_id)}

    # ---- rename, resize ----------------------------------------------------------------

    async def rename(self, ref: str, new_name: str) -> None:
        c = self.resolve(ref)
        if not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        new_name = validate_name(new_name)
        if new_name == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        holder = self._names.get(new_name)
        if holder is not None:
            raise Conflict(
                f'Conflict. The container name "/{new_name}" is already in use by container "{holder}". '
                "You have to remove (or rename) that container to be able to reuse that name."
            )
        self._names[new_name] = c.id
        try:
            self._repo.rename(c.id, new_name)
        except BaseException:
            self._names.pop(new_name, None)
            raise
        self._names.pop(c.name, None)
        self._containers[c.id] = replace(self._containers[c.id], name=new_name)
        self._events.publish("container", "rename", c.id, self._attrs(self._containers[c.id], oldName="/" + c.name))

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.resolve(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        conmon.resize(self.files(c.id).bundle, height, width)

    # ---- attach ------------------------------------------------------------------------

    async def attach_connection(self, ref: str) -> AttachConnection | None:
        """conmon's attach socket for this container: now if it runs, else once it starts.

        None when the container goes away before it ever runs.
        """
        c = self.resolve(ref)
        live = self._live[c.id]
        if c.state.running:
            try:
                return await AttachConnection.connect(self.files(c.id).attach_socket)
            except Conflict:
                if self._containers.get(c.id, c).state.running and live.monitor is not None:
                    raise
                return None  # it exited just now: nothing more to attach to
        fut: asyncio.Future[AttachConnection | None] = asyncio.get_running_loop().create_future()
        live.pending_attach.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                live.pending_attach.remove(fut)
            connected = fut.result() if fut.done() and not fut.cancelled() else None
            if connected is not None:
                connected.close()
            raise

    async def _connect_pending_attach(self, c: Container, live: _Live) -> None:
        """Before the process runs, connect everyone who attached early: no output is lost."""
        waiting, live.pending_attach = live.pending_attach, []
        path = self.files(c.id).attach_socket
        for fut in waiting:
            if fut.done():
                continue
            fut.set_result(await AttachConnection.connect(path))

    def note_attach(self, c: Container) -> None:
        self._events.publish("container", "attach", c.id, self._attrs(c))

    # ---- start-up ----------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Match the database to what runs: adopt live monitors, settle the rest."""
        assert self._group is not None, "ContainerService.bind() was not called"
        self._netns.bind(self._group, {c.state.netns for c in self._containers.values() if c.state.running})
        for c in list(self._containers.values()):
            live = self._live[c.id]
            st = c.state
            if st.status is ContainerStatus.REMOVING:
                self._set_state(c.id, replace(st, status=ContainerStatus.DEAD))
                continue
            if not st.running:
                continue
            monitor = None
            if st.boot_id == self._boot_id:
                monitor = ProcessHandle.adopt(st.monitor_pid, 0)
                if monitor is not None and not _is_monitor_of(st.monitor_pid, c.id):
                    monitor.close()
                    monitor = None
            if monitor is not None:
                live.monitor = monitor
                live.process = ProcessHandle.adopt(st.pid, st.pid_start_time)
                log.info("container %s: adopted running monitor %d", c.id[:12], st.monitor_pid)
                self._watch(c.id, monitor)
            else:
                log.info("container %s: exited while the daemon was away", c.id[:12])
                self._group.create_task(self._settle_exit(c.id))
        self._group.create_task(self._empty_trash())  # left by a crash mid-removal
        for c in list(self._containers.values()):
            if c.state.status is ContainerStatus.RESTARTING:
                c = self._set_state(c.id, replace(c.state, status=ContainerStatus.EXITED))
            if not c.state.running and c.state.status is not ContainerStatus.CREATED and c.spec.host.restart_policy.on_daemon_start(
                c.state.exit_code, c.state.manually_stopped
            ):
                self._group.create_task(self._start_on_boot(c.id))
        for c in list(self._containers.values()):
            if c.spec.host.auto_remove and c.state.status is ContainerStatus.EXITED:
                self._group.create_task(self._quiet_remove(c.id))

    async def _start_on_boot(self, container_id: str) -> None:
        try:
            await self.start(container_id)
            log.info("container %s: started by its restart policy", container_id[:12])
        except Exception:
            log.exception("container %s: restart policy start failed", container_id[:12])

    async def _quiet_remove(self, container_id: str) -> None:
        try:
            await self.remove(container_id, force=True)
        except Exception:
            log.exception("container %s: auto-remove failed", container_id[:12])


def _start_exit_code(message: str) -> int:
    """dockerd's exit code for a failed start; the CLI picks its own from the same words."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 128


def _is_monitor_of(pid: int, container_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return container_id.encode() in f.read()
    except OSError:
        return False
