"""Exec instances: a command run inside a running container (`docker exec`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecConfig:
    """What `POST /containers/{id}/exec` asked for."""

    cmd: tuple[str, ...]  # never empty
    user: str = ""  # empty: the container's user
    working_dir: str = ""  # empty: the container's working directory
    env: tuple[str, ...] = ()
    tty: bool = False
    privileged: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    detach_keys: str = ""
    console_size: tuple[int, int] | None = None  # (height, width)


@dataclass(frozen=True)
class ExecStart:
    """What `POST /exec/{id}/start` asked for."""

    detach: bool = False
    tty: bool = False
    console_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class ExecState:
    running: bool = False
    exit_code: int | None = None  # None until it ran
    pid: int = 0
    started: bool = False


@dataclass(frozen=True)
class Exec:
    id: str
    container_id: str
    config: ExecConfig
    state: ExecState = ExecState()

    @property
    def command_line(self) -> str:
        """As dockerd's events show it: `exec_create: <entrypoint> <args...>`."""
        return " ".join(self.config.cmd)
