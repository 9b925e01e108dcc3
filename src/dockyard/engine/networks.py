"""Networks: create, inspect, list, remove, prune; the predefined ones made at start-up.

One owner for every network (an identity map by id), readers take the current snapshot.
A change decides first (name, subnets, device name), then does the kernel's part (the
bridge), then writes one row and publishes; a failure after the bridge was made removes it,
so nothing is left half-made.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from dockyard.engine.events import EventBus
from dockyard.errors import Conflict, Forbidden, InvalidArgument, NotFound
from dockyard.model import ids, times
from dockyard.model.filters import Filters
from dockyard.model.ipam import (
    Leases,
    SubnetPlan,
    SubnetRequest,
    check_free,
    next_free_subnet,
    plan_subnets,
)
from dockyard.model.networks import (
    DEFAULT_BRIDGE,
    DEFAULT_BRIDGE_POOLS,
    OPT_BRIDGE_NAME,
    OPT_DEFAULT_BRIDGE,
    OPT_ENABLE_ICC,
    OPT_HOST_BINDING,
    OPT_MASQUERADE,
    OPT_MTU,
    Driver,
    Network,
    NetworkDefaults,
    NetworkSpec,
    check_creatable,
    find,
    parse_bool_option,
    parse_mtu,
    prunable,
    select,
)
from dockyard.network.bridge import Bridges
from dockyard.store.networks import NetworkRepository
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """`POST /networks/create`, parsed (api/schemas/networks.py)."""

    name: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv4: bool | None = None
    enable_ipv6: bool | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: Mapping[str, str] | None = None
    subnets: tuple[SubnetRequest, ...] = ()
    config_only: bool = False
    config_from: str = ""


def _with_gateways(plans: tuple[SubnetPlan, ...]) -> tuple[SubnetPlan, ...]:
    """Each subnet gets a gateway: the given one, else the first address of its range."""
    done = []
    for plan in plans:
        if plan.gateway is None:
            gateway, _ = Leases(plan.subnet).take_any(plan.ip_range)
            plan = replace(plan, gateway=gateway)
        done.append(plan)
    return tuple(done)


def _gateway_interfaces(spec: NetworkSpec) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    return [ipaddress.ip_interface((s.gateway, s.subnet.prefixlen)) for s in spec.subnets if s.gateway is not None]


class NetworkService(Component):
    def __init__(
        self,
        repo: NetworkRepository,
        bridges: Bridges,
        events: EventBus,
        defaults: NetworkDefaults,
        endpoints_of: Callable[[str], list[str]] = lambda network_id: [],
        changed: Callable[[], Awaitable[None]] | None = None,
        created: Callable[[Network], Awaitable[None]] | None = None,
    ) -> None:
        """`endpoints_of(network_id)`: names of the containers attached (none until
        containers join networks)."""
        self._repo = repo
        self._bridges = bridges
        self._events = events
        self._defaults = defaults
        self._endpoints_of = endpoints_of
        self._changed = changed  # after a bridge network came or went: the firewall follows
        self._created = created  # after a network came: containers that named it before learn its id
        self._networks: dict[str, Network] = {}
        self._lock = asyncio.Lock()  # creations and removals, one at a time: names and subnets stay unique
        self._tasks = Tasks("networks")
        # Bridges of removed networks, down already, whose deletion the kernel is still doing:
        # 25-60 ms of RCU grace periods that `network rm` does not wait for.
        self._deleting: dict[str, asyncio.Task[None]] = {}

    # ---- start-up ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load the networks; make the predefined ones (host, none and, unless `--bridge
        none`, the default bridge) and every bridge device that is missing."""
        self._networks = {n.id: n for n in await asyncio.to_thread(self._repo.all)}
        swept = await self._bridges.sweep(n.spec.bridge for n in self._networks.values() if n.spec.bridge)
        if swept:
            log.info("deleted bridges of removed networks that a crash left behind: %s", ", ".join(swept))
        for name, driver in (("host", Driver.HOST), ("none", Driver.NULL)):
            if self._by_name(name) is None:
                self._add(Network(ids.new_id(), times.now(), NetworkSpec(name, driver)))
        await self._default_bridge()
        for n in list(self._networks.values()):
            if n.spec.driver is Driver.BRIDGE and n.name != DEFAULT_BRIDGE:
                await self._bridges.ensure(n.spec.bridge, _gateway_interfaces(n.spec), mtu=n.spec.mtu)

    async def _default_bridge(self) -> None:
        d = self._defaults
        current = self._by_name(DEFAULT_BRIDGE)
        if d.bridge == "none":
            if current is not None:
                self._drop(current)
            return
        if d.bip:
            bip = ipaddress.ip_interface(d.bip)
            plan = SubnetPlan(bip.network, ipaddress.ip_network(d.fixed_cidr) if d.fixed_cidr else None, bip.ip)
        elif current is not None and current.spec.subnets and current.spec.bridge == d.bridge and not d.fixed_cidr:
            plan = current.spec.subnets[0]  # the subnet chosen at an earlier start stays
        else:
            taken = [s for n in self._networks.values() if n.name != DEFAULT_BRIDGE for s in n.subnets_of(4)]
            routes = [r for r in await self._bridges.host_routes() if not _is_bridge_route(r, current)]
            subnet = next_free_subnet((*DEFAULT_BRIDGE_POOLS, *d.pools), [*taken, *routes])
            plan = SubnetPlan(subnet, ipaddress.ip_network(d.fixed_cidr) if d.fixed_cidr else None, None)
        (plan,) = _with_gateways((plan,))
        options = {
            OPT_DEFAULT_BRIDGE: "true",
            OPT_ENABLE_ICC: str(d.icc).lower(),
            OPT_MASQUERADE: str(d.ip_masq).lower(),
            OPT_HOST_BINDING: d.host_binding_ipv4,
            OPT_BRIDGE_NAME: d.bridge,
            OPT_MTU: str(d.mtu or 1500),
        }
        spec = NetworkSpec(DEFAULT_BRIDGE, Driver.BRIDGE, options=options, subnets=(plan,), bridge=d.bridge,
                           icc=d.icc, masquerade=d.ip_masq, mtu=d.mtu)  # fmt: skip
        await self._bridges.ensure(d.bridge, _gateway_interfaces(spec), mtu=d.mtu)
        if current is None or current.spec != spec:
            if current is not None:
                self._drop(current)
            self._add(Network(current.id if current else ids.new_id(), current.created if current else times.now(), spec))

    def _add(self, n: Network) -> None:
        self._repo.add(n)
        self._networks[n.id] = n

    def _drop(self, n: Network) -> None:
        self._repo.delete(n.id)
        self._networks.pop(n.id, None)

    def _by_name(self, name: str) -> Network | None:
        return next((n for n in self._networks.values() if n.name == name), None)

    # ---- reading ----------------------------------------------------------------------

    def host_binding(self, network: Network) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Where a -p without a host address binds on `network`: its host_binding_ipv4
        option, else the daemon's `--ip` (0.0.0.0: every address)."""
        text = network.spec.options.get(OPT_HOST_BINDING) or self._defaults.host_binding_ipv4
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            return ipaddress.IPv4Address("0.0.0.0")

    def all(self) -> list[Network]:
        return sorted(self._networks.values(), key=lambda n: (n.created, n.id))

    def get(self, term: str) -> Network:
        return find(term, self._networks.values())

    def attached(self, network_id: str) -> list[str]:
        return self._endpoints_of(network_id)

    def _in_use(self) -> frozenset[str]:
        return frozenset(n.id for n in self._networks.values() if self._endpoints_of(n.id))

    def query(self, filters: Filters) -> list[Network]:
        return select(self.all(), filters, self._in_use())

    # ---- changes ----------------------------------------------------------------------

    async def create(self, req: CreateRequest) -> Network:
        async with self._lock:
            network_id = ids.new_id()
            spec = await self._decide(req, network_id)
            if (deleting := self._deleting.get(spec.bridge)) is not None:
                await deleting  # the same device name again (`-o com.docker.network.bridge.name`)
            made = await self._bridges.ensure(spec.bridge, _gateway_interfaces(spec), mtu=spec.mtu)
            network = Network(network_id, times.now(), spec)
            try:
                await asyncio.to_thread(self._repo.add, network)
            except BaseException:
                if made:
                    await self._bridges.remove(spec.bridge)
                raise
            self._networks[network.id] = network
        await self._notify()
        if self._created is not None:
            try:
                await self._created(network)
            except Exception:
                log.exception("network %s: the containers naming it could not be told its id", network.name)
        self._events.publish("network", "create", network.id, {"name": network.name, "type": spec.driver})
        log.info("network %s (%s) created on %s", network.name, network.id[:12], spec.bridge)
        return network

    async def _decide(self, req: CreateRequest, network_id: str) -> NetworkSpec:
        check_creatable(req.name, self._networks.values())
        if req.driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{req.driver}" network is allowed')
        if req.driver != "bridge":
            raise NotFound(f"could not find plugin {req.driver} in v1 plugin registry: plugin not found")
        if req.ipam_driver not in ("", "default"):
            raise NotFound(f"could not find plugin {req.ipam_driver} in v1 plugin registry: plugin not found")
        if req.ingress or req.config_only or req.config_from:
            raise InvalidArgument("swarm networks (ingress, config-only, config-from) are not supported")
        options = dict(req.options)
        enable_ipv6 = req.enable_ipv6 if req.enable_ipv6 is not None else parse_bool_option(options, "com.docker.network.enable_ipv6", False)
        enable_ipv4 = req.enable_ipv4 if req.enable_ipv4 is not None else parse_bool_option(options, "com.docker.network.enable_ipv4", True)
        if not enable_ipv4:
            raise InvalidArgument("IPv4 cannot be disabled here: IPv6-only networks are not supported yet")
        icc = parse_bool_option(options, OPT_ENABLE_ICC, True)
        masquerade = parse_bool_option(options, OPT_MASQUERADE, True)
        mtu = parse_mtu(options)
        plans = plan_subnets(req.subnets, enable_ipv6)
        if enable_ipv6 and not any(p.subnet.version == 6 for p in plans):
            raise InvalidArgument("an IPv6 network needs a --subnet for v6: automatic v6 subnets are not supported yet")
        taken = [s for n in self._networks.values() for s in (*n.subnets_of(4), *n.subnets_of(6))]
        for plan in plans:
            check_free(plan.subnet, taken)
            taken.append(plan.subnet)
        if not any(p.subnet.version == 4 for p in plans):
            routes = await self._bridges.host_routes()
            plans = (SubnetPlan(next_free_subnet(self._defaults.pools, [*taken, *routes]), None, None), *plans)
        bridge = options.get(OPT_BRIDGE_NAME) or f"br-{network_id[:12]}"
        if any(n.spec.bridge == bridge for n in self._networks.values()):
            raise Conflict(f"bridge name {bridge} is already used by another network")
        if len(bridge) > 15:
            raise InvalidArgument(f"invalid bridge name {bridge}: at most 15 characters")
        return NetworkSpec(
            name=req.name, driver=Driver.BRIDGE, internal=req.internal, attachable=req.attachable,
            enable_ipv4=True, enable_ipv6=enable_ipv6, labels=dict(req.labels), options=options,
            ipam_driver="default", ipam_options=None if req.ipam_options is None else dict(req.ipam_options), subnets=_with_gateways(plans),
            bridge=bridge, icc=icc, masquerade=masquerade, mtu=mtu,
        )  # fmt: skip

    async def remove(self, term: str) -> None:
        async with self._lock:
            n = self.get(term)
            if n.predefined:
                raise Forbidden(f"{n.name} is a pre-defined network and cannot be removed")
            attached = self._endpoints_of(n.id)
            if attached:
                raise Forbidden(f"error while removing network: network {n.name} has active endpoints ({', '.join(attached)})")
            await self._bridges.retire(n.spec.bridge)  # down: no route, no traffic
            await asyncio.to_thread(self._repo.delete, n.id)
            self._networks.pop(n.id, None)
            self._delete_later(n.spec.bridge)
        await self._notify()
        self._events.publish("network", "destroy", n.id, {"name": n.name, "type": n.spec.driver})
        log.info("network %s (%s) removed", n.name, n.id[:12])

    def _delete_later(self, bridge: str) -> None:
        async def delete() -> None:
            try:
                await self._bridges.remove(bridge)
            finally:
                self._deleting.pop(bridge, None)

        task = self._tasks.spawn(delete(), f"delete-bridge-{bridge}")
        self._deleting[bridge] = task

    async def _notify(self) -> None:
        if self._changed is not None:
            try:
                await self._changed()
            except Exception:  # the network is made or gone either way; the next change retries
                log.exception("firewall: applying the networks' rules failed")

    async def prune(self, filters: Filters) -> list[str]:
        """Remove every unused user network the filters select: their names."""
        chosen = prunable(self.all(), filters, self._in_use(), time.time_ns())
        removed = []
        for n in chosen:
            try:
                await self.remove(n.id)
            except (NotFound, Forbidden):
                continue  # gone meanwhile, or a container joined it
            removed.append(n.name)
        return removed


def _is_bridge_route(route: ipaddress.IPv4Network | ipaddress.IPv6Network, current: Network | None) -> bool:
    """The default bridge's own route is not another's use of that space."""
    return current is not None and route in current.subnets_of(route.version)
