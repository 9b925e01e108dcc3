"""Dockerfile instructions: logical lines (continuations, comments), the per-instruction
argument shapes of the Dockerfile parser, and typed commands checked as buildkit checks them.
Error messages are buildkit's and dockerd's, since the CLI prints them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from dockyard.errors import InvalidArgument
from dockyard.model.images import HealthConfig
from dockyard.model.shellwords import (
    DEFAULT_ESCAPE,
    LINE_WHITESPACE,
    extract_flags,
    go_quote,
    split_words,
)

DEFAULT_SHELL = ("/bin/sh", "-c")
# The instructions dockerd accepts in a change (builder.validCommitCommands).
CHANGE_COMMANDS = frozenset(
    {"cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild", "stopsignal",
     "user", "volume", "workdir"}
)  # fmt: skip

# --- 2. instructions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One instruction as the Dockerfile parser shapes it, before any checking.

    `args` depends on the instruction: the JSON array or the raw shell line (CMD, ENTRYPOINT,
    RUN), key/value/separator triples (ENV, LABEL), the whole line (USER, WORKDIR, ...),
    the trigger keyword and line (ONBUILD), or the type and command (HEALTHCHECK).
    """

    keyword: str  # as written: "env", "ENV"
    args: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    is_json: bool = False  # exec (JSON array) form
    original: str = ""  # the whole logical line

    @property
    def command(self) -> str:
        return self.keyword.lower()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def logical_lines(text: str, escape: str = DEFAULT_ESCAPE) -> list[str]:
    """Join continuation lines and drop comments and blank lines."""
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    physical = [line.rstrip("\r") for line in text.split("\n")]
    out: list[str] = []
    i = 0
    while i < len(physical):
        line = physical[i].lstrip()
        i += 1
        if line.startswith("#"):
            continue
        line, continued = continuation.subn("", line)
        if not continued and not line:
            continue
        parts = [line]
        while continued and i < len(physical):
            raw = physical[i]
            i += 1
            # Comments and blank lines inside a continued instruction are skipped.
            if _is_comment(raw) or not raw.strip():
                continue
            part, continued = continuation.subn("", raw)
            parts.append(part)
        out.append("".join(parts))
    return out


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when `rest` is not one (then it is shell form)."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None

    def no_constants(name: str) -> object:
        raise ValueError(name)  # NaN and Infinity are not JSON

    try:
        doc = json.loads(rest, parse_constant=no_constants)
    except (ValueError, RecursionError):  # absurd nesting is not an exec form either
        return None
    if not all(isinstance(item, str) for item in doc):
        raise InvalidArgument(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return list(doc)


def _name_values(rest: str, keyword: str, escape: str) -> tuple[str, ...]:
    words = split_words(rest, escape)
    if not words:
        return ()
    if "=" not in words[0]:
        # The legacy form `ENV name value`: everything after the name is the value.
        parts = LINE_WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{keyword} must have two arguments")
        return (parts[0], parts[1], "")
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidArgument(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        key, _, value = word.partition("=")
        out += [key, value, "="]
    return tuple(out)


def _first_space(text: str) -> str:
    """The first whitespace character in `text`, or "" if there is none."""
    return next((ch for ch in text if ch.isspace()), "")


def parse_instruction(line: str, escape: str = DEFAULT_ESCAPE) -> Instruction:
    """Shape one logical line into an Instruction (the Dockerfile parser's job)."""
    split = LINE_WHITESPACE.split(line.strip(), maxsplit=1)
    keyword = split[0]
    flags: list[str] = []
    rest = ""
    if len(split) == 2:
        flags, rest = extract_flags(split[1], escape)
        rest = rest.strip()
    command = keyword.lower()
    args: tuple[str, ...] = ()
    is_json = False
    if command in ("cmd", "entrypoint", "run", "shell"):
        array = _json_array(rest) if rest else None
        is_json = array is not None
        args = tuple(array) if array is not None else ((rest,) if rest else ())
    elif command in ("env", "label"):
        args = _name_values(rest, keyword.upper(), escape)
    elif command in ("expose", "from"):
        args = tuple(LINE_WHITESPACE.split(rest)) if rest else ()
    elif command in ("user", "workdir", "stopsignal", "maintainer"):
        args = (rest,) if rest else ()
    elif command in ("volume", "add", "copy"):
        array = _json_array(rest)
        is_json = array is not None
        if array is not None:
            args = tuple(array)
        else:
            args = tuple(LINE_WHITESPACE.split(rest)) if rest else ()
    elif command == "arg":
        args = tuple(split_words(rest, escape))
    elif command == "onbuild":
        if rest:
            trigger = parse_instruction(rest, escape)
            args = (trigger.keyword, trigger.original)
    elif command == "healthcheck" and rest:
        kind, _, tail = rest.partition(_first_space(rest) or " ")
        array = _json_array(tail) if tail.strip() else None
        is_json = array is not None
        if array is not None:
            args = (kind, *array)
        else:
            args = (kind, tail.lstrip()) if tail.strip() else (kind,)
    # Unknown instructions keep no arguments; the caller decides whether they are allowed.
    return Instruction(keyword, args, tuple(flags), is_json, line)


def parse_instructions(text: str, escape: str = DEFAULT_ESCAPE) -> list[Instruction]:
    lines = logical_lines(text, escape)
    if not lines:
        raise InvalidArgument("file with no instructions")
    return [parse_instruction(line, escape) for line in lines]


# --- 3. commands --------------------------------------------------------------------------


def _parse_flags(instr: Instruction, known: Iterable[str] = ()) -> dict[str, str]:
    """Check an instruction's flags against the string flags it knows; return their values."""
    allowed = frozenset(known)
    values: dict[str, str] = {}
    for flag in instr.flags:
        if flag == "--":
            break
        name, has_value, value = flag.partition("=")
        if name[2:] not in allowed:
            raise InvalidArgument(f"unknown flag: {name}")
        if name[2:] in values:
            raise InvalidArgument(f"duplicate flag specified: {name}")
        if not has_value:
            raise InvalidArgument(f"missing a value on flag: {name}")
        values[name[2:]] = value
    return values


def _at_least_one(instr: Instruction, name: str) -> None:
    if not instr.args:
        raise InvalidArgument(f"{name} requires at least one argument")


def _exactly_one(instr: Instruction, name: str) -> str:
    if len(instr.args) != 1:
        raise InvalidArgument(f"{name} requires exactly one argument")
    return instr.args[0]


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True)
class EnvCommand:
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True)
class LabelCommand:
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True)
class CmdCommand:
    cmdline: tuple[str, ...]
    prepend_shell: bool  # shell form: run through the image's SHELL


@dataclass(frozen=True)
class EntrypointCommand:
    cmdline: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True)
class HealthcheckCommand:
    health: HealthConfig


@dataclass(frozen=True)
class ExposeCommand:
    ports: tuple[str, ...]


@dataclass(frozen=True)
class UserCommand:
    user: str


@dataclass(frozen=True)
class VolumeCommand:
    volumes: tuple[str, ...]


@dataclass(frozen=True)
class WorkdirCommand:
    path: str


@dataclass(frozen=True)
class StopSignalCommand:
    signal: str


@dataclass(frozen=True)
class OnbuildCommand:
    expression: str


Command: TypeAlias = (
    EnvCommand
    | LabelCommand
    | CmdCommand
    | EntrypointCommand
    | HealthcheckCommand
    | ExposeCommand
    | UserCommand
    | VolumeCommand
    | WorkdirCommand
    | StopSignalCommand
    | OnbuildCommand
)


def _key_values(instr: Instruction, name: str) -> tuple[KeyValue, ...]:
    _parse_flags(instr)
    _at_least_one(instr, name)
    triples = instr.args
    pairs = []
    for i in range(0, len(triples) - 2, 3):
        if not triples[i]:
            raise InvalidArgument(f"{name} names can not be blank")
        pairs.append(KeyValue(triples[i], triples[i + 1]))
    return tuple(pairs)


def _cmdline(instr: Instruction) -> tuple[str, ...]:
    if instr.is_json or not instr.args:
        return instr.args
    return (" ".join(instr.args),)


_MIN_INTERVAL_NS = 1_000_000  # dockerd refuses health intervals under 1ms (0 means default)


def _interval(flags: Mapping[str, str], name: str) -> int:
    text = flags.get(name, "")
    if not text:
        return 0
    value = parse_go_duration(text)
    if value == 0:
        return 0
    if value < _MIN_INTERVAL_NS:
        raise InvalidArgument(f"Interval {go_quote(name)} cannot be less than 1ms")
    return value


def _parse_healthcheck(instr: Instruction) -> HealthcheckCommand:
    _at_least_one(instr, "HEALTHCHECK")
    kind = instr.args[0].upper()
    rest = instr.args[1:]
    if kind == "NONE":
        if rest:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return HealthcheckCommand(HealthConfig(test=("NONE",)))
    flags = _parse_flags(
        instr, ("interval", "timeout", "start-period", "start-interval", "retries")
    )
    if kind != "CMD":
        raise InvalidArgument(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    cmdline = rest if instr.is_json else ((" ".join(rest),) if rest else ())
    if not cmdline:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    retries = 0
    if flags.get("retries"):
        retries = _parse_int32(flags["retries"])
        if retries < 0:
            raise InvalidArgument(f"--retries cannot be negative ({retries})")
    return HealthcheckCommand(
        HealthConfig(
            test=("CMD" if instr.is_json else "CMD-SHELL", *cmdline),
            interval_ns=_interval(flags, "interval"),
            timeout_ns=_interval(flags, "timeout"),
            start_period_ns=_interval(flags, "start-period"),
            start_interval_ns=_interval(flags, "start-interval"),
            retries=retries,
        )
    )


def _parse_onbuild(instr: Instruction) -> OnbuildCommand:
    _at_least_one(instr, "ONBUILD")
    _parse_flags(instr)
    trigger = instr.args[0].upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    return OnbuildCommand(re.sub(r"(?i)^\s*ONBUILD\s*", "", instr.original, count=1))


def _parse_volume(instr: Instruction) -> VolumeCommand:
    _at_least_one(instr, "VOLUME")
    _parse_flags(instr)
    volumes = tuple(v.strip() for v in instr.args)
    if any(not v for v in volumes):
        raise InvalidArgument("VOLUME specified can not be an empty string")
    return VolumeCommand(volumes)


def parse_command(instr: Instruction) -> Command:
    """Check an instruction's arguments and flags and type it (buildkit's ParseInstruction)."""
    command = instr.command
    if command == "env":
        return EnvCommand(_key_values(instr, "ENV"))
    if command == "label":
        return LabelCommand(_key_values(instr, "LABEL"))
    if command == "cmd":
        _parse_flags(instr)
        return CmdCommand(_cmdline(instr), prepend_shell=not instr.is_json)
    if command == "entrypoint":
        _parse_flags(instr)
        return EntrypointCommand(_cmdline(instr), prepend_shell=not instr.is_json)
    if command == "healthcheck":
        return _parse_healthcheck(instr)
    if command == "expose":
        _at_least_one(instr, "EXPOSE")
        _parse_flags(instr)
        return ExposeCommand(tuple(sorted(instr.args)))
    if command == "user":
        user = _exactly_one(instr, "USER")
        _parse_flags(instr)
        return UserCommand(user)
    if command == "volume":
        return _parse_volume(instr)
    if command == "workdir":
        path = _exactly_one(instr, "WORKDIR")
        _parse_flags(instr)
        return WorkdirCommand(path)
    if command == "stopsignal":
        # buildkit does not look at STOPSIGNAL's flags at all.
        return StopSignalCommand(_exactly_one(instr, "STOPSIGNAL"))
    if command == "onbuild":
        return _parse_onbuild(instr)
    raise InvalidArgument(f"unknown instruction: {instr.keyword}")




def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII):
        raise InvalidArgument(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise InvalidArgument(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


_DURATION_UNITS = {
    "ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
    "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string ("1m30s", "1.5h", "100ms"), as HEALTHCHECK takes."""
    quoted = go_quote(text)
    rest = text
    sign = 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise InvalidArgument(f"time: invalid duration {quoted}")
    total = 0
    while rest:
        match = _DURATION_PART.match(rest)
        assert match is not None  # every group may be empty
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise InvalidArgument(f"time: invalid duration {quoted}")
        if not unit:
            raise InvalidArgument(f"time: missing unit in duration {quoted}")
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise InvalidArgument(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        rest = rest[match.end() :]
    if total > 2**63 - 1:
        raise InvalidArgument(f"time: invalid duration {quoted}")
    return sign * total

