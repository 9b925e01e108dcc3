"""Exec: commands run inside running containers (`docker exec`), and healthcheck probes.

Each exec is created (checked, recorded), then started once: detached, or attached through
a hijacked connection joined to its conmon's attach socket exactly as a container attach
is. One reaper task per started exec waits for its end, records the exit code and emits
`exec_die`; an attached session that saw the output end waits for that record, so the CLI,
which inspects the exec as soon as the stream closes, reads the real exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dockyard.engine.attach import AttachOptions, ClientStream, Framer, SessionEnd, pump
from dockyard.engine.bundles import ContainerFiles
from dockyard.engine.events import EventBus
from dockyard.engine.table import ContainerTable
from dockyard.errors import (
    Conflict,
    DockyardError,
    Internal,
    InvalidArgument,
    NotFound,
    StartFailed,
)
from dockyard.linux.process import ProcessHandle
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.detachkeys import key_bytes, parse_detach_keys
from dockyard.model.events import attributes_of
from dockyard.model.execs import Exec, ExecConfig, ExecStart, ExecState
from dockyard.model.health import ProbeResult, probe_output, timeout_message
from dockyard.model.ids import new_id
from dockyard.runtime.driver import RuntimeDriver
from dockyard.runtime.execsession import ExecProcess
from dockyard.runtime.execspec import ExecSpec
from dockyard.runtime.users import resolve_in_rootfs
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

_KEEP_FINISHED = 300.0  # seconds an ended exec stays inspectable (dockerd's exec GC period)
_EXIT_RECORD_WAIT = 10.0


@dataclass
class _Running:
    """Run-time handles of a started exec."""

    process: ExecProcess
    handle: ProcessHandle | None  # a pidfd on the exec's process, to kill a probe that hangs
    recorded: asyncio.Event = field(default_factory=asyncio.Event)
    session_done: asyncio.Event = field(default_factory=asyncio.Event)


class _Capture:
    """A client for probes: keeps the first 4 KiB of output, sends no input."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.cut = False

    async def read(self, n: int = 65536) -> bytes:
        await asyncio.Event().wait()  # never: a probe has no stdin
        return b""

    async def write(self, data: bytes) -> None:
        room = 4097 - len(self.data)  # one byte more tells probe_output to mark the cut
        self.data += data[:room]


class ExecService(Component):
    def __init__(
        self,
        table: ContainerTable,
        driver: RuntimeDriver,
        files: Callable[[str], ContainerFiles],
        rootfs_of: Callable[[Container], Path],
        events: EventBus,
    ) -> None:
        self._table = table
        self._driver = driver
        self._files = files
        self._rootfs_of = rootfs_of
        self._events = events
        self._execs: dict[str, Exec] = {}
        self._running: dict[str, _Running] = {}
        self._ended_at: dict[str, float] = {}
        self._tasks = Tasks("execs")

    # ---- reads -------------------------------------------------------------------------

    def get(self, exec_id: str) -> Exec:
        found = self._execs.get(exec_id)
        if found is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return found

    def container_user(self, e: Exec) -> str:
        c = self._table.get(e.container_id)
        return c.spec.user if c is not None else ""

    def running_ids(self, container_id: str) -> list[str]:
        """Container inspect's ExecIDs: the execs running in it now."""
        return [e.id for e in self._execs.values() if e.container_id == container_id and e.state.running]

    def forget(self, container_id: str) -> None:
        """The container is gone: so are its execs (inspect answers 404 for them)."""
        for exec_id in [i for i, e in self._execs.items() if e.container_id == container_id]:
            self._execs.pop(exec_id, None)
            self._ended_at.pop(exec_id, None)

    # ---- create ------------------------------------------------------------------------

    def _active(self, ref: str) -> Container:
        """dockerd's getActiveContainer: running, and neither paused nor restarting."""
        c = self._table.resolve(ref)
        if c.state.status is ContainerStatus.RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if not c.state.running:
            raise Conflict(f"container {c.id} is not running")
        if c.state.status is ContainerStatus.PAUSED:
            raise Conflict(f"Container {ref} is paused, unpause the container before exec")
        return c

    async def create(self, ref: str, config: ExecConfig) -> Exec:
        c = self._active(ref)
        if config.user:
            # A user the container does not know is refused now, not at start (dockerd).
            await asyncio.to_thread(resolve_in_rootfs, self._rootfs_of(c), config.user, c.spec.host.group_add)
        if config.detach_keys:
            try:
                key_bytes(config.detach_keys)
            except ValueError:
                raise Internal(f"Invalid escape keys ({config.detach_keys}) provided") from None
        self._collect()
        e = Exec(new_id(), c.id, config)
        self._execs[e.id] = e
        self._emit(c, f"exec_create: {e.command_line}", execID=e.id)
        return e

    def _collect(self) -> None:
        """Forget execs that ended long enough ago."""
        cutoff = time.monotonic() - _KEEP_FINISHED
        for exec_id in [i for i, t in self._ended_at.items() if t < cutoff]:
            self._execs.pop(exec_id, None)
            self._ended_at.pop(exec_id, None)

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        self._events.publish("container", action, c.id, attributes_of(c, **extra))

    # ---- start -------------------------------------------------------------------------

    def check_startable(self, exec_id: str) -> tuple[Exec, Container]:
        """dockerd's checks before a start: the exec exists, its container runs, it never ran."""
        e = self.get(exec_id)
        c = self._table.get(e.container_id)
        if c is None:
            raise NotFound(f"No such container: {exec_id}")
        c = self._active(c.id)
        if e.state.exit_code is not None:
            raise Conflict(f"exec command {e.id} has already run")
        if e.state.running or e.state.started:
            raise Conflict(f"exec command {e.id} is already running")
        return e, c

    async def _launch(self, e: Exec, c: Container, start: ExecStart, *, attach: bool) -> _Running:
        cfg = e.config
        self._execs[e.id] = replace(e, state=replace(e.state, started=True))
        self._emit(c, f"exec_start: {e.command_line}", execID=e.id)
        user = None
        if cfg.user:
            user = await asyncio.to_thread(resolve_in_rootfs, self._rootfs_of(c), cfg.user, c.spec.host.group_add)
        spec = ExecSpec(
            args=cfg.cmd,
            container_env=c.spec.env,
            env=cfg.env,
            hostname=c.spec.hostname,
            user=user,
            cwd=cfg.working_dir,
            tty=cfg.tty,
            console_size=start.console_size or cfg.console_size or (0, 0),
            privileged=cfg.privileged,
        )
        self._tasks.spawn(self._driver.prepay_cgroup_move(), "cgroup-prepay")  # the runtime joins its cgroups
        try:
            process = await self._driver.exec(
                c.runtime, c.id, e.id, self._files(c.id).bundle, spec, stdin=cfg.attach_stdin and attach, attach=attach
            )
        except BaseException as exc:
            code = exc.exit_code if isinstance(exc, StartFailed) else 126  # dockerd's default
            self._finish(e.id, code)
            raise
        try:
            handle: ProcessHandle | None = ProcessHandle(process.pid)
        except ProcessLookupError:
            handle = None  # already over: the reaper records it
        running = _Running(process, handle)
        self._running[e.id] = running
        self._execs[e.id] = replace(self._execs[e.id], state=ExecState(running=True, pid=process.pid, started=True))
        if not attach:
            running.session_done.set()
        self._tasks.spawn(self._reap(e.id, running), f"exec-{e.id[:12]}")
        return running

    async def start_detached(self, exec_id: str, start: ExecStart) -> None:
        e, c = self.check_startable(exec_id)
        await self._launch(e, c, start, attach=False)

    async def session(self, exec_id: str, start: ExecStart, client: ClientStream, frame: Framer) -> None:
        """An attached start, on the hijacked connection (checked before with check_startable)."""
        e, c = self.check_startable(exec_id)
        running = await self._launch(e, c, start, attach=True)
        try:
            assert running.process.attach is not None
            cfg = e.config
            opts = AttachOptions(
                stdin=cfg.attach_stdin,
                stdout=cfg.attach_stdout,
                stderr=cfg.attach_stderr,
                stdin_once=True,  # dockerd closes an exec's stdin when the client's ends
                tty=cfg.tty,
                detach_keys=parse_detach_keys(cfg.detach_keys),
            )
            ended = await pump(client, running.process.attach, opts, frame)
            if ended is SessionEnd.DETACHED:
                self._emit(c, "exec_detach", execID=e.id)
            elif ended is SessionEnd.OUTPUT_ENDED:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_EXIT_RECORD_WAIT):
                        await running.recorded.wait()
        finally:
            running.session_done.set()

    async def _reap(self, exec_id: str, running: _Running) -> None:
        try:
            code = await running.process.wait()
        finally:
            if running.handle is not None:
                running.handle.close()
        self._finish(exec_id, code if code is not None else 137)
        running.recorded.set()
        await running.session_done.wait()  # the session owns the attach socket until then
        self._running.pop(exec_id, None)
        await asyncio.to_thread(running.process.close)

    def _finish(self, exec_id: str, code: int) -> None:
        e = self._execs.get(exec_id)
        if e is None:
            return
        self._execs[exec_id] = replace(e, state=ExecState(running=False, exit_code=code, pid=e.state.pid, started=True))
        self._ended_at[exec_id] = time.monotonic()
        c = self._table.get(e.container_id)
        if c is not None:
            self._emit(c, "exec_die", execID=exec_id, exitCode=str(code))

    def resize(self, exec_id: str, height: int, width: int) -> None:
        e = self.get(exec_id)
        running = self._running.get(exec_id)
        if running is None:
            if e.state.exit_code is not None:
                raise Conflict(f"exec {e.id} is not running")
            raise InvalidArgument("exec process is not started")
        running.process.resize(height, width)

    # ---- healthcheck probes ------------------------------------------------------------

    async def probe(self, c: Container, argv: tuple[str, ...], timeout_ns: int) -> ProbeResult:
        """Run a healthcheck command as dockerd does: an exec with the container's user and
        working directory, stdout and stderr captured, killed when it takes too long."""
        start_ns = time.time_ns()
        capture = _Capture()
        try:
            e = await self.create(c.id, ExecConfig(cmd=argv, attach_stdout=True, attach_stderr=True))
            e, c = self.check_startable(e.id)
            running = await self._launch(e, c, ExecStart(), attach=True)
        except DockyardError as exc:
            return ProbeResult(start_ns, time.time_ns(), -1, exc.message)
        try:
            assert running.process.attach is not None
            opts = AttachOptions(stdin=False, stdout=True, stderr=True, stdin_once=True)
            async with asyncio.timeout(timeout_ns / 1e9):
                await pump(capture, running.process.attach, opts, lambda pipe, data: data)
                await running.recorded.wait()
        except TimeoutError:
            if running.handle is not None:
                running.handle.send(signal.SIGKILL)
            output = probe_output(bytes(capture.data))
            return ProbeResult(start_ns, time.time_ns(), -1, timeout_message(timeout_ns, output))
        finally:
            running.session_done.set()
        code = self._execs[e.id].state.exit_code if e.id in self._execs else None
        return ProbeResult(start_ns, time.time_ns(), code if code is not None else -1, probe_output(bytes(capture.data)))

