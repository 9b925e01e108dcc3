"""An exec session under a monitor of its own (dockyard-monitor --exec-process, or
`conmon --exec` as podman runs them).

Each session has a directory of its own: process.json, the attach socket (`attach`, the
same SEQPACKET protocol as a container's), the control fifo (`ctl`, for resize), pid files
and `exit/<container-id>`, where the monitor writes the exit code.

Both monitors do the same handshake (conmon 2.1.6, src/conmon.c; "conmon" below stands for
either), with three pipes named in the environment:
  _OCI_STARTPIPE  conmon reads it twice: once before it forks (we pre-fill that byte: we need
                  no time to move it into a cgroup), and once in the child that runs
                  `runc exec`, which waits there until we say go;
  _OCI_ATTACHPIPE conmon writes {"data": 0} once the attach socket and ctl fifo exist;
  _OCI_SYNCPIPE   conmon writes {"data": <pid>} after `runc exec --detach` succeeded, or
                  {"data": -1, "message": "<runtime stderr>"} when it failed.
Between the attach message and our go we connect to the attach socket (so not a byte of
output is lost) and open a pidfd on the session's conmon (it cannot exit while it waits
for us, so the pidfd is surely the right process). conmon closes the attach socket when the
process has exited and its output is drained, then writes the exit file and exits. (It
also writes the exit code to the sync pipe, which we closed once the pid was known: that
write fails after the exit file is written, and only changes conmon's own exit status.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError, Internal
from dockyard.linux.capabilities import bounding_set
from dockyard.linux.process import ProcessHandle
from dockyard.runtime import monitor as monitors
from dockyard.runtime.attach import AttachConnection
from dockyard.runtime.execspec import ExecSpec, exec_process
from dockyard.runtime.failures import start_failure
from dockyard.runtime.monitor import PID_FILE, Monitor, MonitorKind, parse_message

log = logging.getLogger(__name__)

_TIMEOUT = 30.0
_GO = b"0"


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    exec_id: str
    bundle: Path  # the container's bundle: its config.json's process is the exec's base
    directory: Path  # the session's own directory, made by start_exec (e.g. <bundle>/exec/<exec_id>)
    runtime_path: str
    runtime_args: tuple[str, ...]  # global runtime flags, e.g. ("--root", "/run/dockyard/runc")
    spec: ExecSpec
    stdin: bool = False  # AttachStdin: the process reads what the attach socket sends
    attach: bool = True  # connect before the process starts; False for `exec -d`
    monitor: Monitor = field(kw_only=True)

    @property
    def process_file(self) -> Path:
        return self.directory / "process.json"

    @property
    def attach_socket(self) -> Path:
        return self.directory / "attach"

    @property
    def pid_file(self) -> Path:
        return self.directory / "pidfile"

    @property
    def monitor_pid_file(self) -> Path:
        return self.directory / PID_FILE

    @property
    def exit_dir(self) -> Path:
        return self.directory / "exit"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.container_id  # named after the container, as conmon's -c


def exec_argv(req: ExecRequest) -> list[str]:
    if req.monitor.kind is MonitorKind.CONMON:
        return _conmon_exec_argv(req)
    argv = [
        req.monitor.path, "--id", req.container_id, "--exec-id", req.exec_id,
        "--runtime", req.runtime_path, "--exec-process", str(req.process_file), "--dir", str(req.directory),
        "--pid-file", str(req.pid_file), "--monitor-pid-file", str(req.monitor_pid_file),
        "--exit-dir", str(req.exit_dir),
    ]  # fmt: skip
    for arg in req.runtime_args:
        argv += ["--runtime-arg", arg]
    if req.spec.tty:
        argv.append("--tty")
    if req.stdin:
        argv.append("--stdin")
        if req.spec.tty:
            argv.append("--leave-stdin-open")  # as below
    return argv


def _conmon_exec_argv(req: ExecRequest) -> list[str]:
    argv = [
        req.monitor.path, "--api-version", "1",
        "-c", req.container_id, "-u", req.exec_id,
        "-r", req.runtime_path, "-b", str(req.directory),
        "-p", str(req.pid_file), "-P", str(req.monitor_pid_file),
        # dockerd keeps exec output out of the container's log.
        "-l", "none",
        "--exit-dir", str(req.exit_dir),
        "--full-attach", "--socket-dir-path", str(req.directory),
        "--log-level", "error", "--no-sync-log",
        "-e", "--exec-attach", "--exec-process-spec", str(req.process_file),
    ]  # fmt: skip
    for arg in req.runtime_args:
        argv += ["--runtime-arg", arg]
    if req.spec.tty:
        argv.append("-t")
    if req.stdin:
        argv.append("-i")
        if req.spec.tty:
            # dockerd never closes a tty's stdin when the client leaves (detach keys, EOF):
            # only a pipe's stdin ends with the client's (attach.go: CloseStdin && !TTY).
            argv.append("--leave-stdin-open")
    return argv


class ExecProcess:
    """A started exec: its pid, its conmon (pidfd), and the attach connection if asked."""

    def __init__(self, req: ExecRequest, pid: int, monitor: ProcessHandle, attach: AttachConnection | None) -> None:
        self.request = req
        self.pid = pid
        self.monitor = monitor
        self.attach = attach

    @property
    def monitor_pid(self) -> int:
        return self.monitor.pid

    @property
    def exit_file(self) -> Path:
        return self.request.exit_file

    async def wait(self) -> int | None:
        """The exit code, once the session's conmon has exited (None: conmon recorded none)."""
        await self.monitor.wait()
        return read_exit_code(self.request)

    def resize(self, height: int, width: int) -> None:
        monitors.resize(self.request.directory, height, width)

    def close(self) -> None:
        """Release the pidfd and the attach socket, and remove the session's directory.
        Call it once wait() returned (the exit file lives there) and the attach pump ended."""
        self.monitor.close()
        if self.attach is not None:
            self.attach.close()
        shutil.rmtree(self.request.directory, ignore_errors=True)


def read_exit_code(req: ExecRequest) -> int | None:
    return monitors.read_exit_code(req.exit_dir, req.container_id)


class _MessagePipe:
    """conmon's JSON lines on one of its pipes, read without blocking the loop."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._buffer = b""
        self._eof = False

    async def next(self) -> dict[str, Any] | None:
        """The next message, or None once conmon closed its end."""
        loop = asyncio.get_running_loop()
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._fd, _set_once, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self._fd)
            try:
                chunk = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            self._eof = not chunk
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return parse_message(line)

    def close(self) -> None:
        os.close(self._fd)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _container_process(bundle: Path) -> dict[str, Any]:
    try:
        spec = json.loads((bundle / "config.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise Internal(f"cannot read the container's runtime config: {exc}") from exc
    process = spec.get("process") if isinstance(spec, dict) else None
    if not isinstance(process, dict):
        raise Internal("the container's runtime config has no process")
    return process


def _write_session(req: ExecRequest) -> None:
    process = exec_process(req.spec, _container_process(req.bundle), bounding_set() if req.spec.privileged else frozenset())
    req.directory.mkdir(parents=True, exist_ok=True)
    req.exit_dir.mkdir(exist_ok=True)
    fd = os.open(req.process_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(process).encode())


async def start_exec(req: ExecRequest) -> ExecProcess:
    """Run the exec's process under a new conmon; with `attach`, connected before it starts.

    Raises StartFailed (CommandNotRunnable 126/127, RuntimeFailed 128) when the runtime could
    not start the process, Internal when conmon itself failed. On any failure, and when
    cancelled, nothing is left: no process, no conmon, no session directory.
    """
    launch = _Launch(req)
    try:
        # A few small files on the exec root's tmpfs: not worth a thread hop on this hot path.
        _write_session(req)
        async with asyncio.timeout(_TIMEOUT):
            return await launch.run()
    except BaseException as exc:
        await launch.undo()
        if isinstance(exc, TimeoutError):
            raise Internal(f"the monitor did not start the exec within {_TIMEOUT:.0f}s") from None
        raise
    finally:
        launch.close_pipes()


class _Launch:
    """One start's moving parts, so that a failure at any step can undo the earlier ones."""

    def __init__(self, req: ExecRequest) -> None:
        self.req = req
        self.first: asyncio.subprocess.Process | None = None  # the conmon we spawn; it forks the monitor
        self.monitor: ProcessHandle | None = None
        self.attach: AttachConnection | None = None
        self.sync: _MessagePipe | None = None
        self.ready: _MessagePipe | None = None
        self.start_w = -1
        self.went = False  # the go was sent: the runtime may have started the process

    async def run(self) -> ExecProcess:
        req = self.req
        t0 = time.perf_counter()
        first = await self._spawn()
        stderr = await first.stderr.read() if first.stderr is not None else b""
        # The first conmon exits once its daemonized child runs, after writing that child's pid.
        if await first.wait() != 0:
            raise Internal(f"the monitor failed to start the exec: {stderr.decode(errors='replace').strip()}")
        self.monitor = _open_monitor(req)
        assert self.ready is not None and self.sync is not None
        ready = await self.ready.next()
        if ready is None or ready.get("data") != 0:
            raise Internal(f"the monitor did not set up the exec session: {ready}")
        t_ready = time.perf_counter()
        if req.attach:
            self.attach = await AttachConnection.connect(req.attach_socket)
        self.went = True
        os.write(self.start_w, _GO)
        pid = _started_pid(await self.sync.next())
        t_started = time.perf_counter()
        log.debug(
            "exec %s: monitor ready %.1f ms, runtime exec %.1f ms",
            req.exec_id[:12], (t_ready - t0) * 1e3, (t_started - t_ready) * 1e3,
        )  # fmt: skip
        return ExecProcess(req, pid, self.monitor, self.attach)

    async def _spawn(self) -> asyncio.subprocess.Process:
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        self.sync = _MessagePipe(sync_r)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        self.ready = _MessagePipe(ready_r)
        start_r, self.start_w = os.pipe2(os.O_CLOEXEC)
        os.write(self.start_w, _GO)  # the pre-fork read: conmon may go ahead at once
        child_ends = (sync_w, start_r, ready_w)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "_OCI_SYNCPIPE": str(sync_w), "_OCI_STARTPIPE": str(start_r), "_OCI_ATTACHPIPE": str(ready_w),
        }  # fmt: skip
        spawning = asyncio.create_task(
            asyncio.create_subprocess_exec(
                *exec_argv(self.req),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                pass_fds=child_ends,
                cwd=self.req.directory,
                start_new_session=True,
            )
        )
        try:
            self.first = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            # Cancelled mid-spawn, asyncio would kill the first conmon but not a monitor it
            # already forked: let the spawn finish, so that undo() can find and end both.
            with contextlib.suppress(OSError):
                self.first = await spawning
            raise
        except OSError as exc:
            raise Internal(f"cannot start {self.req.monitor.kind}: {exc}") from exc
        finally:
            for fd in child_ends:
                os.close(fd)
        return self.first

    async def undo(self) -> None:
        """Called in the failing (or cancelled) task: it may still await, briefly."""
        if self.attach is not None:
            self.attach.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._find_monitor()
                if self.went and self.sync is not None:
                    # The runtime may be starting the process right now: learn its pid to end it.
                    with contextlib.suppress(DockyardError):
                        started = _started_pid(await self.sync.next())
                        with contextlib.suppress(OSError):
                            os.kill(started, 9)
                if self.monitor is not None:
                    self.monitor.send(9)  # a runtime still running dies with it (PDEATHSIG)
                    await self.monitor.wait()
        if self.monitor is not None:
            self.monitor.close()
        shutil.rmtree(self.req.directory, ignore_errors=True)

    async def _find_monitor(self) -> None:
        """The monitor when the failure came before we knew it; it waits for our go meanwhile."""
        if self.monitor is not None or self.first is None:
            return
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            await self.first.wait()
        with contextlib.suppress(DockyardError):
            self.monitor = _open_monitor(self.req)

    def close_pipes(self) -> None:
        for pipe in (self.sync, self.ready):
            if pipe is not None:
                pipe.close()
        if self.start_w >= 0:
            os.close(self.start_w)
            self.start_w = -1


def _started_pid(reply: dict[str, Any] | None) -> int:
    """The exec process's pid from conmon's sync message, or the runtime's failure raised."""
    if reply is None:
        raise Internal("the monitor exited without starting the exec")
    pid = reply.get("data")
    if not isinstance(pid, int) or pid <= 0:
        raise start_failure(str(reply.get("message") or ""), "exec")
    return pid


def _open_monitor(req: ExecRequest) -> ProcessHandle:
    try:
        pid = int(req.monitor_pid_file.read_text().strip())
        return ProcessHandle(pid)
    except (OSError, ValueError) as exc:
        raise Internal(f"the exec session's monitor is gone: {exc}") from exc
