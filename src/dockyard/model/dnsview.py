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

The engine builds one `NetworkNames` per user-defined network from its running endpoints
(about 8 us an endpoint), again on each change, and a `NameTable` per container that only
points at its networks' (about 1 us), so a change costs one rebuild however many containers
see it. The default bridge has no names (dockerd gives DNSNames only on user-defined
networks) but still counts as external access: list it as an empty NetworkNames.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
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
    """One running container on a network, as the DNS sees it."""

    names: tuple[str, ...]  # dns_names(...): the first is the container's name
    addresses: tuple[Addr, ...] = ()


@dataclass(frozen=True, slots=True)
class _Names:
    v4: tuple[IPv4Address, ...]
    v6: tuple[IPv6Address, ...]


def _key(name: str) -> str:
    return name.lower()


@dataclass(frozen=True)
class NetworkNames:
    """One network's names: built once when its running endpoints change, and shared by
    every container on it (each container's NameTable only points at it)."""

    name: str
    endpoints: tuple[EndpointRecord, ...] = ()
    internal: bool = False
    _names: dict[str, _Names] = field(init=False, repr=False, compare=False)
    _ptr: dict[Addr, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found: dict[str, tuple[dict[IPv4Address, None], dict[IPv6Address, None]]] = {}
        ptr: dict[Addr, str] = {}
        for endpoint in self.endpoints:
            for name in endpoint.names:
                v4, v6 = found.setdefault(_key(name), ({}, {}))
                for address in endpoint.addresses:
                    if isinstance(address, IPv4Address):
                        v4[address] = None
                    else:
                        v6[address] = None
            if endpoint.names:
                for address in endpoint.addresses:
                    ptr.setdefault(address, f"{endpoint.names[0]}.{self.name}")
        names = {name: _Names(tuple(v4), tuple(v6)) for name, (v4, v6) in found.items()}
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_ptr", ptr)

    def get(self, key: str) -> _Names | None:
        return self._names.get(key)

    def pointer(self, address: Addr) -> str | None:
        return self._ptr.get(address)


@dataclass(frozen=True, slots=True)
class Link:
    """A legacy `--link target:alias` on a user-defined network: an alias only the linking
    container sees."""

    network: str
    alias: str
    target: str


def _pointer_address(pointer: str) -> Addr | None:
    """The address a PTR name stands for (`4.0.18.172.in-addr.arpa`, 32 nibbles under
    ip6.arpa), None for any other name."""
    labels = pointer.removesuffix(".").lower().split(".")
    if len(labels) == 6 and labels[4:] == ["in-addr", "arpa"]:
        octets = labels[3::-1]
        if all(o.isascii() and o.isdigit() and str(int(o)) == o and int(o) < 256 for o in octets):
            return IPv4Address(".".join(octets))
        return None
    if len(labels) == 34 and labels[32:] == ["ip6", "arpa"]:
        nibbles = labels[31::-1]
        if all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            return IPv6Address(int("".join(nibbles), 16))
    return None


@dataclass(frozen=True, slots=True)
class NameTable:
    """The names one container resolves: its networks in priority order, its links, and
    whether its resolv.conf sets ndots explicitly. Cheap: the networks are shared."""

    networks: tuple[NetworkNames, ...] = ()
    links: tuple[Link, ...] = ()
    ndots_set: bool = False

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
        candidates = [net for net in self.networks if network is None or _key(net.name) == network]
        for net in candidates:  # this container's link aliases first
            for link in self.links:
                if link.network == net.name and _key(link.alias) == wanted:
                    found = net.get(_key(link.target))
                    if found is not None:
                        return found
        for net in candidates:
            if any(link.network == net.name and _key(link.alias) == wanted for link in self.links):
                continue
            found = net.get(wanted)
            if found is not None:
                return found
        return None

    def reverse(self, pointer: str) -> str | None:
        """The name for a PTR query (`4.0.18.172.in-addr.arpa`), None when not ours."""
        address = _pointer_address(pointer)
        if address is None:
            return None
        for net in self.networks:
            found = net.pointer(address)
            if found is not None:
                return found
        return None


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

