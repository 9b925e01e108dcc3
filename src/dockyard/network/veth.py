"""A container's link to a bridge: a veth pair whose inside end is made directly in the
container's namespace (never seen by the host under a clashing name), addressed, up, and
the default route through the network's gateway. Blocking; a few netlink calls each."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Internal, NotFound
from dockyard.network.netlink import Netlink
from dockyard.network.rtnl import NetlinkError

log = logging.getLogger(__name__)

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Plug:
    """What one endpoint needs from the kernel."""

    netns: Path
    bridge: str
    host_name: str  # the host end, e.g. veth1a2b3c4
    interface: str  # inside: eth0, eth1, ...
    mac: str
    addresses: tuple[Interface, ...]
    gateways: tuple[Address, ...] = ()  # default routes through these (the chosen endpoint only)
    mtu: int = 0


def _plug(p: Plug) -> None:
    with Netlink() as host:
        bridge = host.link(p.bridge)
        if bridge is None:
            raise NotFound(f"bridge {p.bridge} not found")
        host.add_veth(p.host_name, p.interface, p.netns, peer_mac=p.mac, mtu=p.mtu)
        try:
            outside = host.link(p.host_name)
            if outside is None:
                raise Internal(f"veth {p.host_name} vanished right after it was made")
            host.set_link(outside.index, master=bridge.index, up=True)
            # br_netfilter is on here: a container reaching its own published port is
            # DNATted back out of the port it came in on, which only hairpin mode allows.
            host.set_hairpin(outside.index)
            with Netlink(p.netns) as inside:
                eth = inside.link(p.interface)
                if eth is None:
                    raise Internal(f"{p.interface} is missing in the container's namespace")
                for address in p.addresses:
                    inside.add_address(eth.index, address)
                inside.set_link(eth.index, up=True)
                for gateway in p.gateways:
                    inside.add_default_route(gateway, eth.index)
        except BaseException:
            _unplug(p.host_name)  # its peer goes with it: nothing half-made
            raise


def _unplug(host_name: str) -> None:
    with Netlink() as host:
        link = host.link(host_name)
        if link is not None:
            host.delete_link(link.index)


def _mend(bridges: frozenset[str], wanted: dict[str, str]) -> list[str]:
    """On our bridges: veths no endpoint owns removed, endpoints' veths that lost their bridge
    (it was deleted and made again) put back on it. The wanted ones missing are returned."""
    missing: list[str] = []
    with Netlink() as host:
        links = host.links()
        index_of = {link.name: link.index for link in links if link.name in bridges}
        ours = set(index_of.values())
        by_name = {link.name: link for link in links}
        for link in links:
            if link.master in ours and link.kind == "veth" and link.name not in wanted:
                log.info("removing %s: on a bridge of ours, no endpoint's", link.name)
                try:
                    host.delete_link(link.index)
                except NetlinkError as exc:  # gone meanwhile, with its namespace
                    log.debug("removing %s: %s", link.name, exc.strerror)
        for name, bridge in wanted.items():
            veth = by_name.get(name)
            if veth is None:
                missing.append(name)
            elif bridge in index_of and veth.master != index_of[bridge]:
                log.info("putting %s back on %s", name, bridge)
                host.set_link(veth.index, master=index_of[bridge], up=True)
                host.set_hairpin(veth.index)
    return missing


class Veths:
    """Plugs containers into bridges and out again."""

    async def mend(self, bridges: frozenset[str], wanted: dict[str, str]) -> list[str]:
        """After a daemon restart: `wanted` maps each running endpoint's host veth to its bridge."""
        try:
            return await asyncio.to_thread(_mend, bridges, wanted)
        except NetlinkError as exc:
            raise Internal(f"failed to check container networking: {exc.strerror}") from exc

    async def plug(self, p: Plug) -> None:
        try:
            await asyncio.to_thread(_plug, p)
        except NetlinkError as exc:
            raise Internal(f"failed to set up container networking on {p.bridge}: {exc.strerror}") from exc

    async def unplug(self, host_name: str) -> None:
        """Remove the host end (the inside end goes with it); one already gone is fine."""
        try:
            await asyncio.to_thread(_unplug, host_name)
        except NetlinkError as exc:
            log.warning("removing %s: %s", host_name, exc.strerror)
