"""The OCI runtime's command line (runc, crun): start, kill, delete, pause, resume, update."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Conflict, DockyardError, Internal, NotFound
from dockyard.linux.command import run_command
from dockyard.runtime.failures import runtime_reason
from dockyard.runtime.spec import Resources, cpu_period_quota

_TIMEOUT = 30.0
_FIFO_WAIT = 2.0


@dataclass(frozen=True)
class OciRuntime:
    name: str
    path: str  # the runtime's binary
    root: str  # the runtime's private state directory (--root)
    extra_args: tuple[str, ...] = ()
    # What runs the runtime, when it is not run directly: the argv before `path`
    # (crun on a hybrid cgroup host: dockyard-nounified, runtime/catalog.py).
    launcher: tuple[str, ...] = ()

    @property
    def executable(self) -> str:
        """The program to execute: conmon's -r, the head of our own calls."""
        return self.launcher[0] if self.launcher else self.path

    @property
    def global_args(self) -> tuple[str, ...]:
        """The arguments between the executable and the runtime's command (conmon's
        --runtime-arg): the rest of the launcher and the runtime's path, then its flags."""
        head = (*self.launcher[1:], self.path) if self.launcher else ()
        return (*head, "--root", self.root, *self.extra_args)

    async def _run(self, container_id: str, command: str, *args: str) -> str:
        done = await run_command(
            [self.executable, *self.global_args, command, *args],
            timeout=_TIMEOUT,
            what=f"{self.name} {command}",
        )
        out, err = done.stdout, done.stderr
        if done.returncode != 0:
            raw = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            message = runtime_reason(raw) or raw  # runc's error, without its logrus decoration
            # runc says "container does not exist"; crun names the state file it cannot open.
            if "not exist" in raw or not self.has_state(container_id):
                raise NotFound(f"{self.name} {command}: {message}")
            # runc: "container not running"; crun: "the container `x` is not running", and
            # "kill container: No such process" once its process is gone.
            if "not running" in raw or "is stopped" in raw or "No such process" in raw:
                raise Conflict(f"{self.name} {command}: {message}")
            raise Internal(f"{self.name} {command} failed: {message}")
        return out.decode(errors="replace")

    def has_state(self, container_id: str) -> bool:
        return (Path(self.root) / container_id).exists()

    async def start(self, container_id: str) -> None:
        fifo = Path(self.root) / container_id / "exec.fifo"
        if fifo.exists() and await _release_exec_fifo(fifo):
            return
        await self._run(container_id, "start", container_id)

    async def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        await self._run(container_id, "kill", *(["--all"] if all_processes else []), container_id, str(signal))

    async def delete(self, container_id: str, *, force: bool = False) -> None:
        try:
            await self._run(container_id, "delete", *(["--force"] if force else []), container_id)
        except NotFound:
            pass

    async def pause(self, container_id: str) -> None:
        await self._run(container_id, "pause", container_id)

    async def resume(self, container_id: str) -> None:
        await self._run(container_id, "resume", container_id)

    async def update(self, container_id: str, resources: Resources) -> None:
        """Set a running (or paused) container's cgroup limits. Conflict or NotFound when it
        is not running (any more); Internal when the runtime or the kernel refuses a value."""
        if is_crun(self.path):
            await self._crun_update(container_id, resources)
        else:
            await self._run(container_id, "update", *update_args(resources), container_id)

    async def _crun_update(self, container_id: str, resources: Resources) -> None:
        """crun 1.8 on cgroup v1 writes the -1 that lifts a pids limit as it is, which the
        kernel refuses ("writing file `pids.max`: Invalid argument"): we write "max". And a
        memory limit below the usage is told in runc's words, as dockerd shows them."""
        cgroups = await self._v1_cgroups(container_id)
        lift = "pids" in cgroups and not (resources.pids_limit is not None and resources.pids_limit > 0)
        try:
            await self._run(container_id, "update", *update_args(resources, lift_pids=not lift), container_id)
        except Internal as exc:
            if "memory" in cgroups and "memory.limit_in_bytes`: Device or resource busy" in exc.message:
                usage, peak = await asyncio.to_thread(_memory_usage, cgroups["memory"])
                raise Internal(
                    f"{self.name} update failed: unable to set memory limit to {resources.memory} "
                    f"(current usage: {usage}, peak usage: {peak})"
                ) from exc
            raise
        if lift:
            try:
                await asyncio.to_thread((cgroups["pids"] / "pids.max").write_text, "max")
            except OSError as exc:
                raise Internal(f"{self.name} update failed: writing pids.max: {exc.strerror}") from exc

    async def _v1_cgroups(self, container_id: str) -> dict[str, Path]:
        """The container's cgroup v1 directories by controller, from its init's
        /proc/<pid>/cgroup. Empty on a v2 host, or when it is not running (the runtime's
        own call then says why)."""
        try:
            state = json.loads(await self._run(container_id, "state", container_id))
            pid = int(state.get("pid") or 0)
        except (DockyardError, ValueError, AttributeError):
            return {}
        try:
            text = await asyncio.to_thread(Path(f"/proc/{pid}/cgroup").read_text) if pid > 0 else ""
        except OSError:
            return {}
        found = {}
        for line in text.splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                if controller in ("memory", "pids"):
                    found[controller] = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
        return found


def _memory_usage(memory: Path) -> tuple[int, int]:
    def read(name: str) -> int:
        try:
            return int((memory / name).read_text())
        except (OSError, ValueError):
            return 0

    return read("memory.usage_in_bytes"), read("memory.max_usage_in_bytes")


def is_crun(path: str) -> bool:
    """Is this runtime binary crun (whose quirks some calls work around)?"""
    return Path(path).name == "crun"


def update_args(res: Resources, *, lift_pids: bool = True) -> tuple[str, ...]:
    """`runc update` / `crun update` flags for the whole set of limits, not only the changed
    ones: runc records every limit it is given (and zero for those it is not) in its state,
    which later updates start from. Zero and "" are left out: the runtime writes nothing
    for them. Pids are always given, -1 lifting a previous limit (unless not `lift_pids`:
    then no pids flag at all when there is no limit)."""
    args: list[str] = []
    if res.memory:
        args += ["--memory", str(res.memory)]
        if res.memory_swap:
            args += ["--memory-swap", str(res.memory_swap)]
    if res.memory_reservation:
        args += ["--memory-reservation", str(res.memory_reservation)]
    if res.cpu_shares:
        args += ["--cpu-share", str(res.cpu_shares)]
    period, quota = cpu_period_quota(res)
    if period:
        args += ["--cpu-period", str(period)]
    if quota:
        args += ["--cpu-quota", str(quota)]
    if res.cpuset_cpus:
        args += ["--cpuset-cpus", res.cpuset_cpus]
    if res.cpuset_mems:
        args += ["--cpuset-mems", res.cpuset_mems]
    if res.blkio_weight:
        args += ["--blkio-weight", str(res.blkio_weight)]
    pids = res.pids_limit if res.pids_limit is not None and res.pids_limit > 0 else -1
    if pids > 0 or lift_pids:
        args += ["--pids-limit", str(pids)]
    return tuple(args)


async def _release_exec_fifo(fifo: Path) -> bool:
    """Do what `runc start` / `crun start` does, without spawning it (10 ms or more saved).

    Both park a created container's init on <root>/<id>/exec.fifo, and removing the fifo
    marks the container as started for later runtime calls. The directions differ: runc's
    init blocks in opening the fifo for writing and `runc start` reads its byte; crun's init
    holds the fifo open for reading and `crun start` opens it, unlinks it, writes a byte.
    An open for writing that does not block succeeds only when a reader is there: crun's.
    False when no init answered: the caller then asks the runtime itself, for its error.
    """
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: no reader, so runc's protocol (below)
            raise Internal(f"cannot open {fifo}: {exc}") from exc
    else:
        try:
            fifo.unlink(missing_ok=True)
            os.write(fd, b"\0")  # what crun start writes
        except OSError:
            return False
        finally:
            os.close(fd)
        return True
    return await _read_exec_fifo(fifo)


async def _read_exec_fifo(fifo: Path) -> bool:
    """runc's side: read the byte its init writes, then remove the fifo."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        async with asyncio.timeout(_FIFO_WAIT):
            while True:
                await ready.wait()
                ready.clear()
                try:
                    data = os.read(fd, 16)
                except BlockingIOError:
                    continue
                if data:
                    break
                # EOF: the init has not reopened its end yet (or is gone); look again shortly.
                await asyncio.sleep(0.001)
                ready.set()
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    fifo.unlink(missing_ok=True)
    return True
