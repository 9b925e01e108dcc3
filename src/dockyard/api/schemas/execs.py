"""Exec documents: the create and start bodies in, exec inspect out (API 1.50)."""

from __future__ import annotations

from typing import Any

from dockyard.api.schemas import fields
from dockyard.errors import InvalidArgument
from dockyard.model.execs import Exec, ExecConfig, ExecStart


def _console_size(value: Any, field: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidArgument(f"invalid {field}: expected [height, width]")
    return (fields.integer(value[0], field, go_type="uint"), fields.integer(value[1], field, go_type="uint"))


def parse_exec_create(body: Any) -> ExecConfig:
    doc = fields.obj(body, "exec config")
    cmd = fields.strs(doc.get("Cmd"), "Cmd")
    if not cmd:
        raise InvalidArgument("No exec command specified")
    return ExecConfig(
        cmd=cmd,
        user=fields.string(doc.get("User"), "User"),
        working_dir=fields.string(doc.get("WorkingDir"), "WorkingDir"),
        env=fields.strs(doc.get("Env"), "Env"),
        tty=fields.boolean(doc.get("Tty"), "Tty"),
        privileged=fields.boolean(doc.get("Privileged"), "Privileged"),
        attach_stdin=fields.boolean(doc.get("AttachStdin"), "AttachStdin"),
        attach_stdout=fields.boolean(doc.get("AttachStdout"), "AttachStdout"),
        attach_stderr=fields.boolean(doc.get("AttachStderr"), "AttachStderr"),
        detach_keys=fields.string(doc.get("DetachKeys"), "DetachKeys"),
        console_size=_console_size(doc.get("ConsoleSize"), "ConsoleSize"),
    )


def parse_exec_start(body: Any) -> ExecStart:
    doc = fields.obj(body, "exec start config")
    return ExecStart(
        detach=fields.boolean(doc.get("Detach"), "Detach"),
        tty=fields.boolean(doc.get("Tty"), "Tty"),
        console_size=_console_size(doc.get("ConsoleSize"), "ConsoleSize"),
    )


def exec_inspect_doc(e: Exec, container_user: str) -> dict[str, Any]:
    c = e.config
    return {
        "CanRemove": False,
        "ContainerID": e.container_id,
        "DetachKeys": c.detach_keys,
        "ExitCode": e.state.exit_code,
        "ID": e.id,
        "OpenStderr": c.attach_stderr,
        "OpenStdin": c.attach_stdin,
        "OpenStdout": c.attach_stdout,
        "ProcessConfig": {
            "arguments": list(c.cmd[1:]),
            "entrypoint": c.cmd[0],
            "privileged": c.privileged,
            "tty": c.tty,
            "user": c.user or container_user,
        },
        "Running": e.state.running,
        "Pid": e.state.pid,
    }
