"""The OCI runtime's command line (runc, crun): start, kill, delete, pause, resume."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dockyard.errors import Conflict, Internal, NotFound

_TIMEOUT = 30.0


@dataclass(frozen=True)
class OciRuntime:
    name: str
    path: str
    root: str  # the runtime's private state directory (--root)
    extra_args: tuple[str, ...] = ()

    @property
    def global_args(self) -> tuple[str, ...]:
        return ("--root", self.root, *self.extra_args)

    async def _run(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.path,
                *self.global_args,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise Internal(f"cannot run {self.name}: {exc}") from exc
        try:
            async with asyncio.timeout(_TIMEOUT):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise Internal(f"{self.name} {args[0]} timed out") from None
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            if "does not exist" in message or "not exist" in message:
                raise NotFound(f"{self.name} {args[0]}: {message}")
            if "not running" in message or "is stopped" in message:
                raise Conflict(f"{self.name} {args[0]}: {message}")
            raise Internal(f"{self.name} {args[0]} failed: {message}")
        return out.decode(errors="replace")

    async def start(self, container_id: str) -> None:
        await self._run("start", container_id)

    async def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [container_id, str(signal)]
        await self._run(*args)

    async def delete(self, container_id: str, *, force: bool = False) -> None:
        try:
            await self._run("delete", *(["--force"] if force else []), container_id)
        except NotFound:
            pass

    async def pause(self, container_id: str) -> None:
        await self._run("pause", container_id)

    async def resume(self, container_id: str) -> None:
        await self._run("resume", container_id)
