"""Dockerfile instructions applied to an image config: `docker commit/import --change`.

dockerd treats the changes as a small Dockerfile (the strings joined by newlines) and runs
them through its builder with nothing but config edits allowed; so does `apply_changes`,
over the parser in model/dockerfile.py and the words of model/shellwords.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from dockyard.errors import InvalidArgument
from dockyard.model.dockerfile import (
    CHANGE_COMMANDS,
    DEFAULT_SHELL,
    CmdCommand,
    Command,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    LabelCommand,
    StopSignalCommand,
    UserCommand,
    VolumeCommand,
    WorkdirCommand,
    parse_command,
    parse_instructions,
)
from dockyard.model.images import ImageConfig
from dockyard.model.shellwords import ShellLexer, env_mapping
from dockyard.model.signals import parse_signal


def _clean_path(path: str) -> str:
    """Lexical clean of an absolute path, like Go's path.Clean."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _exposed_ports(spec: str) -> list[str]:
    """The "port/proto" keys one EXPOSE word adds ("80", "53/udp", "8000-8002")."""
    # An ip:host:container mapping exposes only its container part.
    container = spec.rsplit(":", 1)[-1]
    port, slash, proto = container.partition("/")
    proto = proto.split("/")[0] if slash and proto else "tcp"
    if not port:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    bounds = port.split("-", 1)
    if not all(re.fullmatch(r"[0-9]{1,5}", b, re.ASCII) and int(b) <= 65535 for b in bounds):
        raise InvalidArgument(f"invalid containerPort: {port}")
    start, end = int(bounds[0]), int(bounds[-1])
    if end < start:
        raise InvalidArgument(f"invalid containerPort: {port}")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    return [f"{p}/{proto.lower()}" for p in range(start, end + 1)]


@dataclass(frozen=True)
class _State:
    config: ImageConfig
    cmd_set: bool = False  # a CMD earlier in these changes survives a later ENTRYPOINT
    lexer: ShellLexer = field(default_factory=ShellLexer)
    args: Mapping[str, str] = field(default_factory=dict)  # a build's ARGs: the env wins over them

    def env(self) -> dict[str, str]:
        return {**self.args, **env_mapping(self.config.env)}

    def word(self, text: str) -> str:
        return self.lexer.process_word(text, self.env())

    def shell_form(self, cmdline: tuple[str, ...], prepend_shell: bool) -> tuple[str, ...]:
        if prepend_shell and cmdline:
            shell = self.config.shell if self.config.shell else DEFAULT_SHELL
            return (*shell, *cmdline)
        return cmdline


def _dispatch(state: _State, command: Command) -> _State:
    cfg = state.config
    if isinstance(command, EnvCommand):
        # Every pair is expanded against the env as it was before this instruction.
        pairs = [(state.word(p.key), state.word(p.value)) for p in command.pairs]
        env = list(cfg.env)
        for key, value in pairs:
            entry = f"{key}={value}"
            index = next((i for i, e in enumerate(env) if e.partition("=")[0] == key), None)
            if index is None:
                env.append(entry)
            else:
                env[index] = entry
        return replace(state, config=replace(cfg, env=tuple(env)))
    if isinstance(command, LabelCommand):
        labels = dict(cfg.labels)
        pairs = [(state.word(p.key), state.word(p.value)) for p in command.pairs]
        labels.update(pairs)
        return replace(state, config=replace(cfg, labels=labels))
    if isinstance(command, CmdCommand):
        cmd = state.shell_form(command.cmdline, command.prepend_shell)
        return replace(state, config=replace(cfg, cmd=cmd), cmd_set=state.cmd_set or bool(cmd))
    if isinstance(command, EntrypointCommand):
        entrypoint = state.shell_form(command.cmdline, command.prepend_shell)
        # A new ENTRYPOINT drops the image's CMD, unless these changes set one.
        kept_cmd = cfg.cmd if state.cmd_set else None
        return replace(state, config=replace(cfg, entrypoint=entrypoint, cmd=kept_cmd))
    if isinstance(command, HealthcheckCommand):
        return replace(state, config=replace(cfg, healthcheck=command.health))
    if isinstance(command, ExposeCommand):
        env_now = state.env()
        ports = set(cfg.exposed_ports)
        for raw in command.ports:
            for word in state.lexer.process_words(raw, env_now):
                ports.update(_exposed_ports(word))
        return replace(state, config=replace(cfg, exposed_ports=tuple(sorted(ports))))
    if isinstance(command, UserCommand):
        return replace(state, config=replace(cfg, user=state.word(command.user)))
    if isinstance(command, VolumeCommand):
        volumes = set(cfg.volumes)
        for raw in command.volumes:
            volume = state.word(raw)
            if not volume:
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes.add(volume)
        return replace(state, config=replace(cfg, volumes=tuple(sorted(volumes))))
    if isinstance(command, WorkdirCommand):
        path = state.word(command.path)
        if not path:
            raise InvalidArgument("cannot normalize nothing")
        if not path.startswith("/"):
            path = _clean_path(f"/{cfg.working_dir}/{path}")
        return replace(state, config=replace(cfg, working_dir=path))
    if isinstance(command, StopSignalCommand):
        signal = state.word(command.signal)
        parse_signal(signal)
        return replace(state, config=replace(cfg, stop_signal=signal))
    on_build = (*cfg.on_build, command.expression)
    return replace(state, config=replace(cfg, on_build=on_build))


def apply_changes(config: ImageConfig, changes: Sequence[str]) -> ImageConfig:
    """Apply `--change` instructions to an image config, as dockerd's BuildFromConfig does.

    Each change is a Dockerfile line; only config instructions are allowed. All changes are
    parsed and checked before any is applied, so a bad one changes nothing.
    """
    if not changes:
        return config
    instructions = parse_instructions("\n".join(changes))
    for instr in instructions:
        if instr.command not in CHANGE_COMMANDS:
            raise InvalidArgument(f"{instr.keyword} is not a valid change command")
    commands = [parse_command(instr) for instr in instructions]
    state = _State(config)
    for command in commands:
        state = _dispatch(state, command)
    return state.config


def apply_command(
    config: ImageConfig, command: Command, args: Mapping[str, str], escape: str, cmd_set: bool
) -> tuple[ImageConfig, bool]:
    """One config instruction of a build (its ARGs visible to the expansion). Returns the
    new config and whether a CMD was set in this stage (it survives a later ENTRYPOINT)."""
    state = _dispatch(_State(config, cmd_set, ShellLexer(escape), args), command)
    return state.config, state.cmd_set
