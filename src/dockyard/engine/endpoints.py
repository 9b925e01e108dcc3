"""Containers on networks: which networks a create means, and at each start the addresses
taken and the veths plugged; released at the exit. The leases live in memory: at start-up
they are rebuilt from the networks' gateways and the running containers' endpoints.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from dockyard.engine.networks import NetworkService
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.model import ids
from dockyard.model.containers import Container, ContainerSpec
from dockyard.model.dnsview import EndpointRecord, Link, NameTable, NetworkNames
from dockyard.model.endpoints import (
    Endpoint,
    EndpointRequest,
    check_mac,
    dns_names,
    interface_name,
    mac_for,
    parse_fixed_address,
)
from dockyard.model.ipam import Leases
from dockyard.model.links import LinkedContainer, hosts_entry, parse_link, with_link_env
from dockyard.model.networks import DEFAULT_BRIDGE, Driver, Network
from dockyard.model.ports import exposed_ports
from dockyard.network.veth import Plug, Veths

log = logging.getLogger(__name__)

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class Endpoints:
    def __init__(self, networks: NetworkService, veths: Veths, *,
                 containers: Callable[[str], Container] | None = None) -> None:  # fmt: skip
        self._containers = containers  # a container by name or id (NotFound): for links
        self._networks = networks
        self._veths = veths
        self._leases: dict[tuple[str, Net], Leases] = {}
        self._attached: dict[str, dict[str, tuple[str, Endpoint]]] = {}  # network id -> container id -> (name, endpoint)
        self._names: dict[str, NetworkNames] = {}  # network id -> its DNS names, rebuilt on each change

    # ---- create: what the request means ------------------------------------------------

    def resolve(self, spec: ContainerSpec) -> ContainerSpec:
        """The endpoints a new container asks for, each network found (404 if not), and its
        legacy links, each container found."""
        spec = self._resolve_endpoints(spec)
        return replace(spec, host=replace(spec.host, links=self._links(spec))) if spec.host.links else spec

    def _links(self, spec: ContainerSpec) -> tuple[str, ...]:
        """HostConfig.Links as dockerd registers them: on the default bridge only (the CLI
        gives user networks their links in EndpointsConfig), each `name:alias` found."""
        mode = spec.host.network_mode or "default"
        if mode == "host":
            raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                                  "This would result in undefined behavior")  # fmt: skip
        if mode.startswith("container:"):
            raise InvalidArgument("conflicting options: container type network can't be used with links. "
                                  "This would result in undefined behavior")  # fmt: skip
        if mode not in ("default", DEFAULT_BRIDGE, "none") or self._containers is None:
            return ()
        found = []
        for text in spec.host.links:
            name, alias = parse_link(text)
            try:
                child = self._containers(name)
                while child.spec.host.network_mode.startswith("container:"):
                    child = self._containers(child.spec.host.network_mode.partition(":")[2])
            except NotFound as exc:
                raise InvalidArgument(f"could not get container for {name}: {exc.message}") from None
            if child.spec.host.network_mode == "host":
                raise InvalidArgument("conflicting options: host type networking can't be used with links. "
                                      "This would result in undefined behavior")  # fmt: skip
            found.append(f"{child.name}:{alias}")
        return tuple(found)

    def with_links(self, c: Container) -> Container:
        """`c` as its start writes its files: each linked container in its /etc/hosts and its
        variables in the environment (dockerd's legacy links, on the default bridge)."""
        if not c.spec.host.links or self._containers is None:
            return c
        bridge = self._find(DEFAULT_BRIDGE)
        if bridge is None or c.id not in self._attached.get(bridge.id, {}):
            return c  # not on the default bridge: links mean nothing there
        children = []
        for link in c.spec.host.links:
            name, _, alias = link.partition(":")
            try:
                child = self._containers(name)
            except NotFound:
                continue  # removed since: its link went with it
            if not child.state.running:
                raise Conflict(f"Cannot link to a non running container: /{child.name} AS /{c.name}/{alias}")
            _, endpoint = self._attached[bridge.id].get(child.id, ("", None))
            if endpoint is None or endpoint.ipv4 is None:
                raise Conflict(f"Cannot link to /{child.name}, as it does not belong to the default network")
            ports = exposed_ports((*child.spec.exposed_ports, *child.spec.host.port_bindings))
            children.append(LinkedContainer(alias, child.name, child.spec.hostname, str(endpoint.ipv4.ip),
                                            child.spec.env, ports))  # fmt: skip
        h = c.spec.host
        return replace(c, spec=replace(
            c.spec, env=with_link_env(c.spec.env, c.name, children),
            host=replace(h, extra_hosts=(*h.extra_hosts, *(hosts_entry(child) for child in children))),
        ))  # fmt: skip

    def _resolve_endpoints(self, spec: ContainerSpec) -> ContainerSpec:
        mode = spec.host.network_mode or "default"
        if spec.network_disabled or mode == "none":
            if spec.endpoints and mode == "none":
                extra = [r.network_name for r in spec.endpoints if r.network_name != "none"]
                if extra:
                    raise InvalidArgument("container cannot be connected to multiple networks with one of the networks in private (none) mode")
            return replace(spec, endpoints=())
        if mode == "host" or mode.startswith("container:"):
            if spec.endpoints and any(r.network_name not in (mode, "host") for r in spec.endpoints):
                raise InvalidArgument(f"conflicting options: {mode} network mode and other networks")
            return replace(spec, endpoints=())  # the host's, or another container's, namespace
        asked = {r.network_name: r for r in spec.endpoints}
        primary_term = DEFAULT_BRIDGE if mode == "default" else mode
        primary = self._find(primary_term)
        if primary is None and mode in ("default", DEFAULT_BRIDGE) and not set(asked) - {"default", DEFAULT_BRIDGE}:
            return replace(spec, endpoints=())  # `--bridge none`: containers get loopback only
        # The CLI keys the primary endpoint by the mode as given ("default" too).
        keys = (mode, primary_term, *((primary.id, primary.name) if primary else ()))
        found = [asked.pop(k) for k in dict.fromkeys(keys) if k in asked]
        chosen: list[tuple[Network | None, EndpointRequest]] = [
            (primary, replace(found[0] if found else EndpointRequest("", ""), network_name=primary_term))
        ]
        for term, request in asked.items():
            network = self._find(term)
            if network is None or all(n is None or n.id != network.id for n, _ in chosen):
                chosen.append((network, request))
        requests = []
        for index, (network, request) in enumerate(chosen):
            if index == 0 and spec.mac_address and not request.mac:
                request = replace(request, mac=spec.mac_address)
            # A network that does not exist yet is looked for again at each start (dockerd:
            # a 404 at create would make the CLI try to pull the image).
            requests.append(self.checked(network, request) if network is not None else request)
        return replace(spec, endpoints=tuple(requests))

    def _find(self, term: str) -> Network | None:
        try:
            return self._networks.get(term)
        except NotFound:
            return None

    def checked(self, network: Network, request: EndpointRequest) -> EndpointRequest:
        """`request` on `network`, checked as dockerd checks it, with the network's id and name."""
        if network.spec.driver is not Driver.BRIDGE:
            raise InvalidArgument(f"container cannot be connected to network {network.name} ({network.spec.driver})")
        user_defined = network.name != DEFAULT_BRIDGE
        if request.aliases and not user_defined:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        problems = []
        for text, version in ((request.ipv4, 4), (request.ipv6, 6)):
            addr = parse_fixed_address(text, version)
            if addr is None:
                continue
            if not user_defined:
                raise InvalidArgument("user specified IP address is supported only when connecting to networks with user configured subnets")
            if not any(addr in s for s in network.subnets_of(version)):
                problems.append(f"no configured subnet or ip-range contain the IP address {addr}")
        if problems:
            raise InvalidArgument("invalid endpoint settings:\n" + "\n".join(problems))
        mac = check_mac(request.mac) if request.mac else ""
        return replace(request, network_id=network.id, network_name=network.name, mac=mac)

    # ---- start and exit ---------------------------------------------------------------

    def _lease(self, network: Network, subnet: Net) -> Leases:
        key = (network.id, subnet)
        leases = self._leases.get(key)
        if leases is None:
            leases = Leases(subnet)
            for plan in network.spec.subnets:
                if plan.subnet == subnet:
                    for reserved in (plan.gateway, *(a for _, a in plan.aux_addresses)):
                        if reserved is not None and not leases.holds(reserved):
                            leases = leases.take(reserved)
        return leases

    def _take(self, network: Network, version: int, fixed: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        plans = [p for p in network.spec.subnets if p.subnet.version == version]
        if not plans:
            return None
        wanted = parse_fixed_address(fixed, version)
        plan = next((p for p in plans if wanted is not None and wanted in p.subnet), plans[0])
        leases = self._lease(network, plan.subnet)
        if wanted is not None:
            leases, addr = leases.take(wanted), wanted
        else:
            addr, leases = leases.take_any(plan.ip_range)
        self._leases[(network.id, plan.subnet)] = leases
        return ipaddress.ip_interface((addr, plan.subnet.prefixlen))

    def _give_back(self, endpoint: Endpoint) -> None:
        for iface in (endpoint.ipv4, endpoint.ipv6):
            if iface is None:
                continue
            key = (endpoint.network_id, iface.network)
            if key in self._leases:
                self._leases[key] = self._leases[key].release(iface.ip)

    async def attach(self, c: Container, netns: Path) -> tuple[Endpoint, ...]:
        """Every endpoint of `c` in the namespace at `netns`; on a failure none is left."""
        made: list[Endpoint] = []
        try:
            for index, request in enumerate(c.spec.endpoints):
                made.append(await self.plug_one(c, request, index, netns, routed=any(e.gateway_route for e in made)))
        except BaseException:
            await self.detach(made)
            raise
        for endpoint in made:
            self.joined(c, endpoint)
        return tuple(made)

    async def plug_one(self, c: Container, request: EndpointRequest, index: int, netns: Path, *, routed: bool) -> Endpoint:
        """One endpoint: its addresses taken, its veth plugged; the default route through it
        unless one exists (`routed`) or the network is internal. Nothing is kept on a failure."""
        network = self._find(request.network_id) if request.network_id else None
        network = network or self._find(request.network_name)
        if network is None:
            raise NotFound(f"network {request.network_name} not found")
        if not request.network_id:
            request = self.checked(network, request)
        ipv4 = self._take(network, 4, request.ipv4)
        try:
            ipv6 = self._take(network, 6, request.ipv6)
        except BaseException:
            if ipv4 is not None:
                self._leases[(network.id, ipv4.network)] = self._leases[(network.id, ipv4.network)].release(ipv4.ip)
            raise
        route = not routed and not network.spec.internal
        endpoint = Endpoint(
            network_id=network.id,
            network_name=network.name,
            endpoint_id=ids.new_id(),
            interface=interface_name(index),
            host_veth=f"veth{secrets.token_hex(4)[:7]}",
            mac=request.mac or (mac_for(ipv4.ip) if isinstance(ipv4, ipaddress.IPv4Interface) else ""),
            ipv4=ipv4 if isinstance(ipv4, ipaddress.IPv4Interface) else None,
            ipv6=ipv6 if isinstance(ipv6, ipaddress.IPv6Interface) else None,
            gateway4=_gateway4(network),
            gateway6=_gateway6(network),
            aliases=request.aliases,
            links=request.links if network.name != DEFAULT_BRIDGE else (),
            dns_names=dns_names(c.name, c.short_id, request.aliases, network.name != DEFAULT_BRIDGE, c.spec.hostname),
            gateway_route=route,
        )
        gateways = tuple(g for g in (endpoint.gateway4, endpoint.gateway6) if g is not None) if route else ()
        addresses = tuple(a for a in (endpoint.ipv4, endpoint.ipv6) if a is not None)
        try:
            await self._veths.plug(Plug(netns, network.spec.bridge, endpoint.host_veth, endpoint.interface,
                                        endpoint.mac, addresses, gateways, network.spec.mtu))  # fmt: skip
        except BaseException:
            self._give_back(endpoint)
            raise
        return endpoint

    def republished(self, c: Container, endpoints: Iterable[Endpoint]) -> None:
        """The endpoints of `c` again, now with their published ports."""
        for endpoint in endpoints:
            if endpoint.ports:
                self.joined(c, endpoint)

    def joined(self, c: Container, endpoint: Endpoint) -> None:
        self._attached.setdefault(endpoint.network_id, {})[c.id] = (c.name, endpoint)
        self._names.pop(endpoint.network_id, None)

    # ---- the embedded DNS ---------------------------------------------------------------

    @staticmethod
    def wants_dns(endpoints: Iterable[Endpoint]) -> bool:
        """dockerd's embedded DNS serves containers on user-defined networks."""
        return any(e.network_name != DEFAULT_BRIDGE for e in endpoints)

    def _network_names(self, network_id: str) -> NetworkNames:
        names = self._names.get(network_id)
        if names is None:
            network = self._find(network_id)
            members = self._attached.get(network_id, {}).values()
            records = tuple(EndpointRecord(e.dns_names, tuple(a.ip for a in (e.ipv4, e.ipv6) if a is not None))
                            for _, e in members if e.dns_names)  # fmt: skip
            names = NetworkNames(network.name if network else network_id, records,
                                 internal=bool(network and network.spec.internal))  # fmt: skip
            self._names[network_id] = names
        return names

    def name_table(self, container_id: str, ndots_set: bool = False) -> NameTable:
        """What the container's embedded DNS answers from: its networks' names, in its order."""
        mine = sorted((e.interface, e.network_id) for net in self._attached.values()
                      for cid, (_, e) in net.items() if cid == container_id)  # fmt: skip
        networks = tuple(self._network_names(network_id) for _, network_id in mine)
        links = tuple(Link(net.name, alias, target) for net, network_id in zip(networks, (n for _, n in mine))
                      for target, alias in map(parse_link, self._attached[network_id][container_id][1].links))  # fmt: skip
        return NameTable(networks, links, ndots_set=ndots_set)

    async def detach(self, endpoints: Iterable[Endpoint], container_id: str = "", *, unplug: bool = True) -> None:
        """Give the addresses back and pull the veths out. `unplug=False` when the namespace
        goes with its last process: the kernel removes both ends with it, off our path (a
        link deletion here waits ~10 ms for an RCU grace period)."""
        for endpoint in endpoints:
            self._give_back(endpoint)
            if unplug:
                await self._veths.unplug(endpoint.host_veth)
            if container_id:
                self._attached.get(endpoint.network_id, {}).pop(container_id, None)
                self._names.pop(endpoint.network_id, None)

    def restore(self, running: Iterable[Container]) -> None:
        """Start-up: the leases and attachments of containers that still run."""
        for c in running:
            for endpoint in c.state.endpoints:
                try:
                    network = self._networks.get(endpoint.network_id)
                except NotFound:
                    continue
                for iface in (endpoint.ipv4, endpoint.ipv6):
                    if iface is not None:
                        leases = self._lease(network, iface.network)
                        if not leases.holds(iface.ip):
                            self._leases[(network.id, iface.network)] = leases.take(iface.ip)
                self._attached.setdefault(network.id, {})[c.id] = (c.name, endpoint)
                self._names.pop(network.id, None)

    async def mend(self, running: Iterable[Container]) -> None:
        """Start-up, once the states are right: the kernel brought back in line with the
        running containers' endpoints. Veths on our bridges that no endpoint owns go; one
        whose bridge was made again goes back on it; one gone is plugged in again with the
        endpoint's own addresses (its peer went with it)."""
        by_veth: dict[str, tuple[Container, Endpoint, Network]] = {}
        for c in running:
            for endpoint in c.state.endpoints:
                network = self._find(endpoint.network_id)
                if network is not None and c.state.netns:
                    by_veth[endpoint.host_veth] = (c, endpoint, network)
        bridges = frozenset(n.spec.bridge for n in self._networks.all() if n.spec.driver is Driver.BRIDGE and n.spec.bridge)
        missing = await self._veths.mend(bridges, {v: n.spec.bridge for v, (_, _, n) in by_veth.items()})
        for name in missing:
            c, e, network = by_veth[name]
            gateways = tuple(g for g in (e.gateway4, e.gateway6) if g is not None) if e.gateway_route else ()
            addresses = tuple(a for a in (e.ipv4, e.ipv6) if a is not None)
            log.info("container %s: plugging %s into %s again", c.id[:12], e.interface, network.spec.bridge)
            try:
                await self._veths.plug(Plug(Path(c.state.netns), network.spec.bridge, e.host_veth, e.interface,
                                            e.mac, addresses, gateways, network.spec.mtu))  # fmt: skip
            except Exception:
                log.exception("container %s: %s could not be plugged in again", c.id[:12], e.interface)

    def host_gateway(self) -> str:
        """What `--add-host x:host-gateway` means: the default bridge's gateway ("" without one)."""
        bridge = self._find(DEFAULT_BRIDGE)
        gateway = _gateway4(bridge) if bridge is not None else None
        return str(gateway) if gateway else ""

    def attached(self, network_id: str) -> list[str]:
        """Names of the running containers on a network."""
        return sorted(name for name, _ in self._attached.get(network_id, {}).values())

    def members(self, network_id: str) -> dict[str, tuple[str, Endpoint]]:
        """The running containers on a network: id -> (name, endpoint)."""
        return dict(self._attached.get(network_id, {}))

    def renamed(self, container_id: str, name: str) -> None:
        for members in self._attached.values():
            if container_id in members:
                old, endpoint = members[container_id]
                names = tuple(name if n == old else n for n in endpoint.dns_names)
                members[container_id] = (name, replace(endpoint, dns_names=names))
        self._names.clear()


def _gateway4(network: Network) -> ipaddress.IPv4Address | None:
    found = [p.gateway for p in network.spec.subnets if isinstance(p.gateway, ipaddress.IPv4Address)]
    return found[0] if found else None


def _gateway6(network: Network) -> ipaddress.IPv6Address | None:
    found = [p.gateway for p in network.spec.subnets if isinstance(p.gateway, ipaddress.IPv6Address)]
    return found[0] if found else None
