"""What one container's embedded DNS server knows, and its answers: pure.

dockerd's resolver (libnetwork resolver.go, sandbox.go ResolveName) is the reference:

- a container sees the names on the networks it is attached to, in its own order of
  networks; a network's names are each endpoint's DNSNames (container name, network aliases,
  short id, hostname: `dns_names`), case-insensitive; a name several endpoints share (a
  Compose service, an alias) answers all their addresses, shuffled;
- `name.network` resolves `name` on that network only (network names may hold dots: every
  split is tried, the longest name first), after the plain name on any network;
- a legacy `--link target:alias` on a user-defined network is an alias only its container
  sees, looked up before the names;
- the first network that knows a name answers, with the addresses of the asked family:
  an AAAA query for a v4-only name is NOERROR with no answers, never forwarded;
- MX for a known name is an empty NOERROR (RFC 5321's implicit MX); PTR for a known address
  is `<first DNS name>.<network>.`; all at TTL 600;
- anything else (unknown names, other types, other reverse names) is forwarded, unless the
  container has no external access (only `--internal` networks): then SERVFAIL, as dockerd
  answers when no upstream can be asked (CVE-2024-29018: never leave an internal network);
- with an explicit `ndots` option in its resolv.conf, an unknown single-label A/AAAA name is
  an empty NOERROR instead of forwarded, so the stub goes on with its search domains.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from dockyard.errors import InvalidArgument
from dockyard.model import dnsmessage as wire
from dockyard.model.dnsmessage import QType, Query, RCode, Record, Transport

TTL = 600  # dockerd's respTTL

Addr = IPv4Address | IPv6Address


def dns_names(container_name: str, aliases: Iterable[str] = (), container_id: str = "", hostname: str = "") -> tuple[str, ...]:
    """An endpoint's DNSNames in dockerd's order (daemon/container_operations.go
    buildEndpointDNSNames): the name, the aliases, the short id, the hostname, each once.
    The first one names the PTR record; inspect shows the same list."""
    candidates = [container_name.removeprefix("/"), *aliases, container_id[:12], hostname]
    return tuple(dict.fromkeys(name for name in candidates if name))


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One running container on one network, as the DNS sees it."""

    network: str
    names: tuple[str, ...]  # dns_names(...): the first is the container's name
    addresses: tuple[Addr, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkRecord:
    """One network the viewing container is attached to."""

    name: str
    internal: bool = False
    links: tuple[tuple[str, str], ...] = ()  # (alias, container name): this container's --link


@dataclass(frozen=True, slots=True)
class _Names:
    v4: tuple[IPv4Address, ...]
    v6: tuple[IPv6Address, ...]


def _key(name: str) -> str:
    return name.lower()


def _index(network: str, endpoints: Sequence[EndpointRecord]) -> dict[str, _Names]:
    found: dict[str, tuple[dict[IPv4Address, None], dict[IPv6Address, None]]] = {}
    for endpoint in endpoints:
        if endpoint.network != network:
            continue
        for name in endpoint.names:
            v4, v6 = found.setdefault(_key(name), ({}, {}))
            for address in endpoint.addresses:
                if isinstance(address, IPv4Address):
                    v4[address] = None
                else:
                    v6[address] = None
    return {name: _Names(tuple(v4), tuple(v6)) for name, (v4, v6) in found.items()}


@dataclass(frozen=True)
class NameTable:
    """The names one container resolves. `networks` is its networks in priority order;
    `endpoints` may hold records of networks it is not on: they are ignored."""

    networks: tuple[NetworkRecord, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()
    ndots_set: bool = False  # its resolv.conf has an explicit ndots option
    _by_network: tuple[tuple[str, dict[str, _Names]], ...] = field(init=False, repr=False, compare=False)
    _reverse: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_network = tuple((net.name, _index(net.name, self.endpoints)) for net in self.networks)
        reverse: dict[str, str] = {}
        for net in self.networks:
            for endpoint in self.endpoints:
                if endpoint.network != net.name or not endpoint.names:
                    continue
                for address in endpoint.addresses:
                    reverse.setdefault(address.reverse_pointer, f"{endpoint.names[0]}.{net.name}")
        object.__setattr__(self, "_by_network", by_network)
        object.__setattr__(self, "_reverse", reverse)

    @property
    def can_forward(self) -> bool:
        """dockerd's hasExternalAccess: attached to at least one network that is not internal."""
        return any(not net.internal for net in self.networks)

    def lookup(self, name: str, qtype: int) -> tuple[Addr, ...] | None:
        """The addresses for an A or AAAA query, () when the name is known without any of that
        family, None when the name is not ours."""
        labels = name.removesuffix(".").split(".")
        splits: list[tuple[str, str | None]] = [(name.removesuffix("."), None)]
        splits += [(".".join(labels[:i]), ".".join(labels[i:])) for i in range(len(labels) - 1, 0, -1)]
        for wanted, network in splits:
            found = self._find(_key(wanted), None if network is None else _key(network))
            if found is not None:
                return found.v6 if qtype == QType.AAAA else found.v4
        return None

    def _find(self, wanted: str, network: str | None) -> _Names | None:
        candidates = [
            (net, names)
            for net, (_, names) in zip(self.networks, self._by_network, strict=True)
            if network is None or _key(net.name) == network
        ]
        for net, names in candidates:  # this container's link aliases first
            for alias, target in net.links:
                if _key(alias) == wanted and _key(target) in names:
                    return names[_key(target)]
        for net, names in candidates:
            if any(_key(alias) == wanted for alias, _ in net.links):
                continue
            if wanted in names:
                return names[wanted]
        return None

    def reverse(self, pointer: str) -> str | None:
        """The name for a PTR query (`4.0.18.172.in-addr.arpa`), None when not ours."""
        return self._reverse.get(pointer.removesuffix(".").lower())


@dataclass(frozen=True, slots=True)
class Forward:
    """Not ours: ask the upstream servers, and relay their reply."""

    query: Query


def answer(
    query: Query,
    table: NameTable,
    *,
    transport: Transport,
    can_forward: bool,
    rng: random.Random | None = None,
) -> bytes | Forward:
    """The reply to a parsed query, or Forward. `can_forward` is false on internal networks and
    when there is no upstream server; `rng` shuffles several addresses (dockerd does)."""
    limit = query.limit(transport)
    if query.edns is not None and query.edns.version > 0:
        return wire.encode_response(query, RCode.BADVERS, limit=limit)
    question = query.question
    text = question.text
    records: list[Record] | None = None
    if question.qclass == wire.QClass.IN:
        if question.qtype in (QType.A, QType.AAAA):
            found = table.lookup(text, question.qtype)
            if found is not None:
                addresses = list(found)
                if rng is not None:
                    rng.shuffle(addresses)
                records = [Record(question.name, question.qtype, TTL, a.packed) for a in addresses]
            elif table.ndots_set and len(question.name) == 1:
                records = []
        elif question.qtype == QType.MX:
            if table.lookup(text, QType.A) or table.lookup(text, QType.AAAA):
                records = []
        elif question.qtype == QType.PTR:
            target = table.reverse(text)
            if target is not None:
                try:
                    records = [Record(question.name, QType.PTR, TTL, wire.name_from_text(target))]
                except InvalidArgument:  # a container name too long for a DNS label
                    records = None
    if records is not None:
        return wire.encode_response(query, RCode.NOERROR, records, limit=limit)
    if can_forward:
        return Forward(query)
    return failure(query, transport, RCode.SERVFAIL)


def failure(query: Query, transport: Transport, rcode: RCode) -> bytes:
    """SERVFAIL or REFUSED with the question, RA clear (miekg/dns's SetRcode, as dockerd sends)."""
    return wire.encode_response(query, rcode, limit=query.limit(transport), recursion_available=False)


def respond(
    message: bytes,
    table: NameTable,
    *,
    transport: Transport,
    can_forward: bool,
    rng: random.Random | None = None,
) -> bytes | Forward | None:
    """The whole server-side decision for one received message: a reply, Forward, or None
    (nothing to send: garbage, or a response sent to us)."""
    try:
        query = wire.parse_query(message)
    except wire.Rejected as exc:
        return wire.encode_rejection(exc.header, exc.rcode)
    except wire.MessageError:
        return None
    return answer(query, table, transport=transport, can_forward=can_forward, rng=rng)

