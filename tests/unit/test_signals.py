"""Signal parsing and naming as docker kill, stop and STOPSIGNAL use them."""

from __future__ import annotations

import signal

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.signals import SIGNALS, parse_signal, signal_name


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("sigkill", 9), ("SigKill", 9),
        ("TERM", 15), ("WINCH", 28), ("SIGWINCH", 28), ("HUP", 1), ("USR1", 10), ("USR2", 12),
        ("CHLD", 17), ("CLD", 17), ("IOT", 6), ("POLL", 29), ("IO", 29), ("STKFLT", 16),
        ("PWR", 30), ("SYS", 31), ("RTMIN", 34), ("SIGRTMIN+3", 37), ("RTMIN+15", 49),
        ("RTMAX-14", 50), ("rtmax-1", 63), ("SIGRTMAX", 64), ("64", 64), ("1", 1), ("34", 34),
    ],
)  # fmt: skip
def test_parse(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize(
    "text",
    ["0", "00", "", "FOO", "SIG", "SIGSIGKILL", "65", "32", "33", "-9", "+9", " 9", "9 ",
     "KILL ", "RTMIN+16", "RTMAX-15", "RTMIN+0", "١"],
)  # fmt: skip
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_signal(text)
    assert info.value.message == f"Invalid signal: {text}"


@pytest.mark.parametrize(
    ("number", "name"),
    [(15, "SIGTERM"), (9, "SIGKILL"), (6, "SIGABRT"), (17, "SIGCHLD"), (29, "SIGIO"),
     (34, "SIGRTMIN"), (36, "SIGRTMIN+2"), (49, "SIGRTMIN+15"), (50, "SIGRTMAX-14"),
     (64, "SIGRTMAX")],
)  # fmt: skip
def test_signal_name(number: int, name: str) -> None:
    assert signal_name(number) == name


@pytest.mark.parametrize("number", [0, -1, 32, 33, 65])
def test_signal_name_invalid(number: int) -> None:
    with pytest.raises(InvalidArgument, match=f"^Invalid signal: {number}$"):
        signal_name(number)


def test_names_round_trip() -> None:
    for number in [*range(1, 32), *range(34, 65)]:
        assert parse_signal(signal_name(number)) == number
        assert parse_signal(str(number)) == number


def test_classic_numbers_agree_with_the_host() -> None:
    # The table is written out; on Linux it must agree with the C library's numbers.
    for name in ("HUP", "INT", "KILL", "TERM", "USR1", "STOP", "CONT", "WINCH", "CHLD", "PWR"):
        assert SIGNALS[name] == getattr(signal, "SIG" + name)
    assert SIGNALS["RTMIN"] == 34 and SIGNALS["RTMAX"] == signal.SIGRTMAX
