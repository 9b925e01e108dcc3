"""`docker top`: the ps arguments dockerd accepts, and its reading of ps output.

dockerd runs the host's `ps` with the client's arguments (default `-ef`) plus `-q<pids>`,
and keeps the rows whose PID column is one of the container's processes; thread rows
(PID "-", from `-m`) follow the process row they belong to. The rules and messages here
are those of moby's daemon/top_unix.go; its errors are plain ones, so 500s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from dockyard.errors import Internal

DEFAULT_PS_ARGS = "-ef"
# `-o user=PID` would rename another column to PID and fool the filter (Go's \s is ASCII).
_RENAMED_PID = re.compile(r"[\t\n\f\r ]+([^\t\n\f\r ]*)=[\t\n\f\r ]*(PID[^\t\n\f\r ]*)")
# dockerd splits fields on ASCII whitespace only (moby#24358): not on \v or Unicode spaces.
_FIELD_SEPARATORS = re.compile(r"[\t\n\f\r ]+")
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63


@dataclass(frozen=True)
class Top:
    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


def ps_arguments(ps_args: str) -> tuple[str, ...]:
    """The argv tail for ps: validated, split on single spaces exactly as dockerd splits it."""
    if ps_args == "":
        ps_args = DEFAULT_PS_ARGS
    for key, value in _RENAMED_PID.findall(ps_args):
        if key != "pid":
            raise Internal(f'specifying "{key}={value}" is not allowed')
    return tuple(ps_args.split(" "))


def pids_argument(pids: Iterable[int]) -> str:
    """`-q1,2,3`: ps lists only these processes (quick and exact)."""
    return "-q" + ",".join(str(p) for p in sorted(pids))


def _fields(line: str) -> list[str]:
    return [f for f in _FIELD_SEPARATORS.split(line) if f]


def _pid(value: str) -> int:
    # Go's strconv.Atoi, with its error text, which dockerd passes on.
    if not value.isascii() or not _GO_INT.fullmatch(value):
        raise Internal(
            f"Unexpected pid '{value}': strconv.Atoi: parsing \"{value}\": invalid syntax"
        )
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise Internal(
            f"Unexpected pid '{value}': strconv.Atoi: parsing \"{value}\": value out of range"
        )
    return number


def _row(fields: list[str], width: int) -> tuple[str, ...]:
    # Columns after the last title (a CMD with spaces) are joined into the last one.
    head = fields[: width - 1]
    head += [""] * (width - 1 - len(head))
    return (*head, " ".join(fields[width - 1 :]))


def parse_ps(output: str, pids: AbstractSet[int]) -> Top:
    """ps output -> the title row and the rows of the container's processes."""
    lines = output.split("\n")
    titles = tuple(_fields(lines[0]))
    if "PID" not in titles:
        raise Internal("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    rows: list[tuple[str, ...]] = []
    previous_was_ours = False
    for line in lines[1:]:
        if line == "":
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:  # dockerd would crash on such a line; it cannot be ours
            previous_was_ours = False
            continue
        if fields[pid_index] == "-":  # a thread of the process row above
            if previous_was_ours:
                rows.append(_row(fields, len(titles)))
            continue
        previous_was_ours = _pid(fields[pid_index]) in pids
        if previous_was_ours:
            rows.append(_row(fields, len(titles)))
    return Top(titles=titles, processes=tuple(rows))
