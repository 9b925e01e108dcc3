"""A whole Dockerfile for the classic builder: parser directives, numbered logical lines,
stages, and every instruction typed and checked as buildkit's parser (which dockerd's classic
builder uses) checks it. Errors carry dockerd's words and the instruction's first line:
"dockerfile parse error on line 3: unknown instruction: FOO".

Variable expansion is not done here (it needs the build's state): the words are kept as
written and the builder expands them with model/shellwords.ShellLexer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from dockyard.errors import InvalidArgument
from dockyard.model.dockerfile import (
    Command,
    Instruction,
    _parse_flags,
    parse_command,
    parse_instruction,
)
from dockyard.model.shellwords import DEFAULT_ESCAPE, LINE_WHITESPACE, go_quote

INSTRUCTIONS = frozenset(
    {"add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
     "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir"}
)  # fmt: skip
# What a build may pass without declaring an ARG for it (dockerd's builtinAllowedBuildArgs).
PREDEFINED_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)  # fmt: skip
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_ARG_NAME = re.compile(r"^[^\s=]+$")


class ParseError(InvalidArgument):
    """A Dockerfile that cannot be built; the message names the line (400)."""


def _at(line: int, message: str) -> ParseError:
    return ParseError(f"dockerfile parse error on line {line}: {message}")


# --- 1. directives and lines -----------------------------------------------------------


@dataclass(frozen=True)
class Directives:
    escape: str = DEFAULT_ESCAPE
    syntax: str = ""  # a frontend image; the classic builder ignores it


@dataclass(frozen=True)
class Line:
    number: int  # where the instruction starts (1-based)
    text: str  # the logical line, continuations joined


def parse_directives(physical: list[str]) -> tuple[Directives, int]:
    """The `# escape=` / `# syntax=` lines at the top, and how many lines they take."""
    found: dict[str, str] = {}
    count = 0
    for raw in physical:
        match = _DIRECTIVE.match(raw)
        if match is None:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name in found:
            raise ParseError(f"only one {name} parser directive can be used")
        found[name] = value
        count += 1
    escape = found.get("escape", DEFAULT_ESCAPE)
    if escape not in ("`", "\\"):
        raise ParseError(f"invalid escape token '{escape}' does not match ` or \\")
    return Directives(escape, found.get("syntax", "")), count


def logical_lines(text: str) -> tuple[Directives, list[Line]]:
    physical = [line.rstrip("\r") for line in text.replace("\r\n", "\n").split("\n")]
    if physical and physical[0].startswith("\ufeff"):
        physical[0] = physical[0][1:]  # a UTF-8 byte order mark
    directives, skip = parse_directives(physical)
    continuation = re.compile(re.escape(directives.escape) + r"[ \t]*$")
    out: list[Line] = []
    i = skip
    while i < len(physical):
        number = i + 1
        line = physical[i].lstrip()
        i += 1
        if line.startswith("#"):
            continue
        line, continued = continuation.subn("", line)
        if not continued and not line.strip():
            continue
        parts = [line]
        while continued and i < len(physical):
            raw = physical[i]
            i += 1
            # Comments and blank lines inside a continued instruction are dropped.
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
            part, continued = continuation.subn("", raw)
            parts.append(part)
        joined = "".join(parts).strip()
        if joined:
            out.append(Line(number, joined))
    return directives, out


# --- 2. the build's own commands (the config ones are model/dockerfile.py's) ------------


@dataclass(frozen=True)
class ArgDecl:
    name: str
    default: str | None  # None: no default (`ARG NAME`)


@dataclass(frozen=True)
class FromCommand:
    base: str  # as written: expanded with the meta ARGs when the stage starts
    name: str  # `AS name`, lower-cased; "" if none
    platform: str = ""


@dataclass(frozen=True)
class RunCommand:
    cmdline: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True)
class CopyCommand:
    sources: tuple[str, ...]
    dest: str
    is_add: bool = False
    chown: str = ""
    chmod: str = ""
    source_stage: str = ""  # --from: a stage name or index, or an image


@dataclass(frozen=True)
class ArgCommand:
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True)
class ShellCommand:
    shell: tuple[str, ...]


@dataclass(frozen=True)
class MaintainerCommand:
    maintainer: str


BuildCommand: TypeAlias = (
    FromCommand | RunCommand | CopyCommand | ArgCommand | ShellCommand | MaintainerCommand | Command
)


def _from(instr: Instruction) -> FromCommand:
    flags = _parse_flags(instr, ("platform",))
    args = instr.args
    if len(args) not in (1, 3):
        raise InvalidArgument("FROM requires either one or three arguments")
    name = ""
    if len(args) == 3:
        if args[1].lower() != "as":
            raise InvalidArgument("FROM requires either one or three arguments")
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise InvalidArgument(
                f"invalid name for build stage: {go_quote(args[2])}, name can't start with a number or contain symbols"
            )
    return FromCommand(args[0], name, flags.get("platform", ""))


def _copy(instr: Instruction, is_add: bool) -> CopyCommand:
    known = ("chown", "chmod", "checksum", "keep-git-dir") if is_add else ("chown", "chmod", "from")
    flags = _parse_flags(instr, known)
    name = "ADD" if is_add else "COPY"
    if len(instr.args) < 2:
        if not instr.args:
            raise InvalidArgument(f"{name} requires at least two arguments")
        raise InvalidArgument(
            f"{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        )
    if flags.get("checksum") or flags.get("keep-git-dir"):
        raise InvalidArgument(f"{name} --checksum and --keep-git-dir need BuildKit")
    return CopyCommand(
        instr.args[:-1], instr.args[-1], is_add, flags.get("chown", ""), flags.get("chmod", ""), flags.get("from", "")
    )


def _arg(instr: Instruction) -> ArgCommand:
    _parse_flags(instr)
    if not instr.args:
        raise InvalidArgument("ARG requires at least one argument")
    out = []
    for word in instr.args:
        name, has_default, default = word.partition("=")
        if not name or not _ARG_NAME.match(name):
            raise InvalidArgument("ARG names can not be blank" if not name else f"invalid ARG name {go_quote(name)}")
        out.append(ArgDecl(name, default if has_default else None))
    return ArgCommand(tuple(out))


def _run(instr: Instruction) -> RunCommand:
    _parse_flags(instr)  # --mount, --network, --security are BuildKit's
    if not instr.args:
        raise InvalidArgument("RUN requires at least one argument")
    if instr.is_json:
        return RunCommand(instr.args, prepend_shell=False)
    return RunCommand((" ".join(instr.args),), prepend_shell=True)


def parse_build_command(instr: Instruction) -> BuildCommand:
    command = instr.command
    if command == "from":
        return _from(instr)
    if command == "run":
        return _run(instr)
    if command in ("copy", "add"):
        return _copy(instr, command == "add")
    if command == "arg":
        return _arg(instr)
    if command == "shell":
        _parse_flags(instr)
        if not instr.is_json:
            raise InvalidArgument("SHELL requires the arguments to be in JSON form")
        if not instr.args:
            raise InvalidArgument("SHELL requires at least one argument")
        return ShellCommand(instr.args)
    if command == "maintainer":
        _parse_flags(instr)
        if not instr.args:
            raise InvalidArgument("MAINTAINER requires exactly one argument")
        return MaintainerCommand(instr.args[0])
    return parse_command(instr)


# --- 3. stages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    line: int
    original: str  # what `Step N/M :` prints
    command: BuildCommand


@dataclass(frozen=True)
class Stage:
    index: int
    line: int
    original: str
    start: FromCommand
    steps: tuple[Step, ...]

    @property
    def name(self) -> str:
        return self.start.name


@dataclass(frozen=True)
class Buildfile:
    directives: Directives
    meta_steps: tuple[Step, ...]  # the ARGs before the first FROM (visible to FROM lines)
    stages: tuple[Stage, ...]

    @property
    def meta_args(self) -> tuple[ArgDecl, ...]:
        return tuple(a for s in self.meta_steps if isinstance(s.command, ArgCommand) for a in s.command.args)

    @property
    def escape(self) -> str:
        return self.directives.escape

    def stage_index(self, ref: str) -> int | None:
        """The stage a name or number (`--from=0`, `--target=builder`) refers to."""
        for stage in self.stages:
            if stage.name and stage.name == ref.lower():
                return stage.index
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        return None

    def up_to(self, target: str) -> Buildfile:
        """The stages a `--target` build runs: those up to and including the target."""
        if not target:
            return self
        index = next((s.index for s in self.stages if s.name == target.lower()), None)
        if index is None:
            raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")
        return Buildfile(self.directives, self.meta_steps, self.stages[: index + 1])

    @property
    def step_count(self) -> int:
        # dockerd counts the meta ARGs as steps too, and prints them first.
        return len(self.meta_steps) + sum(1 + len(s.steps) for s in self.stages)


def parse_buildfile(text: str) -> Buildfile:
    directives, lines = logical_lines(text)
    if not lines:
        raise ParseError("file with no instructions")
    meta: list[Step] = []
    stages: list[Stage] = []
    steps: list[Step] = []
    current: tuple[int, str, FromCommand] | None = None
    for line in lines:
        keyword = LINE_WHITESPACE.split(line.text, maxsplit=1)[0]
        if keyword.lower() not in INSTRUCTIONS:
            raise _at(line.number, f"unknown instruction: {keyword}")
        try:
            command = parse_build_command(parse_instruction(line.text, directives.escape))
        except ParseError:
            raise
        except InvalidArgument as exc:
            raise _at(line.number, exc.message) from None
        if isinstance(command, FromCommand):
            if current is not None:
                stages.append(Stage(len(stages), current[0], current[1], current[2], tuple(steps)))
            current, steps = (line.number, line.text, command), []
        elif current is None:
            if not isinstance(command, ArgCommand):
                raise _at(line.number, "no build stage in current context")
            meta.append(Step(line.number, line.text, command))
        else:
            steps.append(Step(line.number, line.text, command))
    if current is None:
        raise ParseError("no build stage in current context")
    stages.append(Stage(len(stages), current[0], current[1], current[2], tuple(steps)))
    names = [s.name for s in stages if s.name]
    for name in names:
        if names.count(name) > 1:
            where = next(s.line for s in reversed(stages) if s.name == name)
            raise _at(where, f"duplicate stage name {go_quote(name)}")
    return Buildfile(directives, tuple(meta), tuple(stages))
