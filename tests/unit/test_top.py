"""`docker top`: ps argument rules, dockerd's parsing of ps output, and the ps runner."""

from __future__ import annotations

import asyncio
import os

import pytest

from dockyard.api.schemas.top import top_document
from dockyard.errors import Internal
from dockyard.linux.ps import run_ps
from dockyard.model.top import Top, parse_ps, pids_argument, ps_arguments

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 21:36 ?        00:00:06 /sbin/init splash
root        9875    9853  0 18:11 ?        00:00:00 httpd -f -p 80
root        9901    9875  0 18:11 ?        00:00:00 sh -c  sleep   100
nobody     12000       1  0 18:12 pts/0    00:00:00 -bash
"""


def test_ps_ef_keeps_the_container_rows_and_joins_the_command() -> None:
    top = parse_ps(PS_EF, {9875, 9901})
    assert top.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    assert top.processes == (
        ("root", "9875", "9853", "0", "18:11", "?", "00:00:00", "httpd -f -p 80"),
        (
            "root",
            "9901",
            "9875",
            "0",
            "18:11",
            "?",
            "00:00:00",
            "sh -c sleep 100",
        ),  # runs of spaces: one
    )


def test_no_matching_pid_gives_titles_and_no_rows() -> None:
    assert parse_ps(PS_EF, {4}) == Top(
        titles=("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"), processes=()
    )
    assert parse_ps(PS_EF, set()).processes == ()


def test_custom_columns_and_pid_not_first() -> None:
    top = parse_ps("  PID COMMAND\n 9875 httpd\n    7 other\n", {9875})
    assert top == Top(("PID", "COMMAND"), (("9875", "httpd"),))
    top = parse_ps("COMMAND   PID\nhttpd    9875\n", {9875})
    assert top.processes == (("httpd", "9875"),)


def test_thread_rows_follow_their_process() -> None:
    output = (
        "  PID   TID COMMAND\n    1     - init\n    -     1 -\n    -    59 -\n"
        " 9875     - httpd\n    -  9875 -\n    -  9876 -\n"
    )
    top = parse_ps(output, {9875})
    assert top.processes == (("9875", "-", "httpd"), ("-", "9875", "-"), ("-", "9876", "-"))


def test_a_thread_row_first_is_not_ours() -> None:
    assert parse_ps("PID CMD\n- x\n5 y\n", {5}).processes == (("5", "y"),)


def test_no_pid_column_is_dockerds_error() -> None:
    with pytest.raises(Internal, match="^Couldn't find PID field in ps output$"):
        parse_ps("USER COMMAND\nroot sh\n", {1})
    with pytest.raises(Internal, match="Couldn't find PID field"):
        parse_ps("", {1})
    with pytest.raises(Internal, match="Couldn't find PID field"):
        parse_ps("pid comm\n1 sh\n", {1})  # the title must be exactly PID


def test_unexpected_pid_carries_gos_message() -> None:
    with pytest.raises(Internal) as info:
        parse_ps("PID CMD\nabc sh\n", {1})
    assert (
        info.value.message == "Unexpected pid 'abc': strconv.Atoi: parsing \"abc\": invalid syntax"
    )
    with pytest.raises(Internal, match="value out of range"):
        parse_ps("PID CMD\n99999999999999999999 sh\n", {1})
    with pytest.raises(Internal, match="invalid syntax"):
        parse_ps("PID CMD\n\u0661\u0662 sh\n", {12})  # Arabic-Indic digits are not Go digits


def test_fields_split_on_ascii_whitespace_only() -> None:
    # \v and non-breaking spaces stay inside a field, as dockerd's fieldsASCII does.
    top = parse_ps("PID\tCMD\n5\ta\u00a0b\vc\r\n", {5})
    assert top.titles == ("PID", "CMD")
    assert top.processes == (("5", "a\u00a0b\vc"),)


def test_short_rows_are_padded_and_too_short_rows_skipped() -> None:
    top = parse_ps("USER PID TTY CMD\nroot 5\nroot\nroot 6 ? sh\n", {5, 6})
    assert top.processes == (("root", "5", "", ""), ("root", "6", "?", "sh"))


def test_ps_arguments_default_split_and_validation() -> None:
    assert ps_arguments("") == ("-ef",)
    assert ps_arguments("aux") == ("aux",)
    assert ps_arguments("-o pid,comm") == ("-o", "pid,comm")
    assert ps_arguments("-o  pid") == ("-o", "", "pid")  # split on single spaces, as dockerd
    assert ps_arguments("-o pid=PID,comm") == ("-o", "pid=PID,comm")
    assert ps_arguments("-o pid= PID") == ("-o", "pid=", "PID")
    with pytest.raises(Internal) as info:
        ps_arguments("-o user=PID")
    assert info.value.message == 'specifying "user=PID" is not allowed'
    with pytest.raises(Internal, match='specifying "comm=PIDX" is not allowed'):
        ps_arguments("-e -o pid -o comm= PIDX")


def test_pids_argument() -> None:
    assert pids_argument([30, 2, 11]) == "-q2,11,30"
    assert pids_argument({7}) == "-q7"


def test_top_document() -> None:
    doc = top_document(Top(("PID", "COMMAND"), (("9875", "httpd"),)))
    assert doc == {"Processes": [["9875", "httpd"]], "Titles": ["PID", "COMMAND"]}
    assert top_document(Top(("PID",), ())) == {"Processes": [], "Titles": ["PID"]}


# The runner with the host's real ps (procps), on our own process: no root needed.
def test_run_ps_lists_only_the_given_pids() -> None:
    me = os.getpid()
    output = asyncio.run(run_ps(ps_arguments("-o pid,comm"), {me}))
    top = parse_ps(output, {me})
    assert top.titles == ("PID", "COMMAND")
    assert [row[0] for row in top.processes] == [str(me)]
    assert len(output.strip().splitlines()) == 2  # -q made ps list just that one


def test_run_ps_falls_back_without_q_for_forest_listings() -> None:
    me = os.getpid()
    output = asyncio.run(run_ps(ps_arguments("axf"), {me}))  # procps refuses -q with f
    assert str(me) in [row[0] for row in parse_ps(output, {me}).processes]
    assert len(output.splitlines()) > 2  # the full listing: filtering is the parser's


def test_run_ps_failure_is_500_with_the_first_stderr_line() -> None:
    with pytest.raises(Internal) as info:
        asyncio.run(run_ps(ps_arguments("--no-such-option"), {os.getpid()}))
    assert info.value.message.startswith("ps: ")
    assert "\n" not in info.value.message and len(info.value.message) > 4


def _children() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


def test_run_ps_times_out_and_kills() -> None:
    before = _children()

    async def scenario() -> None:
        with pytest.raises(Internal, match="timed out"):
            await run_ps(["30"], set(), ps="sleep", timeout=0.2)

    asyncio.run(scenario())
    assert _children() == before  # the sleep was killed and reaped


def test_run_ps_cancelled_leaves_no_process() -> None:
    before = _children()

    async def scenario() -> None:
        task = asyncio.create_task(run_ps(["30"], set(), ps="sleep"))
        await asyncio.sleep(0.2)
        assert len(_children() - before) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _children() == before


def test_run_ps_missing_binary() -> None:
    with pytest.raises(Internal, match="^ps: "):
        asyncio.run(run_ps(["-ef"], {1}, ps="/no/such/ps"))
