"""The daemon's firewall, kept with its networks and running containers: every bridge
network's rules, and each running container's published ports (host ports held by the
allocator, forwarded by nftables).

The plan is always made from what is known now (networks, containers' forwards), so the
order in which changes arrive does not matter; applies run one at a time. A start adds its
ports (the cheap additions path of network/firewall.py); anything else (an exit, a network
made or removed, the daemon's start) replaces the tables whole. With `iptables: false`
there is no firewall at all: host ports are still held, no rule and no sysctl is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from dockyard.engine.networks import NetworkService
from dockyard.errors import DockyardError, Internal
from dockyard.model.containers import Container
from dockyard.model.endpoints import Endpoint
from dockyard.model.networks import Driver, Network
from dockyard.model.ports import PROGRAMMING_FAILED, bind_requests, port_mappings
from dockyard.network.firewall import BridgePlan, Firewall, FirewallPlan, PortForward
from dockyard.network.portalloc import PortAllocator, Reservation, reserve_exact

log = logging.getLogger(__name__)


def bridge_plan(n: Network) -> BridgePlan:
    """A bridge network as the firewall sees it."""
    plan = BridgePlan(n.spec.bridge, internal=n.spec.internal, icc=n.spec.icc, masquerade=n.spec.masquerade)
    for s in n.spec.subnets:
        if isinstance(s.subnet, IPv4Network) and plan.subnet4 is None:
            gw4 = s.gateway if isinstance(s.gateway, IPv4Address) else None
            plan = replace(plan, subnet4=s.subnet, gateway4=gw4)
        elif isinstance(s.subnet, IPv6Network) and plan.subnet6 is None:
            gw6 = s.gateway if isinstance(s.gateway, IPv6Address) else None
            plan = replace(plan, subnet6=s.subnet, gateway6=gw6)
    return plan


class Firewalling:
    def __init__(self, networks: NetworkService, firewall: Firewall | None, allocator: PortAllocator | None = None) -> None:
        """`firewall` None: `iptables: false`, no rules at all."""
        self._networks = networks
        self._firewall = firewall
        self._allocator = allocator or PortAllocator()
        self._reservations: dict[str, Reservation] = {}  # container id -> its host ports
        self._forwards: dict[str, tuple[PortForward, ...]] = {}  # container id -> its rules
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self._firewall is not None

    def plan(self) -> FirewallPlan:
        bridges = [n for n in self._networks.all() if n.spec.driver is Driver.BRIDGE and n.spec.bridge]
        plans = tuple(bridge_plan(n) for n in sorted(bridges, key=lambda n: n.spec.bridge))
        known = {b.name for b in plans if not b.internal}
        forwards = tuple(f for fs in self._forwards.values() for f in fs if f.bridge in known)
        table = self._firewall.table if self._firewall is not None else "dockyard"
        return FirewallPlan(table, plans, forwards)

    async def apply(self, *, whole: bool = False) -> None:
        if self._firewall is None:
            return
        async with self._lock:
            await self._firewall.apply(self.plan(), whole=whole)

    # ---- containers ---------------------------------------------------------------------

    async def publish(self, c: Container, endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        """Hold `c`'s host ports and forward them; the endpoints with their ports. On a
        failure nothing is held or forwarded and the error has dockerd's words (a 500)."""
        mappings = port_mappings(c.spec.exposed_ports, c.spec.host.port_bindings, c.spec.host.publish_all_ports)
        chosen = next((e for e in endpoints if e.gateway_route), None)  # internal networks have none
        if not mappings or chosen is None:
            return endpoints
        network = self._networks.get(chosen.network_id)
        requests = bind_requests(mappings, chosen.ipv4.ip if chosen.ipv4 else None,
                                 chosen.ipv6.ip if chosen.ipv6 else None, self._networks.host_binding(network))  # fmt: skip
        try:
            reservation = self._allocator.reserve(requests)
            self._reservations[c.id] = reservation
            self._forwards[c.id] = tuple(PortForward(network.spec.bridge, p) for p in reservation.published)
            await self.apply()
        except BaseException as exc:
            await self.unpublish(c.id)
            if isinstance(exc, DockyardError):
                raise Internal(PROGRAMMING_FAILED.format(name=c.name, endpoint_id=chosen.endpoint_id,
                                                         error=exc.message)) from exc  # fmt: skip
            raise
        ports = reservation.published
        return tuple(replace(e, ports=ports) if e is chosen else e for e in endpoints)

    async def unpublish(self, container_id: str) -> None:
        """`container_id`'s rules gone, then its host ports given back; nothing to do is fine."""
        forwards = self._forwards.pop(container_id, ())
        try:
            if forwards:
                await self.apply()
        except Exception:
            log.exception("container %s: removing its port forwards failed", container_id[:12])
        finally:
            reservation = self._reservations.pop(container_id, None)
            if reservation is not None:
                reservation.release()

    # ---- the daemon's start and end -----------------------------------------------------------

    async def restore(self, running: Iterable[Container]) -> None:
        """Start-up: the host ports of the containers still running held again, then the
        tables replaced whole (rules of containers that went away meanwhile go with it)."""
        for c in running:
            for e in c.state.endpoints:
                if not e.ports:
                    continue
                network = self._networks.get(e.network_id) if self._has(e.network_id) else None
                if network is None:
                    continue
                self._forwards[c.id] = tuple(PortForward(network.spec.bridge, p) for p in e.ports)
                try:
                    self._reservations[c.id] = reserve_exact(self._allocator, e.ports)
                except DockyardError as exc:
                    log.warning("container %s: its host ports could not be held again: %s", c.id[:12], exc.message)
        try:
            await self.apply(whole=True)
        except DockyardError as exc:
            log.error("firewall: %s", exc.message)

    def _has(self, network_id: str) -> bool:
        return any(n.id == network_id for n in self._networks.all())

    async def close(self, *, keep_rules: bool) -> None:
        """Shutdown: with live-restore the rules stay (containers keep serving their ports);
        otherwise the tables go. Host ports are let go either way."""
        for reservation in self._reservations.values():
            reservation.release()
        self._reservations.clear()
        if self._firewall is not None and not keep_rules:
            async with self._lock:
                try:
                    await self._firewall.remove()
                except DockyardError as exc:
                    log.warning("firewall: %s", exc.message)
