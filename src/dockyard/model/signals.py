"""Signal names and numbers as `docker kill -s`, `docker stop` and STOPSIGNAL use them.

The table is Linux's (x86 and arm numbering; mips differs and is not supported), written out
rather than read from the `signal` module so parsing does not depend on the daemon's host.
"""

from __future__ import annotations

from types import MappingProxyType

from dockyard.errors import InvalidArgument

SIGRTMIN = 34  # glibc reserves 32 and 33 for itself, so containers see 34 as the first
SIGRTMAX = 64

_CLASSIC = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "PWR": 30, "SYS": 31,
}  # fmt: skip
# Old names for the same numbers: accepted when parsing, never printed.
_ALIASES = {"IOT": 6, "CLD": 17, "POLL": 29}


def _realtime() -> dict[str, int]:
    names = {"RTMIN": SIGRTMIN, "RTMAX": SIGRTMAX}
    # The middle of the range is named from whichever end is nearer, as in the kernel's list.
    for offset in range(1, 16):
        names[f"RTMIN+{offset}"] = SIGRTMIN + offset
    for offset in range(1, 15):
        names[f"RTMAX-{offset}"] = SIGRTMAX - offset
    return names


SIGNALS: MappingProxyType[str, int] = MappingProxyType({**_CLASSIC, **_ALIASES, **_realtime()})
"""Every accepted name without its "SIG" prefix, upper case, mapped to its number."""

_NAMES: MappingProxyType[int, str] = MappingProxyType(
    {num: "SIG" + name for name, num in {**_CLASSIC, **_realtime()}.items()}
)


def parse_signal(text: str) -> int:
    """Parse "9", "KILL", "SIGKILL", "kill" or "SIGRTMIN+3" to a signal number.

    0 is refused: it would only test whether the process exists.
    """
    if text.isascii() and text.isdigit():
        if len(text) > 3:  # no signal needs more digits; int() refuses beyond 4,300 of them
            raise InvalidArgument(f"Invalid signal: {text}")
        num = int(text)
        if num in _NAMES:
            return num
        raise InvalidArgument(f"Invalid signal: {text}")
    name = text.upper()
    name = name.removeprefix("SIG")
    named = SIGNALS.get(name)
    if named is None:
        raise InvalidArgument(f"Invalid signal: {text}")
    return named


def signal_name(num: int) -> str:
    """The canonical name of a signal number: 15 -> "SIGTERM", 36 -> "SIGRTMIN+2"."""
    try:
        return _NAMES[num]
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {num}") from None
