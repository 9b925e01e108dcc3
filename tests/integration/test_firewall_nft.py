"""network/firewall with the real nft: every representative plan passes `nft -c`; apply
replaces our two tables whole and leaves other tables alone; remove is idempotent. All of it
in a network namespace of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from dockyard.errors import Internal
from dockyard.model.ports import Proto, Published
from dockyard.network.firewall import BridgePlan, Firewall, FirewallPlan, PortForward

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


@contextlib.contextmanager
def scratch_netns() -> Iterator[str]:
    """A new netns, this thread inside it for the duration; deleted afterwards."""
    name = f"dyfw-nft-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            assert _libc.setns(target, CLONE_NEWNET) == 0
        finally:
            os.close(target)
        try:
            yield name
        finally:
            assert _libc.setns(own, CLONE_NEWNET) == 0
    finally:
        os.close(own)
        subprocess.run(["ip", "netns", "del", name], check=False)


def nft_in(ns: str, *args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], capture_output=True, text=True, check=True).stdout


def fwd(bridge: str, proto: Proto, cip: str, cport: int, hip: str, hport: int) -> PortForward:
    c = IPv6Address(cip) if ":" in cip else IPv4Address(cip)
    h = IPv6Address(hip) if ":" in hip else IPv4Address(hip)
    return PortForward(bridge, Published(proto, c, cport, h, hport))


V4 = BridgePlan("dyn0", IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.1"))
DUAL = BridgePlan("dyn6", IPv4Network("10.9.6.0/24"), IPv4Address("10.9.6.1"), IPv6Network("fd00:9::/64"), IPv6Address("fd00:9::1"))
NOICC = BridgePlan("dyn1", IPv4Network("10.9.1.0/24"), IPv4Address("10.9.1.1"), icc=False, masquerade=False)
INTERNAL = BridgePlan("dyn2", IPv4Network("10.9.2.0/24"), IPv4Address("10.9.2.1"), internal=True)
NOGATEWAY = BridgePlan("dyn3", IPv4Network("10.9.3.0/24"))

PLANS = {
    "empty": FirewallPlan("dyfwc"),
    "one-port": FirewallPlan("dyfwc", (V4,), (fwd("dyn0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),)),
    "every-kind": FirewallPlan(
        "dyfwc",
        (V4, DUAL, NOICC, INTERNAL, NOGATEWAY),
        (
            fwd("dyn0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),
            fwd("dyn0", Proto.UDP, "10.9.0.2", 53, "127.0.0.1", 5353),
            fwd("dyn0", Proto.SCTP, "10.9.0.2", 9, "192.0.2.2", 9),
            fwd("dyn6", Proto.TCP, "10.9.6.2", 80, "0.0.0.0", 8081),
            fwd("dyn6", Proto.TCP, "fd00:9::2", 80, "::", 8081),
            fwd("dyn6", Proto.UDP, "fd00:9::2", 53, "::1", 5354),
            fwd("dyn6", Proto.TCP, "fd00:9::2", 443, "fd00::5", 443),
            fwd("dyn1", Proto.TCP, "10.9.1.2", 80, "0.0.0.0", 8082),
        ),
    ),
    "many-ports": FirewallPlan(
        "dyfwc", (V4,), tuple(fwd("dyn0", Proto.TCP, f"10.9.0.{2 + i % 200}", 80, "0.0.0.0", 20000 + i) for i in range(500))
    ),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_nft_accepts_each_rendered_plan(name: str) -> None:
    with scratch_netns():
        asyncio.run(Firewall("dyfwc").check(PLANS[name]))


def test_apply_replaces_whole_and_touches_nothing_else() -> None:
    with scratch_netns() as ns:
        subprocess.run(["nft", "-f", "-"], input="table inet dyfwforeign {\n chain c {\n }\n}\n", text=True, check=True)
        fw = Firewall("dyfwc")
        with pytest.raises(Internal, match="route_localnet=1: .* does not exist"):
            asyncio.run(fw.apply(PLANS["every-kind"]))  # its bridges are not there yet
        assert "dyfwc" not in nft_in(ns, "list", "tables")  # nothing done
        for bridge in PLANS["every-kind"].bridges:
            subprocess.run(["ip", "link", "add", bridge.name, "type", "bridge"], check=True)
        asyncio.run(fw.apply(PLANS["every-kind"]))
        assert Path("/proc/sys/net/ipv4/conf/dyn0/route_localnet").read_text().strip() == "1"
        assert Path("/proc/sys/net/ipv4/conf/dyn1/route_localnet").read_text().strip() == "1"
        assert Path("/proc/sys/net/ipv4/conf/dyn2/route_localnet").read_text().strip() == "0"
        tables = nft_in(ns, "list", "tables").split("\n")
        assert {"table inet dyfwc", "table bridge dyfwc", "table inet dyfwforeign"} <= set(tables)
        assert "dnat ip to 10.9.0.2:53" in nft_in(ns, "list", "table", "inet", "dyfwc")
        asyncio.run(fw.apply(PLANS["one-port"]))  # replaced, not added to
        text = nft_in(ns, "list", "table", "inet", "dyfwc")
        assert "10.9.0.2:53" not in text and "dnat ip to 10.9.0.2:80" in text
        assert "table bridge dyfwc" not in nft_in(ns, "list", "tables")  # no icc=false bridge left
        asyncio.run(fw.remove())
        asyncio.run(fw.remove())
        assert nft_in(ns, "list", "tables").split() == ["table", "inet", "dyfwforeign"]


def test_nft_errors_carry_stderr() -> None:
    with scratch_netns():
        fw = Firewall("dyfwc")
        with pytest.raises(Internal) as err:
            asyncio.run(fw._nft_script("table inet dyfwc { chain c { type nat hook nowhere priority 0; } }\n"))
        assert err.value.message.startswith("nft -f failed (table dyfwc): ")
        assert "Error" in err.value.message
        with pytest.raises(Internal, match="nft: "):
            asyncio.run(Firewall("dyfwc", nft="/nonexistent/nft").remove())
        with pytest.raises(Internal, match="plan for table dyfwc, this firewall owns other"):
            asyncio.run(Firewall("other").apply(PLANS["empty"]))


def _normalized(listing: str, table: str) -> dict[str, list[str]]:
    """`nft list table` as {chain: sorted rules}: the order of added rules may differ."""
    chains: dict[str, list[str]] = {}
    current = ""
    for raw in listing.replace(table, "T").splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            current = line.split()[1]
            chains[current] = []
        elif line and line != "}" and not line.startswith(("table ", "type ")) and current:
            chains[current].append(line)
    return {k: sorted(v) for k, v in chains.items()}


def _table_handle(ns: str, table: str) -> str:
    first = nft_in(ns, "-a", "list", "table", "inet", table).splitlines()[0]
    return first.split("# handle ")[1]


def test_adding_ports_equals_replacing_whole() -> None:
    bridges = (V4, NOICC, INTERNAL)
    steps = [
        (),
        (fwd("dyn0", Proto.TCP, "10.9.0.2", 80, "0.0.0.0", 8080),),
        (fwd("dyn0", Proto.UDP, "10.9.0.3", 53, "127.0.0.1", 5353), fwd("dyn1", Proto.TCP, "10.9.1.2", 80, "192.0.2.2", 80)),
        (fwd("dyn1", Proto.SCTP, "10.9.1.3", 9, "0.0.0.0", 9),),
    ]
    with scratch_netns() as ns:
        for bridge in bridges:
            subprocess.run(["ip", "link", "add", bridge.name, "type", "bridge"], check=True)
        adding, whole = Firewall("dyfwc"), Firewall("dyfwd")
        forwards: tuple[PortForward, ...] = ()
        handle = ""
        for i, step in enumerate(steps):
            forwards += step
            asyncio.run(adding.apply(FirewallPlan("dyfwc", bridges, forwards)))
            asyncio.run(whole.apply(FirewallPlan("dyfwd", bridges, forwards), whole=True))
            if i:
                assert _table_handle(ns, "dyfwc") == handle  # rules added, table kept
            handle = _table_handle(ns, "dyfwc")
            got = _normalized(nft_in(ns, "list", "table", "inet", "dyfwc"), "dyfwc")
            assert got == _normalized(nft_in(ns, "list", "table", "inet", "dyfwd"), "dyfwd")
            assert len(got) == 7 and len(got["published"]) == len(forwards)
        # Taking a forward away replaces the table whole.
        asyncio.run(adding.apply(FirewallPlan("dyfwc", bridges, forwards[1:])))
        assert _table_handle(ns, "dyfwc") != handle
        # Tables changed behind its back: adding fails, the whole replacement follows.
        subprocess.run(["nft", "delete", "table", "inet", "dyfwc"], check=True)
        asyncio.run(adding.apply(FirewallPlan("dyfwc", bridges, forwards)))
        asyncio.run(whole.apply(FirewallPlan("dyfwd", bridges, forwards), whole=True))
        got = _normalized(nft_in(ns, "list", "table", "inet", "dyfwc"), "dyfwc")
        assert got == _normalized(nft_in(ns, "list", "table", "inet", "dyfwd"), "dyfwd")
