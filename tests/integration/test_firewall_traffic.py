"""network/firewall and portalloc on real kernel parts: published ports, hairpin, isolation,
icc=false, internal bridges, outbound masquerade, and removal.

Everything lives in network namespaces this module makes and deletes (also on failure): one
plays the host (its bridges, its nftables tables, its sysctls: nothing of the real host's is
touched), one a second host on a veth (with a route to the container subnets, so that only
the firewall keeps it out), and one per container. Traffic stays inside them. The module runs
twice: with br_netfilter handing bridged traffic to the inet hooks (the kernel's default
here) and without.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from dockyard.model.ports import HostPorts, PortMapping, Proto, Published, bind_requests
from dockyard.network.firewall import BridgePlan, Firewall, FirewallPlan, PortForward
from dockyard.network.portalloc import PortAllocated, PortAllocator, Reservation

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

# A container's server: TCP and UDP on every address; each answer names the server and the
# source address it saw (to tell masquerading).
SERVER = r"""
import socket, sys, threading
name, tcp_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def tcp(family, host):
    t = socket.socket(family); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    t.bind((host, tcp_port)); t.listen(16)
    while True:
        c, peer = t.accept()
        c.sendall(f"{name} {peer[0]}".encode()); c.close()
def udp(family, host):
    u = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((host, udp_port))
    while True:
        data, peer = u.recvfrom(100)
        u.sendto(f"{name} {peer[0]}".encode(), peer)
families = [(socket.AF_INET, "0.0.0.0")] + ([(socket.AF_INET6, "::")] if len(sys.argv) > 4 else [])
for family, host in families:
    for serve in (tcp, udp):
        threading.Thread(target=serve, args=(family, host), daemon=True).start()
import time; time.sleep(0.2)
print("ready", flush=True)
threading.Event().wait()
"""

CLIENT = r"""
import socket, sys
proto, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=timeout)
        print(s.recv(100).decode())
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(timeout)
        s.sendto(b"hi", (host, port)); print(s.recv(100).decode())
except OSError as exc:
    print("ERR", type(exc).__name__)
"""

TCP_PORT, UDP_PORT = 80, 53
PEER_PORT = 9000


def sh(*argv: str) -> str:
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str, *argv: str) -> str:
    return sh("ip", "netns", "exec", ns, *argv)


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run this thread (and what it starts: nft, sockets, /proc/sys writes) in netns `ns`."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - cannot fail back
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def _free_prefix() -> int:
    """A 10.N.0.0/16 that no route of the real host touches (not needed inside our own
    namespaces, but it keeps addresses in logs unambiguous)."""
    routes = sh("ip", "-4", "route", "show", "table", "all")
    taken = {IPv4Network(w, strict=False) for line in routes.splitlines() for w in line.split()[:2] if w[0].isdigit()}
    for _ in range(100):
        n = 100 + secrets.randbelow(150)
        candidate = IPv4Network(f"10.{n}.0.0/16")
        if not any(candidate.overlaps(t) for t in taken):
            return n
    raise AssertionError("no free 10.N.0.0/16")


@dataclass
class Topology:
    tag: str
    prefix: int
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    addr: dict[str, IPv4Address] = field(default_factory=dict)
    br_netfilter: bool = True

    @property
    def host(self) -> str:
        return f"dyfw-{self.tag}-host"

    @property
    def peer(self) -> str:
        return f"dyfw-{self.tag}-peer"

    def ns(self, name: str) -> str:
        return f"dyfw-{self.tag}-{name}"

    def bridge(self, letter: str) -> str:
        return f"dyfw{self.tag}{letter}"

    def net(self, i: int) -> IPv4Network:
        return IPv4Network(f"10.{self.prefix}.{i}.0/24")

    def ip(self, i: int, host: int) -> IPv4Address:
        return self.net(i)[host]

    def net6(self, i: int) -> IPv6Network:
        return IPv6Network(f"fd00:{self.prefix}:{i}::/64")

    def ip6(self, i: int, host: int) -> IPv6Address:
        return self.net6(i)[host]

    def add_ns(self, name: str) -> str:
        full = self.ns(name)
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        in_ns(full, "ip", "link", "set", "lo", "up")
        return full

    def add_bridge(self, letter: str, i: int, v6: bool = False) -> None:
        br = self.bridge(letter)
        in_ns(self.host, "ip", "link", "add", br, "type", "bridge")
        in_ns(self.host, "ip", "addr", "add", f"{self.ip(i, 1)}/24", "dev", br)
        if v6:
            in_ns(self.host, "ip", "addr", "add", f"{self.ip6(i, 1)}/64", "dev", br, "nodad")
        in_ns(self.host, "ip", "link", "set", br, "up")

    def add_container(self, name: str, letter: str, i: int, host: int, v6: bool = False) -> None:
        ns = self.add_ns(name)
        outside = f"dyfw{self.tag}{name}"
        in_ns(self.host, "ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns)
        in_ns(self.host, "ip", "link", "set", outside, "master", self.bridge(letter))
        # A container reaching its own published port comes back in through its own port:
        # with br_netfilter that is bridged, and needs hairpin mode (dockerd sets it too
        # when it runs without its userland proxy).
        in_ns(self.host, "ip", "link", "set", outside, "type", "bridge_slave", "hairpin", "on")
        in_ns(self.host, "ip", "link", "set", outside, "up")
        in_ns(ns, "ip", "addr", "add", f"{self.ip(i, host)}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "route", "add", "default", "via", str(self.ip(i, 1)))
        self.addr[name] = self.ip(i, host)
        if v6:
            in_ns(ns, "ip", "addr", "add", f"{self.ip6(i, host)}/64", "dev", "eth0", "nodad")
            in_ns(ns, "ip", "-6", "route", "add", "default", "via", str(self.ip6(i, 1)))
        self.serve(ns, name, TCP_PORT, UDP_PORT, v6)

    def serve(self, ns: str, name: str, tcp: int, udp: int, v6: bool = False) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name, str(tcp), str(udp), *(["v6"] if v6 else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.servers.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""

    def up(self, br_netfilter: bool) -> None:
        self.br_netfilter = br_netfilter
        self.add_ns("host")
        for family in ("iptables", "ip6tables"):
            in_ns(self.host, "sysctl", "-qw", f"net.bridge.bridge-nf-call-{family}={int(br_netfilter)}")
        in_ns(self.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")  # the firewall must turn it on
        self.add_ns("peer")
        uplink = f"dyfw{self.tag}u"
        in_ns(self.host, "ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", self.peer)
        in_ns(self.host, "ip", "addr", "add", f"{self.ip(250, 1)}/24", "dev", uplink)
        in_ns(self.host, "ip", "link", "set", uplink, "up")
        in_ns(self.peer, "ip", "addr", "add", f"{self.ip(250, 2)}/24", "dev", "eth0")
        in_ns(self.peer, "ip", "link", "set", "eth0", "up")
        # A neighbour that routes the container subnets through the host: only the firewall
        # keeps it from reaching containers directly.
        in_ns(self.peer, "ip", "route", "add", f"10.{self.prefix}.0.0/16", "via", str(self.ip(250, 1)))
        in_ns(self.host, "ip", "addr", "add", f"{self.ip6(250, 1)}/64", "dev", uplink, "nodad")
        in_ns(self.peer, "ip", "addr", "add", f"{self.ip6(250, 2)}/64", "dev", "eth0", "nodad")
        in_ns(self.peer, "ip", "-6", "route", "add", f"fd00:{self.prefix}::/32", "via", str(self.ip6(250, 1)))
        self.serve(self.peer, "peer", PEER_PORT, PEER_PORT, v6=True)
        self.add_bridge("a", 1)
        self.add_bridge("b", 2)
        self.add_bridge("c", 3)
        self.add_container("c1", "a", 1, 2)
        self.add_container("c2", "a", 1, 3)
        self.add_container("c3", "b", 2, 2)
        self.add_container("c5", "b", 2, 3)
        self.add_container("c4", "c", 3, 2)
        self.add_bridge("d", 4, v6=True)
        self.add_container("c6", "d", 4, 2, v6=True)

    def down(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)

    def call(self, ns: str, target: IPv4Address | str, port: int, proto: str = "tcp", timeout: float = 2.0) -> str:
        return in_ns(ns, sys.executable, "-c", CLIENT, proto, str(target), str(port), str(timeout)).strip()


@dataclass
class World:
    topo: Topology
    firewall: Firewall
    plan: FirewallPlan
    reservation: Reservation
    allocator: PortAllocator
    ports: dict[str, int]


def _plan(topo: Topology, published: tuple[Published, ...], bridge_of: dict[IPv4Address | IPv6Address, str]) -> FirewallPlan:
    bridges = (
        BridgePlan(topo.bridge("a"), topo.net(1), topo.ip(1, 1)),
        BridgePlan(topo.bridge("b"), topo.net(2), topo.ip(2, 1), icc=False, masquerade=False),
        BridgePlan(topo.bridge("c"), topo.net(3), topo.ip(3, 1), internal=True),
        BridgePlan(topo.bridge("d"), topo.net(4), topo.ip(4, 1), topo.net6(4), topo.ip6(4, 1)),
    )
    forwards = tuple(PortForward(bridge_of[p.container_ip], p) for p in published)
    return FirewallPlan(f"dyfw{topo.tag}", bridges, forwards)


@pytest.fixture(scope="module", params=[True, False], ids=["br_netfilter", "no_br_netfilter"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    topo = Topology(secrets.token_hex(3), _free_prefix())
    reservation: Reservation | None = None
    try:
        topo.up(br_netfilter=request.param)
        c1, c2, c3, c6 = topo.addr["c1"], topo.addr["c2"], topo.addr["c3"], topo.addr["c6"]
        c6v6 = topo.ip6(4, 2)
        lo = IPv4Address("127.0.0.1")
        with entered(topo.host):
            allocator = PortAllocator()
            requests = (
                bind_requests([PortMapping(Proto.TCP, TCP_PORT), PortMapping(Proto.UDP, UDP_PORT)], c1, None)
                + bind_requests([PortMapping(Proto.TCP, TCP_PORT, lo)], c2, None)
                + bind_requests([PortMapping(Proto.TCP, TCP_PORT)], c3, None)
                + bind_requests([PortMapping(Proto.TCP, TCP_PORT), PortMapping(Proto.UDP, UDP_PORT)], c6, c6v6)
            )
            reservation = allocator.reserve(requests)
            pubs = reservation.published
            bridge_of = {c1: topo.bridge("a"), c2: topo.bridge("a"), c3: topo.bridge("b"), c6: topo.bridge("d"), c6v6: topo.bridge("d")}
            plan = _plan(topo, pubs, bridge_of)
            firewall = Firewall(plan.table)
            # As a daemon would: the networks first, then each container's ports added.
            asyncio.run(firewall.apply(_plan(topo, (), bridge_of)))
            asyncio.run(firewall.apply(_plan(topo, pubs[:2], bridge_of)))
            asyncio.run(firewall.apply(plan))
        ports = {"c1/tcp": pubs[0].host_port, "c1/udp": pubs[1].host_port, "c2/lo": pubs[2].host_port, "c3/tcp": pubs[3].host_port}
        assert (pubs[4].host_ip, pubs[5].host_ip) == (IPv4Address("0.0.0.0"), IPv6Address("::"))
        assert pubs[4].host_port == pubs[5].host_port  # one port for both families
        ports |= {"c6/tcp": pubs[4].host_port, "c6/udp": pubs[6].host_port}
        yield World(topo, firewall, plan, reservation, allocator, ports)
    finally:
        if reservation is not None:
            reservation.release()
        topo.down()


def test_sysctls_set_in_the_namespace(world: World) -> None:
    t = world.topo
    assert in_ns(t.host, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert in_ns(t.host, "cat", f"/proc/sys/net/ipv4/conf/{t.bridge('a')}/route_localnet").strip() == "1"
    assert in_ns(t.host, "cat", f"/proc/sys/net/ipv4/conf/{t.bridge('c')}/route_localnet").strip() == "0"


def test_published_port_from_the_host(world: World) -> None:
    t, port = world.topo, world.ports["c1/tcp"]
    # 127.0.0.1 included, through the daemon's listening reservation socket's port.
    for address in ("127.0.0.1", t.ip(1, 1), t.ip(250, 1)):
        assert t.call(t.host, address, port).startswith("c1 "), address
    assert t.call(t.host, "127.0.0.1", world.ports["c1/udp"], "udp").startswith("c1 ")


def test_published_port_from_a_second_host(world: World) -> None:
    t = world.topo
    uplink = t.ip(250, 1)
    assert t.call(t.peer, uplink, world.ports["c1/tcp"]) == f"c1 {t.ip(250, 2)}"  # not masqueraded
    assert t.call(t.peer, uplink, world.ports["c1/udp"], "udp") == f"c1 {t.ip(250, 2)}"


def test_unpublished_unreachable_from_a_second_host(world: World) -> None:
    t = world.topo
    assert t.call(t.peer, t.addr["c1"], TCP_PORT, timeout=1).startswith("ERR")  # directly, though routed
    assert t.call(t.peer, t.addr["c2"], TCP_PORT, timeout=1).startswith("ERR")
    assert t.call(t.peer, t.addr["c1"], UDP_PORT, "udp", timeout=1).startswith("ERR")
    # Published on 127.0.0.1 only: reachable from the host, not from the neighbour.
    assert t.call(t.host, "127.0.0.1", world.ports["c2/lo"]).startswith("c2 ")
    assert t.call(t.peer, t.ip(250, 1), world.ports["c2/lo"], timeout=1).startswith("ERR")


def test_hairpin(world: World) -> None:
    t, port = world.topo, world.ports["c1/tcp"]
    assert t.call(t.ns("c1"), t.ip(1, 1), port).startswith("c1 ")  # its own published port
    assert t.call(t.ns("c1"), t.ip(250, 1), port).startswith("c1 ")  # through another host address
    assert t.call(t.ns("c2"), t.ip(1, 1), port).startswith("c1 ")  # a neighbour's
    assert t.call(t.ns("c1"), t.ip(1, 1), world.ports["c1/udp"], "udp").startswith("c1 ")


def test_hairpin_needs_hairpin_mode_where_br_netfilter_bridges(world: World) -> None:
    """What the netlink side must do: with br_netfilter, a container's connection to its own
    published port is bridged back out of the port it came in by, which the bridge refuses
    unless the port is in hairpin mode; without br_netfilter it is routed, and works."""
    t, port = world.topo, world.ports["c1/tcp"]
    veth = f"dyfw{t.tag}c1"
    in_ns(t.host, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "off")
    try:
        got = t.call(t.ns("c1"), t.ip(1, 1), port, timeout=1)
        assert got.startswith("ERR" if t.br_netfilter else "c1 "), got
    finally:
        in_ns(t.host, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
    assert t.call(t.ns("c1"), t.ip(1, 1), port).startswith("c1 ")


def test_bridges_isolated(world: World) -> None:
    t = world.topo
    assert t.call(t.ns("c3"), t.addr["c1"], TCP_PORT, timeout=1).startswith("ERR")
    assert t.call(t.ns("c1"), t.addr["c3"], TCP_PORT, timeout=1).startswith("ERR")
    assert t.call(t.ns("c1"), t.addr["c4"], TCP_PORT, timeout=1).startswith("ERR")
    # Published ports stay reachable from another bridge, through a host address (bridge b
    # does not masquerade: the reply comes back to c3's own address, through bridge a).
    assert t.call(t.ns("c3"), t.ip(2, 1), world.ports["c1/tcp"]) == f"c1 {t.addr['c3']}"
    assert t.call(t.ns("c2"), t.ip(2, 1), world.ports["c3/tcp"]).startswith("c3 ")


def test_icc(world: World) -> None:
    t = world.topo
    assert t.call(t.ns("c2"), t.addr["c1"], TCP_PORT) == f"c1 {t.addr['c2']}"  # icc on bridge a
    assert t.call(t.ns("c5"), t.addr["c3"], TCP_PORT, timeout=1).startswith("ERR")  # icc=false on b
    assert t.call(t.ns("c5"), t.addr["c3"], UDP_PORT, "udp", timeout=1).startswith("ERR")
    # A neighbour's published port through the gateway: bridged (and dropped) with
    # br_netfilter, routed (and accepted) without.
    via_gateway = t.call(t.ns("c5"), t.ip(2, 1), world.ports["c3/tcp"], timeout=1)
    assert via_gateway.startswith("ERR" if t.br_netfilter else "c3 ")


def test_outbound_masquerade_and_internal(world: World) -> None:
    t = world.topo
    peer = t.ip(250, 2)
    assert t.call(t.ns("c1"), peer, PEER_PORT) == f"peer {t.ip(250, 1)}"  # masqueraded
    assert t.call(t.ns("c3"), peer, PEER_PORT, "udp") == f"peer {t.addr['c3']}"  # bridge b: masquerade off
    assert t.call(t.ns("c4"), peer, PEER_PORT, timeout=1).startswith("ERR")  # internal: no way out
    assert t.call(t.ns("c4"), peer, PEER_PORT, "udp", timeout=1).startswith("ERR")
    assert t.call(t.peer, t.addr["c4"], TCP_PORT, timeout=1).startswith("ERR")  # nothing in
    # Not even a published port of another bridge, through its gateway or another host address.
    assert t.call(t.ns("c4"), t.ip(3, 1), world.ports["c1/tcp"], timeout=1).startswith("ERR")
    assert t.call(t.ns("c4"), t.ip(250, 1), world.ports["c1/tcp"], timeout=1).startswith("ERR")


def test_taken_host_port_refused_leaving_nothing(world: World) -> None:
    t = world.topo
    before = in_ns(t.host, "nft", "list", "ruleset")
    with entered(t.host):
        other = socket.socket()
        other.bind(("0.0.0.0", 0))
        other.listen()
        taken = other.getsockname()[1]
        free = world.allocator.reserve(bind_requests([PortMapping(Proto.TCP, 1)], t.addr["c2"], None))
        spare = free.published[0].host_port
        free.release()
        try:
            mappings = [PortMapping(Proto.TCP, 81, None, HostPorts(spare, spare)), PortMapping(Proto.TCP, 82, None, HostPorts(taken, taken))]
            with pytest.raises(PortAllocated) as err:
                world.allocator.reserve(bind_requests(mappings, t.addr["c2"], None))
            assert err.value.message == f"failed to bind host port for 0.0.0.0:{taken}:{t.addr['c2']}:82/tcp: address already in use"
            with pytest.raises(PortAllocated) as err:  # one of ours
                world.allocator.reserve(bind_requests([PortMapping(Proto.TCP, 83, None, HostPorts(world.ports["c1/tcp"], world.ports["c1/tcp"]))], t.addr["c2"], None))
            assert err.value.message == f"Bind for 0.0.0.0:{world.ports['c1/tcp']} failed: port is already allocated"
            with socket.socket() as probe:  # the port it took before failing was given back
                probe.bind(("0.0.0.0", spare))
        finally:
            other.close()
    assert in_ns(t.host, "nft", "list", "ruleset") == before


def test_ipv6_published_port(world: World) -> None:
    """The first SYN towards a fresh IPv6 neighbour was lost here every time (TCP sends it
    again after 1 s): the v6 calls get more time."""
    t = world.topo
    port, udp = world.ports["c6/tcp"], world.ports["c6/udp"]
    assert in_ns(t.host, "cat", "/proc/sys/net/ipv6/conf/all/forwarding").strip() == "1"
    assert t.call(t.peer, t.ip6(250, 1), port, timeout=5) == f"c6 {t.ip6(250, 2)}"  # v6 to v6, not masqueraded
    assert t.call(t.peer, t.ip6(250, 1), udp, "udp", timeout=5) == f"c6 {t.ip6(250, 2)}"
    assert t.call(t.peer, t.ip(250, 1), port) == f"c6 {t.ip(250, 2)}"  # and the v4 side of it
    assert t.call(t.host, t.ip6(4, 1), port, timeout=5).startswith("c6 ")  # from the host, its bridge address
    assert t.call(t.host, t.ip6(250, 1), port, timeout=5).startswith("c6 ")
    assert t.call(t.ns("c6"), t.ip6(4, 1), port, timeout=5).startswith("c6 ")  # hairpin in v6
    # [::1] cannot be DNATted to a container: refused at once, not left hanging on the
    # daemon's listening reservation socket; 127.0.0.1 works.
    assert t.call(t.host, "::1", port, timeout=5) == "ERR ConnectionRefusedError"
    assert t.call(t.host, "127.0.0.1", port).startswith("c6 ")
    # Unpublished v6 ports stay out of reach, though the neighbour routes to the subnet.
    assert t.call(t.peer, t.ip6(4, 2), TCP_PORT, timeout=1).startswith("ERR")
    assert t.call(t.ns("c6"), t.ip6(250, 2), PEER_PORT, timeout=5) == f"peer {t.ip6(250, 1)}"  # v6 masquerade out


def test_zz_remove_leaves_no_table(world: World) -> None:
    """Last: the tables go, and with them the forwarding."""
    t = world.topo
    assert f"table inet {world.plan.table}" in in_ns(t.host, "nft", "list", "tables")
    with entered(t.host):
        asyncio.run(world.firewall.remove())
        asyncio.run(world.firewall.remove())  # absent is fine
    world.reservation.release()
    assert world.plan.table not in in_ns(t.host, "nft", "list", "tables")
    assert t.call(t.peer, t.ip(250, 1), world.ports["c1/tcp"], timeout=1).startswith("ERR")
    assert t.call(t.host, "127.0.0.1", world.ports["c1/tcp"], timeout=1).startswith("ERR")

