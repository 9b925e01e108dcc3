"""network/netlink on the real kernel, inside namespaces the test makes: a bridge, a veth whose
peer is made in a second namespace, addresses, a default route, and traffic across them."""

from __future__ import annotations

import errno
import ipaddress
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.network.netlink import Netlink
from dockyard.network.netns import create_netns, release_netns
from dockyard.network.rtnl import NetlinkError


@pytest.fixture
def two_namespaces(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    host, ctr = tmp_path / "host", tmp_path / "ctr"
    create_netns(host)
    try:
        create_netns(ctr)
        try:
            yield host, ctr
        finally:
            release_netns(ctr)
    finally:
        release_netns(host)


def test_bridge_veth_address_route_and_traffic(two_namespaces: tuple[Path, Path]) -> None:
    host, ctr = two_namespaces
    with Netlink(host) as nl:
        nl.add_bridge("dyt0", mtu=1400)
        bridge = nl.link("dyt0")
        assert bridge is not None and bridge.kind == "bridge" and not bridge.up
        nl.add_address(bridge.index, ipaddress.ip_interface("10.99.0.1/24"))
        nl.add_address(bridge.index, ipaddress.ip_interface("10.99.0.1/24"))  # again: fine
        nl.set_link(bridge.index, up=True)
        nl.add_veth("vethdyt", "eth0", ctr, peer_mac="02:42:0a:63:00:02", mtu=1400)
        veth = nl.link("vethdyt")
        assert veth is not None and veth.kind == "veth"
        nl.set_link(veth.index, master=bridge.index, up=True)
        assert nl.link("vethdyt").master == bridge.index  # type: ignore[union-attr]
        assert ipaddress.ip_network("10.99.0.0/24") in [r.destination for r in nl.routes()]
        with pytest.raises(NetlinkError) as taken:
            nl.add_bridge("dyt0")
        assert taken.value.errno == errno.EEXIST
    with Netlink(ctr) as nc:
        eth0 = nc.link("eth0")
        assert eth0 is not None and eth0.mac == "02:42:0a:63:00:02"
        nc.add_address(eth0.index, ipaddress.ip_interface("10.99.0.2/24"))
        nc.set_link(eth0.index, up=True)
        nc.add_default_route(ipaddress.ip_address("10.99.0.1"), eth0.index)
        assert ipaddress.ip_interface("10.99.0.2/24") in [a.interface for a in nc.addresses(socket.AF_INET)]
        assert ipaddress.ip_network("0.0.0.0/0") in [r.destination for r in nc.routes()]
    # A UDP datagram from the "container" reaches the "host" side of the bridge.
    server = subprocess.Popen(
        ["nsenter", f"--net={host}", "python3", "-c",
         ("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.99.0.1', 5353)); "
          "s.settimeout(5); print(s.recvfrom(100)[0].decode(), flush=True)")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(50):
            sent = subprocess.run(
                ["nsenter", f"--net={ctr}", "python3", "-c",
                 "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', ('10.99.0.1', 5353))"],
                check=False,
            )  # fmt: skip
            assert sent.returncode == 0
            try:
                out, _ = server.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                continue
        assert out.strip() == "hello"
    finally:
        server.kill()
        server.wait()
    with Netlink(host) as nl:
        veth = nl.link("vethdyt")
        assert veth is not None
        nl.delete_link(veth.index)
        nl.delete_link(veth.index)  # gone already: fine
        assert nl.link("vethdyt") is None
        assert {link.name for link in nl.links()} == {"lo", "dyt0"}  # the peer went with it
