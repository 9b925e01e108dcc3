"""network/firewall: the nft script rendered from a frozen plan (the kernel's view of these
scripts is in tests/integration/test_firewall_nft.py)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from dockyard.errors import Internal
from dockyard.model.ports import ANY_V4, ANY_V6, Proto, Published
from dockyard.network.firewall import (
    BridgePlan,
    FirewallPlan,
    PortForward,
    Sysctl,
    render,
    render_additions,
    render_removal,
    required_sysctls,
)

BR0 = BridgePlan("dy0", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"))
C0 = IPv4Address("10.9.0.2")


def fwd(bridge: str, proto: Proto, cip: str, cport: int, hip: str, hport: int) -> PortForward:
    c = IPv6Address(cip) if ":" in cip else IPv4Address(cip)
    h = IPv6Address(hip) if ":" in hip else IPv4Address(hip)
    return PortForward(bridge, Published(proto, c, cport, h, hport))


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_one_bridge_one_published_port_whole_text() -> None:
    plan = FirewallPlan("dyt", (BR0,), (fwd("dy0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),))
    assert render(plan) == """\
table inet dyt {}
delete table inet dyt
table bridge dyt {}
delete table bridge dyt
table inet dyt {
\tchain guard {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tiifname != "dy0" ip daddr 10.9.0.0/24 ip daddr != 10.9.0.1 ct direction original drop
\t\tiifname "dy0" ip daddr 127.0.0.0/8 drop
\t}
\tchain nat_prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tmeta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.9.0.2:80
\t}
\tchain nat_output {
\t\ttype nat hook output priority -100; policy accept;
\t\tmeta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.9.0.2:80
\t}
\tchain nat_postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname "dy0" ip saddr 127.0.0.0/8 masquerade
\t\toifname "dy0" ct status dnat ip saddr 10.9.0.0/24 masquerade
\t\toifname != "dy0" ip saddr 10.9.0.0/24 masquerade
\t}
\tchain filter_output {
\t\ttype filter hook output priority filter; policy accept;
\t}
\tchain published {
\t\tct status dnat oifname "dy0" ip daddr 10.9.0.2 tcp dport 80 accept
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tjump published
\t\tiifname "dy0" oifname "dy0" accept
\t\toifname "dy0" drop
\t\tiifname "dy0" accept
\t}
}
"""


def test_empty_plan_still_replaces_both_tables() -> None:
    text = render(FirewallPlan("dyt"))
    assert lines(text)[:5] == ["table inet dyt {}", "delete table inet dyt", "table bridge dyt {}", "delete table bridge dyt", "table inet dyt {"]
    assert "table bridge dyt {\n" not in text  # no icc=false bridge: no bridge table


def test_loopback_published_port_only_from_the_host() -> None:
    plan = FirewallPlan("dyt", (BR0,), (fwd("dy0", Proto.UDP, "10.9.0.2", 53, "127.0.0.1", 5353),))
    text = lines(render(plan))
    dnat = "ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.9.0.2:53"
    assert text.count(dnat) == 1  # output only, not prerouting
    assert text.index(dnat) > text.index("type nat hook output priority -100; policy accept;")
    assert 'iifname != "lo" ip daddr 127.0.0.1 udp dport 5353 drop' in text
    assert 'oifname "dy0" ip saddr 127.0.0.0/8 masquerade' in text
    assert required_sysctls(plan) == (
        Sysctl(("net", "ipv4", "ip_forward"), "1"),
        Sysctl(("net", "ipv4", "conf", "dy0", "route_localnet"), "1"),
    )


def test_specific_host_address_in_both_hooks() -> None:
    plan = FirewallPlan("dyt", (BR0,), (fwd("dy0", Proto.TCP, "10.9.0.2", 80, "192.0.2.2", 80),))
    text = lines(render(plan))
    assert text.count("ip daddr 192.0.2.2 tcp dport 80 dnat ip to 10.9.0.2:80") == 2
    # Not reachable over loopback: no route_localnet, no loopback masquerade.
    assert required_sysctls(plan) == (Sysctl(("net", "ipv4", "ip_forward"), "1"),)
    assert not any("127.0.0.0/8 masquerade" in line for line in text)


def test_ipv6_published_port() -> None:
    br = BridgePlan("dy6", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"), IPv6Network("fd00:9::/64"), IPv6Address("fd00:9::1"))
    plan = FirewallPlan("dyt", (br,), (
        fwd("dy6", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),
        fwd("dy6", Proto.TCP, "fd00:9::2", 80, "::", 8080),
    ))  # fmt: skip
    text = lines(render(plan))
    assert "meta nfproto ipv6 fib daddr type local tcp dport 8080 dnat ip6 to [fd00:9::2]:80" in text
    assert "meta nfproto ipv6 ip6 daddr != ::1 fib daddr type local tcp dport 8080 dnat ip6 to [fd00:9::2]:80" in text
    assert "ip6 daddr ::1 tcp dport 8080 reject with tcp reset" in text  # refused, not hanging
    assert 'iifname != "dy6" ip6 daddr fd00:9::/64 ip6 daddr != fd00:9::1 ct direction original drop' in text
    assert 'oifname != "dy6" ip6 saddr fd00:9::/64 masquerade' in text
    assert 'ct status dnat oifname "dy6" ip6 daddr fd00:9::2 tcp dport 80 accept' in text
    assert Sysctl(("net", "ipv6", "conf", "all", "forwarding"), "1") in required_sysctls(plan)


def test_isolation_icc_and_internal() -> None:
    a = BridgePlan("dya", IPv4Network("10.9.1.0/24"), IPv4Address("10.9.1.1"))
    b = BridgePlan("dyb", IPv4Network("10.9.2.0/24"), IPv4Address("10.9.2.1"), icc=False)
    c = BridgePlan("dyc", IPv4Network("10.9.3.0/24"), IPv4Address("10.9.3.1"), internal=True)
    text = lines(render(FirewallPlan("dyt", (a, b, c))))
    forward = text[text.index("type filter hook forward priority filter; policy accept;") + 1 :]
    assert forward[: forward.index("}")] == [
        "ct state established,related accept",
        'iifname "dyc" oifname != "dyc" drop',
        'oifname "dyc" iifname != "dyc" drop',
        "jump published",
        'iifname "dya" oifname "dya" accept',
        'iifname "dyb" oifname "dyb" drop',
        'iifname "dyc" oifname "dyc" accept',
        'oifname "dya" drop',
        'oifname "dyb" drop',
        'oifname "dyc" drop',
        'iifname "dya" accept',
        'iifname "dyb" accept',
    ]
    # icc=false also between the ports of the bridge, in the bridge family.
    assert text[-6:] == [
        "table bridge dyt {",
        "chain forward {",
        "type filter hook forward priority filter; policy accept;",
        "ip daddr 10.9.2.0/24 drop",
        "}",
        "}",
    ]
    # The internal bridge is never masqueraded; no forwarding needed for it alone.
    assert not any('saddr 10.9.3.0/24 masquerade' in line for line in text)
    assert required_sysctls(FirewallPlan("dyt", (c,))) == ()


def test_no_masquerade() -> None:
    br = BridgePlan("dy0", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"), masquerade=False)
    assert "masquerade" not in render(FirewallPlan("dyt", (br,)))


def test_published_ports_accepted_before_icc_drop() -> None:
    br = BridgePlan("dy0", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"), icc=False)
    text = lines(render(FirewallPlan("dyt", (br,), (fwd("dy0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),))))
    assert text.index("jump published") < text.index('iifname "dy0" oifname "dy0" drop')
    assert 'ct status dnat oifname "dy0" ip daddr 10.9.0.2 tcp dport 80 accept' in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FirewallPlan("bad name"), "invalid table name"),
        (lambda: FirewallPlan("1dy"), "invalid table name"),
        (lambda: BridgePlan('dy"0'), "invalid bridge name"),
        (lambda: BridgePlan("a-very-long-bridge-name"), "invalid bridge name"),
        (lambda: BridgePlan("dy0", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.1.1")), "not in its subnet"),
        (lambda: FirewallPlan("dyt", (BR0, BR0)), "listed twice"),
        (lambda: FirewallPlan("dyt", (BR0,), (fwd("dy1", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 80),)), "unknown bridge"),
        (lambda: FirewallPlan("dyt", (BR0,), (fwd("dy0", Proto.TCP, "10.9.5.2", 80, "0.0.0.0", 80),)), "is not on dy0"),
        (lambda: FirewallPlan("dyt", (BR0,), (fwd("dy0", Proto.TCP, "10.9.0.2", 80, "::", 80),)), "cannot be forwarded"),
        (
            lambda: FirewallPlan(
                "dyt",
                (BridgePlan("dyi", IPv4Network("10.9.0.0/24"), internal=True),),
                (fwd("dyi", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 80),),
            ),
            "internal bridge",
        ),
    ],
)
def test_bad_plans(make: object, message: str) -> None:
    with pytest.raises(Internal, match=message):
        make()  # type: ignore[operator]


def test_removal_text() -> None:
    assert render_removal("dyt") == "table inet dyt {}\ndelete table inet dyt\ntable bridge dyt {}\ndelete table bridge dyt\n"
    with pytest.raises(Internal):
        render_removal("x; flush ruleset")


def test_any_address_constants() -> None:
    assert str(ANY_V4) == "0.0.0.0" and str(ANY_V6) == "::"


def test_additions_for_a_container_publishing_ports() -> None:
    one = fwd("dy0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080)
    two = fwd("dy0", Proto.UDP, "10.9.0.3", 53, "127.0.0.1", 5353)
    empty = FirewallPlan("dyt", (BR0,))
    first = FirewallPlan("dyt", (BR0,), (one,))
    both = FirewallPlan("dyt", (BR0,), (one, two))
    assert render_additions(empty, first) == (
        "add rule inet dyt nat_prerouting meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.9.0.2:80\n"
        "add rule inet dyt nat_output meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.9.0.2:80\n"
        'add rule inet dyt nat_postrouting oifname "dy0" ip saddr 127.0.0.0/8 masquerade\n'
        'add rule inet dyt nat_postrouting oifname "dy0" ct status dnat ip saddr 10.9.0.0/24 masquerade\n'
        'add rule inet dyt published ct status dnat oifname "dy0" ip daddr 10.9.0.2 tcp dport 80 accept\n'
    )
    assert render_additions(first, both) == (
        'add rule inet dyt guard iifname != "lo" ip daddr 127.0.0.1 udp dport 5353 drop\n'
        "add rule inet dyt nat_output ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.9.0.3:53\n"
        'add rule inet dyt published ct status dnat oifname "dy0" ip daddr 10.9.0.3 udp dport 53 accept\n'
    )
    assert render_additions(both, both) == ""


def test_no_additions_for_anything_else() -> None:
    one = fwd("dy0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080)
    first = FirewallPlan("dyt", (BR0,), (one,))
    assert render_additions(first, FirewallPlan("dyt", (BR0,))) is None  # a forward went away
    other = BridgePlan("dy1", IPv4Network("10.9.1.0/24"), IPv4Address("10.9.1.1"))
    assert render_additions(first, FirewallPlan("dyt", (BR0, other), (one,))) is None  # a new bridge
    assert render_additions(first, FirewallPlan("dyu", (BR0,), (one,))) is None
