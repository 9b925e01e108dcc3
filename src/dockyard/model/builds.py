"""The classic builder's values: a build request, its output events, and the rules that make
the cache work (what a step's "container config" is, as dockerd records and compares it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from dockyard.errors import InvalidArgument
from dockyard.model.buildfile import PREDEFINED_ARGS, BuildCommand
from dockyard.model.dockerfile import (
    DEFAULT_SHELL,
    CmdCommand,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    LabelCommand,
    OnbuildCommand,
    StopSignalCommand,
    UserCommand,
    VolumeCommand,
    WorkdirCommand,
)
from dockyard.model.images import ImageConfig, image_config_to_json
from dockyard.model.progress import Progress
from dockyard.model.references import Reference
from dockyard.model.registryauth import Credentials
from dockyard.model.shellwords import env_mapping


@dataclass(frozen=True)
class BuildOptions:
    """POST /build's query, as values."""

    tags: tuple[Reference, ...] = ()
    dockerfile: str = "Dockerfile"
    target: str = ""
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True  # rm: intermediate containers of steps that worked
    force_remove: bool = False  # forcerm: of failed steps too
    quiet: bool = False
    network_mode: str = ""
    extra_hosts: tuple[str, ...] = ()
    shm_size: int = 0
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    cache_from: tuple[str, ...] = ()
    registry_auth: Mapping[str, Credentials] = field(default_factory=dict)  # X-Registry-Config


@dataclass(frozen=True)
class BuildOutput:
    text: str  # a `stream` line as the CLI prints it


@dataclass(frozen=True)
class BuildProgress:
    progress: Progress  # a FROM's pull, as `docker pull` shows it


@dataclass(frozen=True)
class BuildResult:
    image_id: str  # the `aux` message: what -q and --iidfile use


@dataclass(frozen=True)
class BuildFailure:
    message: str
    code: int = 0  # a RUN's exit code (the CLI exits with it); 0: none


BuildEvent: TypeAlias = BuildOutput | BuildProgress | BuildResult | BuildFailure


def nop_cmd(shell: tuple[str, ...] | None, comment: str, *, split: bool = False) -> tuple[str, ...]:
    """The Cmd dockerd records for a step that runs nothing: config steps keep "#(nop) " as
    an argument of its own (withCmdComment: two spaces in the history), COPY and ADD not."""
    if split:
        return (*(shell or DEFAULT_SHELL), "#(nop) ", comment)
    return (*(shell or DEFAULT_SHELL), f"#(nop) {comment}")


def run_cmd(args: Mapping[str, str], cmdline: tuple[str, ...]) -> tuple[str, ...]:
    """A RUN's recorded Cmd: the build args it sees before it (prependEnvOnCmd), so another
    value of an ARG is another cache key."""
    if not args:
        return cmdline
    pairs = [f"{k}={v}" for k, v in sorted(args.items())]
    return (f"|{len(pairs)}", *pairs, *cmdline)


def cache_config(config: ImageConfig, cmd: tuple[str, ...]) -> dict[str, Any]:
    """The step's "container_config" (the run config with the step's Cmd): stored in the
    image, and what the cache compares with a child image's."""
    doc = image_config_to_json(config)
    doc["Cmd"] = list(cmd)
    return doc


def same_cache_key(stored: object, wanted: Mapping[str, Any]) -> bool:
    # Round-tripped through JSON so tuples and lists compare alike.
    return isinstance(stored, dict) and json.loads(json.dumps(wanted)) == stored


def visible_args(declared: Mapping[str, str | None], given: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """The build args a step sees: those the stage declared (the --build-arg value over the
    default), minus those an ENV of the same name shadows (dockerd's FilterAllowed)."""
    out: dict[str, str] = {}
    for name, default in declared.items():
        value = given.get(name) if name in given and given.get(name) is not None else default
        if value is not None and name not in env:
            out[name] = value
    return out


def proxy_args(given: Mapping[str, str | None]) -> dict[str, str]:
    """The predefined proxy args passed: in RUN's env, never in the image or cache key."""
    return {k: v for k, v in given.items() if k in PREDEFINED_ARGS and v is not None}


def go_strings(items: tuple[str, ...]) -> str:
    """A []string as Go's %q prints it: ["a" "b"] (dockerd's CMD/ENTRYPOINT comments)."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def parse_chmod(text: str) -> int | None:
    if not text:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {text}") from None
    if value > 0o7777:
        raise InvalidArgument(f"invalid chmod parameter: {text}")
    return value


def step_comment(command: BuildCommand, config: ImageConfig) -> str:
    """What dockerd writes after `#(nop) ` for a config step (its history's CreatedBy)."""
    if isinstance(command, EnvCommand):
        env = env_mapping(config.env)
        return "ENV " + " ".join(f"{k}={env.get(k, '')}" for k in dict.fromkeys(p.key for p in command.pairs))
    if isinstance(command, LabelCommand):
        return "LABEL " + " ".join(f"{k}={config.labels.get(k, '')}" for k in dict.fromkeys(p.key for p in command.pairs))
    if isinstance(command, CmdCommand):
        return f"CMD {go_strings(config.cmd or ())}"
    if isinstance(command, EntrypointCommand):
        return f"ENTRYPOINT {go_strings(config.entrypoint or ())}"
    if isinstance(command, ExposeCommand):
        return "EXPOSE " + " ".join(config.exposed_ports)
    if isinstance(command, UserCommand):
        return f"USER {config.user}"
    if isinstance(command, VolumeCommand):
        return "VOLUME [" + " ".join(config.volumes) + "]"
    if isinstance(command, WorkdirCommand):
        return f"WORKDIR {config.working_dir}"
    if isinstance(command, StopSignalCommand):
        return f"STOPSIGNAL {config.stop_signal}"
    if isinstance(command, HealthcheckCommand):
        h = command.health
        return f"HEALTHCHECK &{{{go_strings(h.test)} {h.interval_ns} {h.timeout_ns} {h.start_period_ns} {h.retries}}}"
    if isinstance(command, OnbuildCommand):
        return f"ONBUILD {command.expression}"
    return type(command).__name__
