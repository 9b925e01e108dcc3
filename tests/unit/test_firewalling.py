"""The engine's firewall bookkeeping without a kernel: the plan made from networks and
published ports, a container's host ports held and given back (firewall off: no nft)."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable, Coroutine
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network
from typing import Any, cast

import pytest

from dockyard.engine.firewalling import Firewalling, bridge_plan
from dockyard.errors import Internal
from dockyard.model.containers import Container, ContainerSpec, ContainerState, HostSpec
from dockyard.model.endpoints import Endpoint
from dockyard.model.ipam import SubnetPlan
from dockyard.model.networks import Driver, Network, NetworkSpec
from dockyard.network.firewall import BridgePlan

NET4 = IPv4Network("10.9.8.0/24")


def _sync(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(fn)
    def run() -> None:
        asyncio.run(fn())

    return run


def _network(nid: str, bridge: str, *, internal: bool = False, v6: bool = False) -> Network:
    subnets = [SubnetPlan(NET4 if nid == "n1" else IPv4Network("10.9.9.0/24"), None,
                          IPv4Address("10.9.8.1") if nid == "n1" else IPv4Address("10.9.9.1"))]  # fmt: skip
    if v6:
        subnets.append(SubnetPlan(IPv6Network("fd00:9::/64"), None, IPv6Address("fd00:9::1")))
    spec = NetworkSpec(nid, Driver.BRIDGE, internal=internal, subnets=tuple(subnets), bridge=bridge, icc=not internal)
    return Network(nid, "2026-12-01T00:00:00Z", spec)


class _Networks:
    def __init__(self, *networks: Network) -> None:
        self.networks = {n.id: n for n in networks}

    def all(self) -> list[Network]:
        return list(self.networks.values())

    def get(self, term: str) -> Network:
        return self.networks[term]

    def host_binding(self, network: Network) -> IPv4Address:
        return IPv4Address(network.spec.options.get("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"))


def _container(host: HostSpec, exposed: tuple[str, ...]) -> Container:
    spec = ContainerSpec("busybox", "h", exposed_ports=exposed, host=host)
    return Container("c" * 64, "web", "2026-12-01T00:00:00Z", "sha256:i", spec, ContainerState(), "runc", "rw")


def _endpoint(network_id: str = "n1", route: bool = True) -> Endpoint:
    return Endpoint(network_id, network_id, "e" * 64, "eth0", "vethx", "02:42:0a:09:08:02",
                    ipv4=IPv4Interface("10.9.8.2/24"), gateway_route=route)  # fmt: skip


def test_a_bridge_network_as_the_firewall_sees_it() -> None:
    plan = bridge_plan(_network("n1", "dy1", v6=True))
    assert plan == BridgePlan("dy1", NET4, IPv4Address("10.9.8.1"), IPv6Network("fd00:9::/64"), IPv6Address("fd00:9::1"))
    assert bridge_plan(_network("n2", "dy2", internal=True)).internal


@_sync
async def test_ports_are_held_published_and_given_back() -> None:
    nets = _Networks(_network("n1", "dy1"), _network("n2", "dy2", internal=True))
    fw = Firewalling(cast(Any, nets), None)
    c = _container(HostSpec(port_bindings={"80/tcp": (("127.0.0.1", ""),)}), ("80/tcp", "53/udp"))
    eps = await fw.publish(c, (_endpoint(),))
    (pub,) = eps[0].ports
    assert (str(pub.host_ip), pub.container_port, str(pub.container_ip)) == ("127.0.0.1", 80, "10.9.8.2")
    plan = fw.plan()
    assert [b.name for b in plan.bridges] == ["dy1", "dy2"] and [f.port for f in plan.forwards] == [pub]
    with socket.socket() as s, pytest.raises(OSError):  # the daemon holds it
        s.bind(("127.0.0.1", pub.host_port))
    await fw.unpublish(c.id)
    assert fw.plan().forwards == ()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", pub.host_port))
    await fw.unpublish(c.id)  # twice is fine


@_sync
async def test_a_port_without_a_host_address_takes_the_networks_host_binding() -> None:
    n = _network("n1", "dy1")
    n = replace(n, spec=replace(n.spec, options={"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}))
    fw = Firewalling(cast(Any, _Networks(n)), None)
    c = _container(HostSpec(port_bindings={"80/tcp": (("", ""),)}), ("80/tcp",))
    (pub,) = (await fw.publish(c, (_endpoint(),)))[0].ports
    assert str(pub.host_ip) == "127.0.0.1"
    await fw.unpublish(c.id)


@_sync
async def test_no_ports_without_a_gateway_endpoint_or_mappings() -> None:
    fw = Firewalling(cast(Any, _Networks(_network("n1", "dy1"))), None)
    c = _container(HostSpec(port_bindings={"80/tcp": (("", ""),)}), ("80/tcp",))
    internal_only = (_endpoint(route=False),)
    assert await fw.publish(c, internal_only) == internal_only
    bare = _container(HostSpec(), ("80/tcp",))
    assert await fw.publish(bare, (_endpoint(),)) == (_endpoint(),)
    assert fw.plan().forwards == ()


@_sync
async def test_a_taken_port_has_dockerds_prefix_and_holds_nothing() -> None:
    fw = Firewalling(cast(Any, _Networks(_network("n1", "dy1"))), None)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        c = _container(HostSpec(port_bindings={"80/tcp": (("127.0.0.1", str(port)),), "81/tcp": (("127.0.0.1", ""),)}),
                       ("80/tcp", "81/tcp"))  # fmt: skip
        with pytest.raises(Internal, match=r"^driver failed programming external connectivity on endpoint web \(e+\): "
                                           r".*address already in use"):  # fmt: skip
            await fw.publish(c, (_endpoint(),))
    assert fw.plan().forwards == ()
    assert fw._reservations == {}


@_sync
async def test_restore_takes_back_running_containers_ports() -> None:
    fw = Firewalling(cast(Any, _Networks(_network("n1", "dy1"))), None)
    c = _container(HostSpec(port_bindings={"80/tcp": (("127.0.0.1", ""),)}), ("80/tcp",))
    eps = await fw.publish(c, (_endpoint(),))
    await fw.close(keep_rules=True)  # the daemon went away: its sockets closed
    again = Firewalling(cast(Any, _Networks(_network("n1", "dy1"))), None)
    await again.restore([replace(c, state=ContainerState(endpoints=eps))])
    assert [f.port for f in again.plan().forwards] == list(eps[0].ports)
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("127.0.0.1", eps[0].ports[0].host_port))
    await again.close(keep_rules=False)
