"""Starting a container under its monitor: dockyard-monitor (monitor.c) or conmon.

The monitor runs `<runtime> create`, holds the container's stdio (pipes or a pty), writes the
log spool (conmon's k8s-file, runtime/spool.py), records the exit code in <exit-dir>/<id> and
an OOM kill in <persist-dir>/oom, and serves the attach socket and the ctl fifo. It detaches
from the daemon, so containers outlive a daemon restart. Both monitors speak the same
protocol: the container's pid (or the runtime's error) comes back as a JSON line on the sync
pipe, the files are the same, and so is the attach socket (runtime/attach.py); only their
command lines differ (conmon's in runtime/conmon.py).

Which one is used is decided once, at start-up (`choose_monitor`): daemon.json `monitor`,
"auto" taking dockyard-monitor where dev/setup installed it and conmon elsewhere.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.config import MonitorChoice
from dockyard.errors import Internal, InvalidArgument
from dockyard.runtime.catalog import find_helper
from dockyard.runtime.conmon import CONMON, conmon_argv
from dockyard.runtime.failures import start_failure

log = logging.getLogger(__name__)

MONITOR_NAME = "dockyard-monitor"
PID_FILE = "conmon.pid"  # the monitor's own pid, in the bundle; either monitor writes it there
_SYNC_TIMEOUT = 60.0


class MonitorKind(enum.StrEnum):
    DOCKYARD = MONITOR_NAME
    CONMON = "conmon"


@dataclass(frozen=True)
class Monitor:
    kind: MonitorKind
    path: str


CONMON_MONITOR = Monitor(MonitorKind.CONMON, CONMON)


def choose_monitor(choice: MonitorChoice, dirs: tuple[Path, ...] | None = None) -> Monitor:
    """The monitor for this daemon's containers: the chosen one, or with "auto" ours where it
    is installed (dev/setup builds it) and conmon where it is not."""
    if choice is MonitorChoice.CONMON:
        return CONMON_MONITOR
    own = find_helper(MONITOR_NAME, dirs)
    if own is not None:
        return Monitor(MonitorKind.DOCKYARD, own)
    if choice is MonitorChoice.DOCKYARD:
        raise InvalidArgument(f"monitor {MONITOR_NAME} is not installed (dev/setup builds it)")
    return CONMON_MONITOR


def is_monitor_argv(argv: list[bytes], container_id: str) -> bool:
    """Is this command line a monitor's (either kind) of this container?"""
    return bool(argv) and argv[0].endswith((b"conmon", MONITOR_NAME.encode())) and container_id.encode() in argv


@dataclass(frozen=True)
class MonitorRequest:
    container_id: str
    name: str
    runtime_path: str
    runtime_args: tuple[str, ...]  # global runtime flags, e.g. ("--root", "/run/dockyard/runc")
    bundle: Path
    # The k8s-file spool (runtime.spool) the log shipper turns into LogPath; None for the
    # `none` log driver (no log is kept; attach still works).
    log_path: Path | None
    exit_dir: Path
    persist_dir: Path
    tty: bool
    stdin: bool
    stdin_once: bool
    # The spool starts a new file past this size (0: never).
    log_size_max: int = 0
    monitor: Monitor = field(kw_only=True)

    @property
    def leave_stdin_open(self) -> bool:
        # Stdin stays open when an attach client leaves: always on a TTY (dockerd never
        # closes a TTY's stdin, so one can detach and attach again), and without StdinOnce.
        return self.stdin and (self.tty or not self.stdin_once)


@dataclass(frozen=True)
class Created:
    pid: int  # the container's init process
    monitor_pid: int


def monitor_argv(req: MonitorRequest) -> list[str]:
    if req.monitor.kind is MonitorKind.CONMON:
        return conmon_argv(req.monitor.path, req)
    argv = [
        req.monitor.path, "--id", req.container_id,
        "--runtime", req.runtime_path, "--bundle", str(req.bundle), "--dir", str(req.bundle),
        "--pid-file", str(req.bundle / "pidfile"), "--monitor-pid-file", str(req.bundle / PID_FILE),
        "--exit-dir", str(req.exit_dir), "--persist-dir", str(req.persist_dir),
    ]  # fmt: skip
    if req.log_path is not None:
        argv += ["--log", str(req.log_path)]
        if req.log_size_max > 0:
            argv += ["--log-size-max", str(req.log_size_max)]
    for arg in req.runtime_args:
        argv += ["--runtime-arg", arg]
    if req.tty:
        argv.append("--tty")
    if req.stdin:
        argv.append("--stdin")
        if req.leave_stdin_open:
            argv.append("--leave-stdin-open")
    return argv


def parse_message(line: bytes) -> dict[str, object]:
    """One JSON line from a monitor's pipe; a line that is not one becomes a failure."""
    try:
        message = json.loads(line.decode(errors="replace"))
    except ValueError:
        return {"data": -1, "message": line.decode(errors="replace")}
    return message if isinstance(message, dict) else {"data": -1, "message": str(message)}


async def _read_sync(fd: int) -> list[dict[str, object]]:
    """Read JSON lines from the sync pipe until the monitor closes it or reports the pid."""
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    messages: list[dict[str, object]] = []
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        async with asyncio.timeout(_SYNC_TIMEOUT):
            while True:
                await readable.wait()
                readable.clear()
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    return messages
                buffer += chunk
                while b"\n" in buffer:
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer = bytearray(rest)
                    if line.strip():
                        messages.append(parse_message(line))
                if any("data" in m for m in messages):
                    return messages
    finally:
        loop.remove_reader(fd)


async def create(req: MonitorRequest) -> Created:
    req.exit_dir.mkdir(parents=True, exist_ok=True)
    req.persist_dir.mkdir(parents=True, exist_ok=True)
    (req.exit_dir / req.container_id).unlink(missing_ok=True)
    (req.persist_dir / "oom").unlink(missing_ok=True)  # the previous run's
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(sync_w, True)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "_OCI_SYNCPIPE": str(sync_w)}
    name = req.monitor.kind.value
    try:
        proc = await asyncio.create_subprocess_exec(
            *monitor_argv(req),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            pass_fds=(sync_w,),
            cwd=req.bundle,  # conmon drops an `oom` marker in its working directory
            start_new_session=True,
        )
    except OSError as exc:
        os.close(sync_r)
        os.close(sync_w)
        raise Internal(f"cannot start {name}: {exc}") from exc
    os.close(sync_w)
    try:
        messages = await _read_sync(sync_r)
    except TimeoutError:
        raise Internal(f"{name} did not report the container within 60s") from None
    finally:
        os.close(sync_r)
        stderr = b""
        if proc.stderr is not None:
            stderr = await proc.stderr.read()
        await proc.wait()  # the first monitor process exits once its daemonized child runs
    pid = next((m["data"] for m in messages if isinstance(m.get("data"), int)), -1)
    if not isinstance(pid, int) or pid <= 0:
        message = next((str(m.get("message")) for m in messages if m.get("message")), "")
        raise start_failure(message or stderr.decode(errors="replace") or f"{name} failed to create the container", "create")
    monitor_pid = int((req.bundle / PID_FILE).read_text().strip())
    return Created(pid=pid, monitor_pid=monitor_pid)


def read_exit_code(exit_dir: Path, container_id: str) -> int | None:
    """The code the monitor recorded, or None when it wrote nothing (it died itself)."""
    try:
        text = (exit_dir / container_id).read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def oom_killed(persist_dir: Path) -> bool:
    return (persist_dir / "oom").exists()


def resize(directory: Path, height: int, width: int) -> None:
    """Tell the monitor the terminal size through its control fifo (message type 1)."""
    try:
        fd = os.open(directory / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # the monitor is gone: nothing to resize
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)
