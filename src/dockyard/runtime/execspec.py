"""The OCI process object (`runc exec --process`) for an exec: a pure function of typed inputs.

dockerd starts from the container's own process (capabilities, noNewPrivileges, rlimits
and the rest come from there) and replaces what the exec names: args, env, cwd, user,
terminal, console size, and all capabilities for `--privileged`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.linux.capabilities import CAPABILITY_BITS
from dockyard.runtime.spec import DEFAULT_PATH, ProcessUser

# Keys of the container's process that an exec never inherits: replaced below, or (for the
# security labels) left for the runtime's default, as the brief for exec asks.
_REPLACED = ("args", "env", "cwd", "terminal", "consoleSize", "user", "apparmorProfile", "selinuxLabel")


@dataclass(frozen=True)
class ExecSpec:
    args: tuple[str, ...]  # Cmd: entrypoint and arguments, never empty
    container_env: tuple[str, ...] = ()  # the container's Config.Env
    env: tuple[str, ...] = ()  # the exec's own -e / --env-file, on top
    hostname: str = ""  # the container's Config.Hostname (HOSTNAME=)
    user: ProcessUser | None = None  # resolved in the container's rootfs; None keeps the container's
    cwd: str = ""  # -w; empty keeps the container's working directory
    tty: bool = False
    console_size: tuple[int, int] = (0, 0)  # height, width; used with tty when both are set
    privileged: bool = False


def replace_or_append(defaults: Sequence[str], overrides: Iterable[str]) -> list[str]:
    """dockerd's ReplaceOrAppendEnvValues: KEY=value replaces KEY in place or appends; a
    bare KEY (no '=') removes it. As there, only keys of `defaults` are looked up (the last
    one of a duplicated key), so two overrides of a new key are both appended."""
    env: list[str | None] = list(defaults)
    index = {item.partition("=")[0]: i for i, item in enumerate(defaults)}
    for item in overrides:
        key, sep, _ = item.partition("=")
        at = index.get(key)
        if not sep:
            if at is not None:
                env[at] = None
        elif at is None:
            env.append(item)
        else:
            env[at] = item
    return [item for item in env if item is not None]


def exec_env(spec: ExecSpec) -> list[str]:
    """dockerd's CreateDaemonEnvironment (TERM follows the exec's tty), then the exec's env."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={spec.hostname}"] + (["TERM=xterm"] if spec.tty else [])
    return replace_or_append(replace_or_append(defaults, spec.container_env), spec.env)


def privileged_capabilities(host_caps: frozenset[str]) -> list[str]:
    """Everything the host's bounding set holds, in the kernel's order."""
    return [name for name in CAPABILITY_BITS if name in host_caps]


def exec_process(spec: ExecSpec, container: Mapping[str, Any], host_caps: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The process object for `spec`, given the container's own (from its config.json).

    `host_caps` is the daemon's bounding set (linux.capabilities.bounding_set()); only
    a privileged exec needs it.
    """
    if not spec.args:
        raise InvalidArgument("No exec command specified")
    process: dict[str, Any] = {k: v for k, v in container.items() if k not in _REPLACED}
    process["terminal"] = spec.tty
    height, width = spec.console_size
    if spec.tty and height > 0 and width > 0:
        process["consoleSize"] = {"height": height, "width": width}
    process["user"] = _user(spec.user, container.get("user"))
    process["args"] = list(spec.args)
    process["env"] = exec_env(spec)
    process["cwd"] = spec.cwd or str(container.get("cwd") or "/")
    if spec.privileged:
        caps = privileged_capabilities(host_caps)
        process["capabilities"] = {key: caps for key in ("bounding", "effective", "permitted")}
    process.setdefault("noNewPrivileges", False)
    return process


def _user(user: ProcessUser | None, inherited: object) -> dict[str, Any]:
    base: Mapping[str, Any] = inherited if isinstance(inherited, Mapping) else {"uid": 0, "gid": 0}
    if user is None:
        return dict(base)
    out: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        out["additionalGids"] = list(user.additional_gids)
    if "umask" in base:
        out["umask"] = base["umask"]
    return out
