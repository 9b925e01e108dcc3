"""Bridge devices in the daemon's namespace: made with their gateway addresses, taken down,
and the host's routes, which a new network's subnet must not overlap."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import socket
from collections.abc import Iterable
from pathlib import Path

from dockyard.errors import Conflict, Internal, InvalidArgument
from dockyard.network.netlink import Netlink
from dockyard.network.rtnl import NetlinkError

log = logging.getLogger(__name__)

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ensure(name: str, gateways: tuple[Interface, ...], mtu: int, create: bool, marker: str) -> bool:
    """Blocking: the bridge up with its addresses; True when this call made it."""
    with Netlink() as nl:
        link = nl.link(name)
        made = False
        if link is None:
            if not create:
                raise InvalidArgument(f"bridge device {name} not found: a bridge of another name must be created first")
            nl.add_bridge(name, mtu=mtu)
            made = True
            link = nl.link(name)
            if link is None:
                raise Internal(f"bridge {name} vanished right after it was made")
        elif link.kind != "bridge":
            raise Conflict(f"device {name} exists and is not a bridge")
        try:
            for gateway in gateways:
                nl.add_address(link.index, gateway)
            # One retired before a crash, wanted again: no longer ours to sweep.
            nl.set_link(link.index, up=True, alias="" if marker and link.alias == marker else None)
        except BaseException:
            if made:
                nl.delete_link(link.index)  # nothing half-made
            raise
        return made


def _remove(name: str) -> None:
    with Netlink() as nl:
        link = nl.link(name)
        if link is not None and link.kind == "bridge":
            nl.delete_link(link.index)


def _down(name: str, marker: str) -> None:
    with Netlink() as nl:
        link = nl.link(name)
        if link is not None and link.kind == "bridge":
            nl.set_link(link.index, up=False, alias=marker or None)


def _sweep(marker: str, keep: frozenset[str]) -> list[str]:
    with Netlink() as nl:
        retired = [link for link in nl.links() if link.kind == "bridge" and link.alias == marker and link.name not in keep]
        for link in retired:
            nl.delete_link(link.index)
    return [link.name for link in retired]


def _routes() -> list[Net]:
    with Netlink() as nl:
        found = [r.destination for r in nl.routes(socket.AF_INET)] + [r.destination for r in nl.routes(socket.AF_INET6)]
    return [n for n in found if n.prefixlen > 0]  # the default route reserves nothing


def _names() -> set[str]:
    with Netlink() as nl:
        return {link.name for link in nl.links()}


def retired_marker(data_root: Path) -> str:
    """The ifalias of a bridge this daemon (by its data root) retired: other daemons' differ."""
    return "dockyard-retired:" + hashlib.sha256(str(data_root).encode()).hexdigest()[:16]


class Bridges:
    """The daemon's bridge devices. Each call is a few netlink requests, run in a thread.

    `marker`, this daemon's own: the ifalias a bridge gets when it is retired, so a bridge whose
    deletion a crash cut short is found and deleted at the next start (`sweep`)."""

    def __init__(self, marker: str = "") -> None:
        self._marker = marker

    async def ensure(self, name: str, gateways: Iterable[Interface], *, mtu: int = 0, create: bool = True) -> bool:
        """The bridge exists, is up and holds `gateways`; True if this call created it.
        `create=False` for a device the user named (`--bridge`): it must exist already."""
        try:
            return await asyncio.to_thread(_ensure, name, tuple(gateways), mtu, create, self._marker)
        except NetlinkError as exc:
            raise Internal(f"failed to set up bridge {name}: {exc.strerror}") from exc

    async def remove(self, name: str) -> None:
        try:
            await asyncio.to_thread(_remove, name)
        except NetlinkError as exc:
            raise Internal(f"failed to remove bridge {name}: {exc.strerror}") from exc
        log.debug("bridge %s removed", name)

    async def retire(self, name: str) -> None:
        """Set the bridge down (under a millisecond; its routes go with it), before a
        `remove` that waits on the kernel for tens of milliseconds."""
        try:
            await asyncio.to_thread(_down, name, self._marker)
        except NetlinkError as exc:
            raise Internal(f"failed to set bridge {name} down: {exc.strerror}") from exc

    async def sweep(self, keep: Iterable[str]) -> list[str]:
        """Delete the bridges this daemon retired whose deletion did not finish (a crash), but
        those in `keep`; their names."""
        if not self._marker:
            return []
        try:
            return await asyncio.to_thread(_sweep, self._marker, frozenset(keep))
        except NetlinkError as exc:
            raise Internal(f"failed to delete retired bridges: {exc.strerror}") from exc

    async def host_routes(self) -> list[Net]:
        """Destinations of the host's routes (not the default route): taken address space."""
        return await asyncio.to_thread(_routes)

    async def device_names(self) -> set[str]:
        return await asyncio.to_thread(_names)
