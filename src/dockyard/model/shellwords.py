"""Words of a Dockerfile line, as buildkit's shell lexer sees them: quote-preserving
splits, `--flag` extraction, quote removal and `$VAR` / `${VAR:-x}` expansion."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

DEFAULT_ESCAPE = "\\"

LINE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


def go_quote(text: str) -> str:
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
            raise InvalidArgument(f"failed to process {go_quote(word)}: {exc}") from None


def env_mapping(env: Iterable[str]) -> dict[str, str]:
    """Map "K=V" entries; a later entry for a key wins, as in a process environment."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out

