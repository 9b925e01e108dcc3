"""The /etc/hosts edits of a live connect and disconnect (model/endpoints.py)."""

from __future__ import annotations

from ipaddress import IPv4Interface

from dockyard.model.endpoints import Endpoint, hosts_with, hosts_without, own_hosts_lines

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\th1\n"


def test_a_join_appends_the_new_address_with_the_hostname() -> None:
    assert hosts_with(BASE, [("10.1.0.5", "h1")]) == BASE + "10.1.0.5\th1\n"


def test_a_join_does_not_repeat_an_entry_and_mends_a_missing_newline() -> None:
    assert hosts_with(BASE, [("10.0.0.2", "h1")]) == BASE
    assert hosts_with("10.0.0.2 h1", [("10.0.0.3", "h1")]) == "10.0.0.2 h1\n10.0.0.3\th1\n"
    assert hosts_with("", [("10.0.0.3", "h.example h")]) == "10.0.0.3\th.example h\n"


def test_a_leave_removes_only_its_own_entries() -> None:
    edited = BASE + "10.1.0.5\th1\n10.1.0.5\tsomeone-else\n# 10.1.0.5 h1\n"
    assert hosts_without(edited, [("10.1.0.5", "h1")]) == BASE + "10.1.0.5\tsomeone-else\n# 10.1.0.5 h1\n"
    assert hosts_without(BASE, [("10.9.9.9", "h1")]) == BASE


def test_join_then_leave_is_where_it_started() -> None:
    e = Endpoint("n", "net", "e", "eth1", "vethx", "02:42:0a:01:00:05", ipv4=IPv4Interface("10.1.0.5/24"))
    lines = own_hosts_lines([e], "box", "example.org")
    assert lines == [("10.1.0.5", "box.example.org box")]
    assert hosts_without(hosts_with(BASE, lines), lines) == BASE
