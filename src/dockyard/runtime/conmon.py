"""Starting a container under conmon, the per-container monitor.

conmon runs `<runtime> create`, holds the container's stdio (pipes or a pty),
writes the log, records the exit code in <exit-dir>/<id>, and serves an attach
socket. It daemonizes, so containers outlive a daemon restart. We learn the
container's pid (or the runtime's error) from the sync pipe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Internal
from dockyard.runtime.failures import start_failure

log = logging.getLogger(__name__)

CONMON = "/usr/bin/conmon"
_SYNC_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConmonRequest:
    container_id: str
    name: str
    runtime_path: str
    runtime_args: tuple[str, ...]  # global runtime flags, e.g. ("--root", "/run/dockyard/runc")
    bundle: Path
    # conmon's k8s-file: the spool (runtime.spool) the log shipper turns into LogPath;
    # None for the `none` log driver (conmon keeps no log; attach still works).
    log_path: Path | None
    exit_dir: Path
    persist_dir: Path
    tty: bool
    stdin: bool
    stdin_once: bool
    # --log-size-max: conmon starts a new spool file past this size (0: never).
    log_size_max: int = 0


@dataclass(frozen=True)
class Created:
    pid: int  # the container's init process
    monitor_pid: int  # conmon


def conmon_argv(req: ConmonRequest) -> list[str]:
    argv = [
        CONMON, "--api-version", "1",
        "-c", req.container_id, "-u", req.container_id, "-n", req.name,
        "-r", req.runtime_path, "-b", str(req.bundle),
        "-p", str(req.bundle / "pidfile"), "-P", str(req.bundle / "conmon.pid"),
        "-l", "none" if req.log_path is None else f"k8s-file:{req.log_path}",
        "--exit-dir", str(req.exit_dir),
        "--persist-dir", str(req.persist_dir),
        # --full-attach: the socket is <bundle>/attach, with no symlink left in a socket dir.
        "--full-attach", "--socket-dir-path", str(req.bundle),
        "--log-level", "error",
        # No sync(2) of the whole system at every exit: the log is not worth that stall.
        "--no-sync-log",
    ]  # fmt: skip
    if req.log_path is not None and req.log_size_max > 0:
        argv += ["--log-size-max", str(req.log_size_max)]
    for arg in req.runtime_args:
        argv += ["--runtime-arg", arg]
    if req.tty:
        argv.append("-t")
    if req.stdin:
        argv.append("-i")
        if req.tty or not req.stdin_once:
            # Stdin stays open when an attach client leaves: always on a TTY (dockerd never
            # closes a TTY's stdin, so one can detach and attach again), and without StdinOnce.
            argv.append("--leave-stdin-open")
    return argv


async def _read_sync(fd: int) -> list[dict[str, object]]:
    """Read JSON lines from the sync pipe until conmon closes it or reports the pid."""
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
                        messages.append(json.loads(line))
                if any("data" in m for m in messages):
                    return messages
    finally:
        loop.remove_reader(fd)


async def create(req: ConmonRequest) -> Created:
    req.exit_dir.mkdir(parents=True, exist_ok=True)
    req.persist_dir.mkdir(parents=True, exist_ok=True)
    (req.exit_dir / req.container_id).unlink(missing_ok=True)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(sync_w, True)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "_OCI_SYNCPIPE": str(sync_w)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *conmon_argv(req),
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
        raise Internal(f"cannot start conmon: {exc}") from exc
    os.close(sync_w)
    try:
        messages = await _read_sync(sync_r)
    except TimeoutError:
        raise Internal("conmon did not report the container within 60s") from None
    finally:
        os.close(sync_r)
        stderr = b""
        if proc.stderr is not None:
            stderr = await proc.stderr.read()
        await proc.wait()  # the first conmon process exits once its daemonized child runs
    pid = next((int(m["data"]) for m in messages if "data" in m), -1)  # type: ignore[call-overload]
    if pid <= 0:
        message = next((str(m.get("message")) for m in messages if m.get("message")), "")
        raise start_failure(message or stderr.decode(errors="replace") or "conmon failed to create the container", "create")
    monitor_pid = int((req.bundle / "conmon.pid").read_text().strip())
    return Created(pid=pid, monitor_pid=monitor_pid)


def read_exit_code(exit_dir: Path, container_id: str) -> int | None:
    """The code conmon recorded, or None when it wrote nothing (conmon itself died)."""
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


def resize(bundle: Path, height: int, width: int) -> None:
    """Tell conmon the terminal size through its control fifo (message type 1)."""
    try:
        fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # conmon gone or not a tty container: nothing to resize
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)
