""".dockerignore: moby's patternmatcher rules, which the CLI applies before it sends the
context and dockerd applies again to what it was sent.

A line is a pattern (cleaned like a path, a leading "/" dropped); "#" lines are comments,
"!" re-includes; the last pattern that matches a path (or one of its parent directories)
decides. `*` and `?` stay within one path element, `**` spans any number of them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a "!" pattern: re-includes what it matches
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1  # "**/" is taken as "**"
                # "**" at the end matches everything below, as in .gitignore.
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= n:
                raise InvalidArgument(f"syntax error in pattern {pattern!r}")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if pattern[i : i + 1] in ("!", "^", "]") else i)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern {pattern!r}")
            body = pattern[i:end]
            i = end + 1
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
        else:
            out.append(re.escape(ch))
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"syntax error in pattern {pattern!r}: {exc}") from None


def parse_ignore_file(text: str) -> tuple[Pattern, ...]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                raise InvalidArgument('illegal exclusion pattern: "!"')
        line = posixpath.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line.lstrip("/") or "/"
        patterns.append(Pattern(line, exclusion, _compile(line)))
    return tuple(patterns)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_ignored(path: str, patterns: tuple[Pattern, ...]) -> bool:
    """Whether the context path (relative, "/"-separated) is left out of the build."""
    path = posixpath.normpath(path).lstrip("/")
    candidates = _parents(path)
    ignored = False
    for pattern in patterns:
        if pattern.exclusion != ignored:
            continue  # cannot change the outcome
        if any(pattern.regex.match(c) for c in candidates):
            ignored = not pattern.exclusion
    return ignored


def can_skip_dir(path: str, patterns: tuple[Pattern, ...]) -> bool:
    """An ignored directory whose contents no "!" pattern can bring back."""
    return is_ignored(path, patterns) and not any(p.exclusion for p in patterns)
