"""Parsers of the kernel's accounting files, with texts recorded from real hosts."""

from __future__ import annotations

import pytest

from dockyard.linux.statformats import (
    parse_blkio_v1,
    parse_counter,
    parse_flat_keyed,
    parse_io_stat_v2,
    parse_meminfo_total,
    parse_net_dev,
    parse_percpu,
    parse_pid_list,
    parse_proc_stat,
    sorted_stats,
    ticks_to_ns,
)
from dockyard.model.stats import UINT64_MAX, BlkioEntry, InterfaceStats

PROC_STAT = """\
cpu  12031 7 4282 92850 419 3 68 188 5 6
cpu0 4812 0 1783 48198 43 0 13 83 0 0
cpu1 7219 7 2498 44652 376 3 55 105 5 6
intr 368786 0 0 0 0
ctxt 830888
btime 1764624960
processes 9042
"""

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0:315806584    8264    1    2    3     4          5         6   560224    4830    7    8    9    10      11         12
"""


@pytest.mark.parametrize(
    ("text", "unlimited", "expected"),
    [
        ("115421184\n", 0, 115421184),
        ("  42  ", 0, 42),
        ("max\n", 0, 0),
        ("max\n", UINT64_MAX, UINT64_MAX),
        ("9223372036854771712\n", 0, 9223372036854771712),
        ("-1\n", 0, 0),  # v1 reports some "unset" values as -1
        ("+7", 0, 7),
        ("99999999999999999999999", 0, UINT64_MAX),
        ("", 0, 0),
        ("garbage", UINT64_MAX, 0),
        ("12 34", 0, 0),
    ],
)
def test_parse_counter(text: str, unlimited: int, expected: int) -> None:
    assert parse_counter(text, unlimited=unlimited) == expected


def test_parse_flat_keyed_memory_stat() -> None:
    text = "cache 101625856\nrss 1896448\nhierarchical_memory_limit 9223372036854771712\n"
    assert parse_flat_keyed(text) == {
        "cache": 101625856,
        "rss": 1896448,
        "hierarchical_memory_limit": 9223372036854771712,
    }


def test_parse_flat_keyed_skips_malformed_lines_and_clamps_negatives() -> None:
    text = "nr_periods 5\n\nbroken\nthree fields here\nword notanumber\nneg -3\n  spaced   9  \n"
    assert parse_flat_keyed(text) == {"nr_periods": 5, "neg": 0, "spaced": 9}


def test_parse_flat_keyed_last_duplicate_wins() -> None:
    assert parse_flat_keyed("a 1\na 2\n") == {"a": 2}


def test_parse_percpu() -> None:
    assert parse_percpu("78496214443 119661402262 \n") == (78496214443, 119661402262)
    assert parse_percpu("") == ()
    assert parse_percpu("5 x 6") == (5, 6)


def test_ticks_to_ns_uses_user_hz_100() -> None:
    assert ticks_to_ns(14566) == 145_660_000_000
    assert ticks_to_ns(1) == 10_000_000
    assert ticks_to_ns(0) == 0


def test_parse_blkio_v1_throttle_file() -> None:
    text = (
        "254:0 Read 1458176\n254:0 Write 8192\n254:0 Sync 4096\n254:0 Async 1462272\n"
        "254:0 Discard 0\n254:0 Total 1466368\n8:16 Read 0\nTotal 1466368\n"
    )
    assert parse_blkio_v1(text) == (
        BlkioEntry(254, 0, "Read", 1458176),
        BlkioEntry(254, 0, "Write", 8192),
        BlkioEntry(254, 0, "Sync", 4096),
        BlkioEntry(254, 0, "Async", 1462272),
        BlkioEntry(254, 0, "Discard", 0),
        BlkioEntry(254, 0, "Total", 1466368),
        BlkioEntry(8, 16, "Read", 0),
    )


def test_parse_blkio_v1_without_op_and_empty() -> None:
    # sectors_recursive and time_recursive have no op column.
    assert parse_blkio_v1("8:0 2048\n8:16 12\n") == (
        BlkioEntry(8, 0, "", 2048),
        BlkioEntry(8, 16, "", 12),
    )
    assert parse_blkio_v1("Total 0\n") == ()
    assert parse_blkio_v1("") == ()
    assert parse_blkio_v1("x:y Read 3\n1:2 Read\n1 2 3 4 5\n") == ()


def test_parse_io_stat_v2() -> None:
    text = (
        "254:0 rbytes=1458176 wbytes=8192 rios=48 wios=2 dbytes=0 dios=0\n"
        "8:0 wbytes=4096 wios=1 junk rbytes=x\n"
        "bad line\n"
        "\n"
    )
    assert parse_io_stat_v2(text) == (
        BlkioEntry(254, 0, "read", 1458176),
        BlkioEntry(254, 0, "write", 8192),
        BlkioEntry(8, 0, "read", 0),
        BlkioEntry(8, 0, "write", 4096),
    )
    assert parse_io_stat_v2("") == ()


def test_parse_proc_stat_sums_seven_fields_in_ns_and_counts_cpus() -> None:
    system_ns, cpus = parse_proc_stat(PROC_STAT)
    # user+nice+system+idle+iowait+irq+softirq; steal (188) and guest (5, 6) are left out
    assert system_ns == (12031 + 7 + 4282 + 92850 + 419 + 3 + 68) * 10_000_000
    assert cpus == 2


def test_parse_proc_stat_stops_at_the_first_non_cpu_line() -> None:
    text = "cpu  1 1 1 1 1 1 1\nintr 5\ncpu3 1 1 1 1 1 1 1\n"
    assert parse_proc_stat(text) == (7 * 10_000_000, 0)


def test_parse_proc_stat_degenerate() -> None:
    assert parse_proc_stat("") == (0, 0)
    assert parse_proc_stat("cpu  1 2 3\ncpu0 1 2 3\n") == (0, 1)  # too few fields: no total


def test_parse_net_dev() -> None:
    assert parse_net_dev(NET_DEV) == (
        InterfaceStats("lo", 3193, 29, 0, 0, 3193, 29, 0, 0),
        InterfaceStats("eth0", 315806584, 8264, 1, 2, 560224, 4830, 7, 8),
    )


def test_parse_net_dev_skips_headers_and_short_lines() -> None:
    assert parse_net_dev(NET_DEV.splitlines()[0] + "\n") == ()
    assert parse_net_dev("h\nh\n  x: 1 2 3\nnocolon 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n") == ()


def test_parse_meminfo_total() -> None:
    assert parse_meminfo_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n") == 24684084 * 1024
    assert parse_meminfo_total("MemFree: 1 kB\n") == 0
    assert parse_meminfo_total("MemTotal: 100\n") == 100


def test_parse_pid_list() -> None:
    assert parse_pid_list("1\n23\n456\n") == frozenset({1, 23, 456})
    assert parse_pid_list("") == frozenset()


def test_sorted_stats_fills_missing_keys_and_sorts() -> None:
    assert sorted_stats({"rss": 5, "extra": 9}, ("rss", "cache")) == (("cache", 0), ("rss", 5))
