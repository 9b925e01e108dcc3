"""Dockerfile instructions applied to an image config: `docker commit/import --change`.

dockerd treats the changes as a small Dockerfile (the strings joined by newlines) and runs
them through its builder with nothing but config edits allowed. This module does the same in
three layers, kept apart so the Dockerfile builder can grow from them:

1. words: `split_words` (quote-preserving split), `extract_flags` and `ShellLexer`
   (quote removal and `$VAR` / `${VAR:-x}` expansion, as buildkit's shell lexer);
2. instructions: `logical_lines` (continuations, comments) and `parse_instruction`, the
   per-instruction argument shapes of the Dockerfile parser;
3. commands: typed commands checked like buildkit's instruction parser, and `apply_changes`,
   which evaluates them against an `ImageConfig` with dockerd's semantics.

Error messages are buildkit's and dockerd's, since `docker commit` prints them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from dockyard.errors import InvalidArgument
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.model.signals import parse_signal

DEFAULT_ESCAPE = "\\"
DEFAULT_SHELL = ("/bin/sh", "-c")

# The instructions dockerd accepts in a change (builder.validCommitCommands).
CHANGE_COMMANDS = frozenset(
    {"cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild", "stopsignal",
     "user", "volume", "workdir"}
)  # fmt: skip

_LINE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def _go_quote(text: str) -> str:
    """A string quoted the way Go's %q prints it, for messages copied from Go code."""
    return json.dumps(text, ensure_ascii=False)


# --- 1. words ---------------------------------------------------------------------------


def split_words(rest: str, escape: str = DEFAULT_ESCAPE) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes in the words.

    Quote removal happens later, in `ShellLexer.process_word`, so that `K="a b"` stays one
    word here and becomes `a b` there.
    """
    words: list[str] = []
    buf: list[str] = []
    quote = ""
    in_word = False
    blank_ok = False  # a quoted empty string ("") is still a word
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
        elif ch.isspace():
            if in_word and (blank_ok or buf):
                words.append("".join(buf))
            buf, in_word, blank_ok = [], False, False
        else:
            in_word = True
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
        i += 1
    if in_word and (blank_ok or buf):
        words.append("".join(buf))
    return words


def extract_flags(line: str, escape: str = DEFAULT_ESCAPE) -> tuple[list[str], str]:
    """Take the leading `--name=value` words off an instruction's arguments.

    Returns the flags (quotes removed) and the rest of the line; a bare `--` ends the flags.
    """
    flags: list[str] = []
    buf: list[str] = []
    quote = ""
    in_word = False
    blank_ok = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            if not line.startswith("--", i):
                return flags, line[i:]
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            else:
                if ch == escape:
                    if i + 1 == n:
                        quote = ""
                        i += 1
                        continue
                    i += 1
                    ch = line[i]
                buf.append(ch)
        elif ch.isspace():
            word = "".join(buf)
            if word == "--":
                return flags, line[i:]
            if blank_ok or word:
                flags.append(word)
            buf, in_word, blank_ok = [], False, False
        elif ch in "'\"":
            quote, blank_ok = ch, True
        else:
            if ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                i += 1
                ch = line[i]
            buf.append(ch)
        i += 1
    word = "".join(buf)
    if in_word and word != "--" and (blank_ok or word):
        flags.append(word)
    return flags, ""


class _LexError(Exception):
    pass


class _Words:
    """Collects the whitespace-separated words of a processed string (for EXPOSE $PORTS)."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if not ch.isspace():
            self.add_raw(ch)
        elif self.in_word and self.buf:
            self.words.append("".join(self.buf))
            self.buf, self.in_word = [], False

    def add_raw(self, text: str) -> None:
        if text:
            self.buf.append(text)
        self.in_word = True

    def add_expanded(self, text: str) -> None:
        # Unquoted expansions split into words, as in a shell.
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf, self.in_word = [], False
        return self.words


_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _WordScan:
    """One pass of the shell lexer over one word; see ShellLexer."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_escapes = False  # keep escapes in the result (inside ${x#pattern})

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to `stop` (consumed) or, with stop "", to the end of the text."""
        outer_raw, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = outer_raw

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) != "":
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$":
                value = self.dollar()
                words.add_expanded(value)
            elif ch == "'":
                value = self.single_quoted()
                words.add_raw(value)
            elif ch == '"':
                value = self.double_quoted()
                words.add_raw(value)
            else:
                value = self.next()
                if value == self.escape:
                    if self.raw_escapes:
                        words.add_raw(value)
                        result.append(value)
                    value = self.next()
                    if not value:
                        break
                    words.add_raw(value)
                else:
                    words.add_char(value)
            result.append(value)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quoted(self) -> str:
        self.next()
        start = self.pos
        end = self.text.find("'", start)
        if end < 0:
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        return self.text[start:end]

    def double_quoted(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == "":
                raise _LexError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if not nxt:
                    continue
                # Inside double quotes the escape only escapes ", $ and itself.
                if nxt in ('"', "$", self.escape):
                    ch = self.next()
                elif self.raw_escapes:
                    continue
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while (ch := self.peek()) and (ch.isalnum() or ch == "_"):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        ch = self.peek()
        if ch == "":
            raise _LexError("syntax error: missing '}'")
        if ch in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if op == "":
            raise _LexError("syntax error: missing '}'")
        if op == "}":
            return self.env.get(name, "")
        null_is_unset = op == ":"
        if null_is_unset:
            op += self.next()
        kind = op[-1:]
        if kind in ("-", "+", "?", "#", "%"):
            if null_is_unset and kind in "#%":
                raise _LexError(f"unsupported modifier ({op}) in substitution")
            word = self._operand("}", raw_escapes=kind in "#%")
            return self._modify(name, kind, null_is_unset, word)
        if op == "/":
            return self._replace(name)
        raise _LexError(f"unsupported modifier ({op}) in substitution")

    def _operand(self, stop: str, raw_escapes: bool) -> str:
        try:
            return self.until(stop, raw_escapes)[0]
        except _LexError:
            if self.peek() == "":
                raise _LexError("syntax error: missing '}'") from None
            raise

    def _modify(self, name: str, kind: str, null_is_unset: bool, word: str) -> str:
        is_set = name in self.env
        value = self.env.get(name, "")
        missing = not is_set or (null_is_unset and value == "")
        if kind == "-":
            return word if missing else value
        if kind == "+":
            return "" if missing else word
        if kind == "?":
            if not is_set:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(kind)
        pattern = word[1:] if greedy else word
        if kind == "#":
            return _trim_prefix(pattern, value, greedy)
        return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern = self.until("/", raw_escapes=True)[0]
        except _LexError:
            if self.peek() == "":
                raise _LexError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._operand("}", raw_escapes=True)
        regex = _shell_pattern(pattern, greedy=True, anchored=False)
        value = self.env.get(name, "")
        return regex.sub(lambda _: replacement, value, count=0 if replace_all else 1)


def _shell_pattern(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Translate a shell glob (`*`, `?`, backslash escapes) to a regular expression."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(".*" if greedy else ".*?")
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            nxt = pattern[i : i + 1]
            if nxt in ("}", "/"):
                continue
            if nxt not in ("*", "?", "\\"):
                raise _LexError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'"
                )
            out.append("\\" + nxt)
            i += 1
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _shell_pattern(pattern, greedy, anchored=True).match(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a glob for suffix matching, keeping each escape before the char it escapes."""
    pieces: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            pieces.append(pattern[i : i + 2])
            i += 2
        else:
            pieces.append(pattern[i])
            i += 1
    return "".join(reversed(pieces))


@dataclass(frozen=True)
class ShellLexer:
    """Quote removal and variable expansion of Dockerfile words (no command substitution,
    no globbing: a Dockerfile word is not run by a shell)."""

    escape: str = DEFAULT_ESCAPE

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """The word with quotes removed and variables expanded, whitespace kept."""
        return self._run(word, env)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Like process_word, then split where unquoted whitespace remains."""
        return self._run(word, env)[1]

    def _run(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        try:
            return _WordScan(word, env, self.escape).until("", raw_escapes=False)
        except _LexError as exc:
            raise InvalidArgument(f"failed to process {_go_quote(word)}: {exc}") from None


def env_mapping(env: Iterable[str]) -> dict[str, str]:
    """Map "K=V" entries; a later entry for a key wins, as in a process environment."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


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
        parts = _LINE_WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{keyword} must have two arguments")
        return (parts[0], parts[1], "")
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidArgument(
                f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value"
            )
        key, _, value = word.partition("=")
        out += [key, value, "="]
    return tuple(out)


def _first_space(text: str) -> str:
    """The first whitespace character in `text`, or "" if there is none."""
    return next((ch for ch in text if ch.isspace()), "")


def parse_instruction(line: str, escape: str = DEFAULT_ESCAPE) -> Instruction:
    """Shape one logical line into an Instruction (the Dockerfile parser's job)."""
    split = _LINE_WHITESPACE.split(line.strip(), maxsplit=1)
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
        args = tuple(_LINE_WHITESPACE.split(rest)) if rest else ()
    elif command in ("user", "workdir", "stopsignal", "maintainer"):
        args = (rest,) if rest else ()
    elif command in ("volume", "add", "copy"):
        array = _json_array(rest)
        is_json = array is not None
        if array is not None:
            args = tuple(array)
        else:
            args = tuple(_LINE_WHITESPACE.split(rest)) if rest else ()
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
        raise InvalidArgument(f"Interval {_go_quote(name)} cannot be less than 1ms")
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
        raise InvalidArgument(f"Unknown type {_go_quote(kind)} in HEALTHCHECK (try CMD)")
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


# --- evaluation ---------------------------------------------------------------------------


def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII):
        raise InvalidArgument(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise InvalidArgument(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    return value


_DURATION_UNITS = {
    "ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
    "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string ("1m30s", "1.5h", "100ms"), as HEALTHCHECK takes."""
    quoted = _go_quote(text)
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
            raise InvalidArgument(f"time: unknown unit {_go_quote(unit)} in duration {quoted}")
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        rest = rest[match.end() :]
    if total > 2**63 - 1:
        raise InvalidArgument(f"time: invalid duration {quoted}")
    return sign * total


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

    def word(self, text: str) -> str:
        return self.lexer.process_word(text, env_mapping(self.config.env))

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
        env_now = env_mapping(cfg.env)
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
