"""`docker network connect` and `disconnect`: a container's spec changes, and when it runs,
its endpoint is plugged in or pulled out at once, under the container's lifecycle lock, and
its /etc/hosts follows; the first user network a running container joins starts its embedded
DNS and points its resolv.conf there, as dockerd does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

from dockyard.engine.bundles import EMBEDDED_DNS, ContainerFiles, resolv_conf
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.events import EventBus
from dockyard.engine.firewalling import Firewalling
from dockyard.engine.networks import NetworkService
from dockyard.engine.table import ContainerTable
from dockyard.errors import Forbidden, InvalidArgument, NotFound
from dockyard.linux.fs import overwrite
from dockyard.model.containers import Container, ContainerStatus
from dockyard.model.endpoints import (
    Endpoint,
    EndpointRequest,
    hosts_with,
    hosts_without,
    own_hosts_lines,
)
from dockyard.model.networks import Driver, Network

log = logging.getLogger(__name__)


ServeDns = Callable[[Container, str], Awaitable[None]]  # Lifecycle.serve_dns: a server in that netns


class Connections:
    def __init__(self, table: ContainerTable, networks: NetworkService, endpoints: Endpoints, events: EventBus,
                 firewalling: Firewalling | None = None, *, files: Callable[[str], ContainerFiles] | None = None,
                 serve_dns: ServeDns | None = None, dns_running: Callable[[str], bool] | None = None) -> None:  # fmt: skip
        self._firewalling = firewalling
        self._files = files
        self._serve_dns = serve_dns
        self._dns_running = dns_running or (lambda netns: False)
        self._table = table
        self._networks = networks
        self._endpoints = endpoints
        self._events = events

    async def connect(self, network_term: str, container_ref: str, request: EndpointRequest) -> None:
        network = self._networks.get(network_term)
        c = self._table.resolve(container_ref)
        if network.spec.driver is not Driver.BRIDGE:
            raise Forbidden(f"container cannot be connected to {network.spec.driver} network")
        mode = c.spec.host.network_mode
        if mode in ("host", "none") or mode.startswith("container:") or c.spec.network_disabled and not c.spec.endpoints:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        live = self._table.live(c.id)
        async with live.lock:
            c = self._table.current(c)
            if c.state.status in (ContainerStatus.REMOVING, ContainerStatus.DEAD):
                raise NotFound(f"No such container: {container_ref}")
            if any(r.network_id == network.id or r.network_name == network.name for r in c.spec.endpoints):
                raise Forbidden(f"endpoint with name {c.name} already exists in network {network.name}")
            request = self._endpoints.checked(network, replace(request, network_name=network.name))
            if c.state.running:
                endpoint = await self._endpoints.plug_one(
                    c, request, len(c.state.endpoints), Path(c.state.netns),
                    routed=any(e.gateway_route for e in c.state.endpoints),
                )  # fmt: skip
                try:
                    await self._joined_live(c, endpoint)
                except BaseException:
                    await self._endpoints.detach([endpoint])
                    raise
                self._endpoints.joined(c, endpoint)
                c = self._table.publish(c.id, replace(c.state, endpoints=(*c.state.endpoints, endpoint)))
            self._table.publish_spec(c.id, replace(c.spec, endpoints=(*c.spec.endpoints, request)))
        self._events.publish("network", "connect", network.id,
                             {"container": c.id, "name": network.name, "type": network.spec.driver})  # fmt: skip

    async def disconnect(self, network_term: str, container_ref: str, *, force: bool = False) -> None:
        try:
            network = self._networks.get(network_term)
        except NotFound:
            if not force:
                raise
            network = None
        c = self._table.resolve(container_ref)
        live = self._table.live(c.id)
        async with live.lock:
            c = self._table.current(c)
            kept = tuple(r for r in c.spec.endpoints if not _names(r, network_term, network))
            if len(kept) == len(c.spec.endpoints):
                if network is None:
                    return
                raise Forbidden(f"container {c.id} is not connected to network {network.name}")
            leaving = [e for e in c.state.endpoints if network is not None and e.network_id == network.id]
            if leaving:
                if self._firewalling is not None and any(e.ports for e in leaving):
                    await self._firewalling.unpublish(c.id)  # its ports went to this endpoint's address
                await self._endpoints.detach(leaving, c.id)
                await self._edit_hosts(c, leaving, hosts_without)
                c = self._table.publish(c.id, replace(c.state, endpoints=tuple(e for e in c.state.endpoints if e not in leaving)))
            self._table.publish_spec(c.id, replace(c.spec, endpoints=kept))
        if network is not None:
            self._events.publish("network", "disconnect", network.id,
                                 {"container": c.id, "name": network.name, "type": network.spec.driver})  # fmt: skip


    async def adopt(self, network: Network) -> None:
        """A network just made: containers created before it that name it get its id (their
        inspect shows it; a start would look it up anyway)."""
        for c in self._table.all():
            if not any(not r.network_id and r.network_name == network.name for r in c.spec.endpoints):
                continue
            async with self._table.live(c.id).lock:
                current = self._table.get(c.id)
                if current is None:
                    continue
                requests = []
                for r in current.spec.endpoints:
                    if not r.network_id and r.network_name == network.name:
                        try:
                            r = self._endpoints.checked(network, r)
                        except InvalidArgument:
                            pass  # its start says why
                    requests.append(r)
                self._table.publish_spec(c.id, replace(current.spec, endpoints=tuple(requests)))

    async def remove_link(self, parent_ref: str, alias: str) -> None:
        """A legacy link of `parent_ref` removed (it takes effect at its next start, as dockerd)."""
        try:
            c = self._table.resolve(parent_ref)
        except NotFound:
            raise NotFound(f"No such container: {parent_ref}/{alias}") from None
        async with self._table.live(c.id).lock:
            c = self._table.current(c)
            kept = tuple(link for link in c.spec.host.links if link.partition(":")[2] != alias)
            if len(kept) == len(c.spec.host.links):
                raise NotFound(f"No such container: {parent_ref}/{alias}")
            self._table.publish_spec(c.id, replace(c.spec, host=replace(c.spec.host, links=kept)))

    async def _joined_live(self, c: Container, endpoint: Endpoint) -> None:
        """A running container's files after it joined: its addresses in /etc/hosts; on its
        first user network, an embedded DNS server and a resolv.conf that points there."""
        await self._edit_hosts(c, [endpoint], hosts_with)
        netns = c.state.netns
        if (self._serve_dns is None or self._files is None or not netns or self._dns_running(netns)
                or self._endpoints.wants_dns(c.state.endpoints) or not self._endpoints.wants_dns([endpoint])):
            return  # fmt: skip
        await self._serve_dns(c, netns)
        h = c.spec.host
        options = h.dns_options if any(o.startswith("ndots:") for o in h.dns_options) else (*h.dns_options, "ndots:0")
        await asyncio.to_thread(_point_resolv_at_dns, self._files(c.id).resolv, h.dns_search, options)

    async def _edit_hosts(self, c: Container, endpoints: Sequence[Endpoint],
                          edit: Callable[[str, Sequence[tuple[str, str]]], str]) -> None:  # fmt: skip
        if self._files is None or c.spec.host.network_mode == "host":
            return
        lines = own_hosts_lines(endpoints, c.spec.hostname, c.spec.domainname)
        await asyncio.to_thread(_edit_hosts_file, self._files(c.id).hosts, lambda text: edit(text, lines))


# Both files are bind-mounted into the running container: rewritten in place.
def _edit_hosts_file(path: Path, edit: Callable[[str], str]) -> None:
    overwrite(path, edit(path.read_text()).encode())


def _point_resolv_at_dns(path: Path, search: Sequence[str], options: Sequence[str]) -> None:
    """The container's resolv.conf as a start with the embedded DNS writes it."""
    try:
        host = Path("/etc/resolv.conf").read_text()
    except OSError:
        host = ""
    overwrite(path, resolv_conf(host, EMBEDDED_DNS, search, options))


def _names(request: EndpointRequest, term: str, network: Network | None) -> bool:
    """Does `request` join this network (or, for one gone already, the one named `term`)?"""
    if network is not None:
        return request.network_id == network.id or request.network_name == network.name
    return request.network_name == term
