"""IP address management, pure: subnets for networks, addresses for endpoints.

dockerd's default IPAM driver is the reference, its rules and its words: a network's subnet
is given or the first free one of the predefined pools (`default-address-pools`) that
overlaps neither another network nor a host route; an endpoint gets the lowest free address
of the network's ip-range (or subnet), the network address and the v4 broadcast never. Every
value here is frozen: an allocation returns the new state beside what it took, so the caller
records both in one step or neither.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from dockyard.errors import Forbidden, InvalidArgument, Unavailable

Net = IPv4Network | IPv6Network
Addr = IPv4Address | IPv6Address

POOL_OVERLAP = "Pool overlaps with other one on this address space"
NO_MORE_SUBNETS = "all predefined address pools have been fully subnetted"
ADDRESS_IN_USE = "Address already in use"
NO_ADDRESSES = "no available addresses on this pool"
OUT_OF_RANGE = "requested address is out of range"


class PoolOverlap(Forbidden):
    """A subnet that overlaps one already taken (dockerd: 403, ErrPoolOverlap)."""


class AddressInUse(Forbidden):
    """The asked address is another endpoint's (dockerd: 403, ErrIPAlreadyAllocated)."""


class PoolExhausted(Unavailable):
    """No address is free in the network's range (dockerd: 503, ErrNoAvailableIPs)."""


# ---- predefined pools -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressPool:
    """One `default-address-pools` entry: `base` is cut into subnets of prefix length `size`."""

    base: Net
    size: int

    def __post_init__(self) -> None:
        if not self.base.prefixlen <= self.size <= self.base.max_prefixlen:
            raise InvalidArgument(
                f"invalid default address pool {self.base}: size {self.size} must be between "
                f"{self.base.prefixlen} and {self.base.max_prefixlen}"
            )


def parse_address_pools(raw: object) -> tuple[AddressPool, ...]:
    """daemon.json `default-address-pools`: `[{"base": "10.10.0.0/16", "size": 24}, ...]`."""
    if not isinstance(raw, list):
        raise InvalidArgument("default-address-pools must be a list of {base, size} objects")
    pools = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) - {"base", "size"} or "base" not in entry:
            raise InvalidArgument(f"default-address-pools[{i}]: want an object with base and size")
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise InvalidArgument(f"default-address-pools[{i}]: size must be a number")
        try:
            base = ipaddress.ip_network(str(entry["base"]))
        except ValueError as exc:
            raise InvalidArgument(f"default-address-pools[{i}]: invalid base {entry['base']}: {exc}") from None
        pools.append(AddressPool(base, size))
    return tuple(pools)


def _overlaps(a: Net, b: Net) -> bool:
    return a.version == b.version and a.overlaps(b)


def next_free_subnet(pools: Iterable[AddressPool], taken: Iterable[Net], version: int = 4) -> Net:
    """The first subnet, in the pools' address order, that overlaps nothing in `taken`
    (other networks' subnets and the host's routes): dockerd's predefined-pool choice."""
    busy = sorted((n for n in taken if n.version == version), key=lambda n: int(n.network_address))
    for pool in sorted((p for p in pools if p.base.version == version), key=lambda p: int(p.base.network_address)):
        width = 1 << (pool.base.max_prefixlen - pool.size)
        start, end = int(pool.base.network_address), int(pool.base.broadcast_address)
        candidate = start
        while candidate + width - 1 <= end:
            last = candidate + width - 1
            clash = max(
                (int(n.broadcast_address) for n in busy
                 if int(n.network_address) <= last and int(n.broadcast_address) >= candidate),
                default=None,
            )  # fmt: skip
            if clash is None:
                return ipaddress.ip_network((candidate, pool.size))
            candidate = (clash // width + 1) * width  # the first aligned subnet past the clash
    raise InvalidArgument(NO_MORE_SUBNETS)


# ---- a network's IPAM config as the client gave it ----------------------------------------


@dataclass(frozen=True, slots=True)
class SubnetRequest:
    """One entry of `IPAM.Config`: each field still the client's text ("" when absent)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubnetPlan:
    """A validated `IPAM.Config` entry."""

    subnet: Net
    ip_range: Net | None
    gateway: Addr | None
    aux_addresses: tuple[tuple[str, Addr], ...] = ()


def _parse_prefix(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """Go's netip.ParsePrefix: an address, a slash and a length; host bits may be set."""
    if "/" not in text or "%" in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _family(version: int) -> str:
    return f"IPv{version}"


def _address_problem(text: str, subnet: Net) -> str | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return "invalid address"
    if addr.version != subnet.version:
        return f"parent subnet is an {_family(subnet.version)} block"
    if addr not in subnet:
        return f"parent subnet {subnet} doesn't contain this address"
    return None


def _range_problems(text: str, subnet: Net) -> list[str]:
    iface = _parse_prefix(text)
    if iface is None:
        return [f"invalid ip-range {text}: invalid CIDR block notation"]
    if iface.version != subnet.version:
        return [f"invalid ip-range {text}: parent subnet is an {_family(subnet.version)} block"]
    problems = []
    if iface.network.prefixlen < subnet.prefixlen:
        problems.append(f"invalid ip-range {text}: CIDR block is bigger than its parent subnet {subnet}")
    if iface.ip != iface.network.network_address:
        problems.append(f"invalid ip-range {text}: it should be {iface.network}")
    if not _overlaps(iface.network, subnet):
        problems.append(f"invalid ip-range {text}: parent subnet {subnet} doesn't contain ip-range")
    return problems


def plan_subnets(requests: Iterable[SubnetRequest], enable_ipv6: bool) -> tuple[SubnetPlan, ...]:
    """Check each entry as dockerd's ValidateIPAM does and report every problem at once;
    v6 entries of a network without IPv6 are skipped (dockerd ignores them too)."""
    problems: list[str] = []
    plans: list[SubnetPlan] = []
    for req in requests:
        iface = _parse_prefix(req.subnet)
        if iface is None:
            problems.append(f"invalid subnet {req.subnet}: invalid CIDR block notation")
            continue
        subnet = iface.network
        if subnet.version == 6 and not enable_ipv6:
            continue
        before = len(problems)
        if iface.ip != subnet.network_address:
            problems.append(f"invalid subnet {iface}: it should be {subnet}")
        if req.ip_range:
            problems.extend(_range_problems(req.ip_range, subnet))
        if req.gateway and (why := _address_problem(req.gateway, subnet)):
            problems.append(f"invalid gateway {req.gateway}: {why}")
        for name, text in req.aux_addresses.items():
            if why := _address_problem(text, subnet):
                problems.append(f"invalid auxiliary address {name}: {why}")
        if len(problems) == before:
            plans.append(SubnetPlan(
                subnet=subnet,
                ip_range=ipaddress.ip_network(req.ip_range) if req.ip_range else None,
                gateway=ipaddress.ip_address(req.gateway) if req.gateway else None,
                aux_addresses=tuple((k, ipaddress.ip_address(v)) for k, v in sorted(req.aux_addresses.items())),
            ))  # fmt: skip
    if problems:
        listed = problems[0] if len(problems) == 1 else "* " + "\n* ".join(problems)
        raise InvalidArgument(f"invalid network config:\n{listed}")
    return tuple(plans)


def check_free(subnet: Net, taken: Iterable[Net]) -> None:
    """A subnet the client named must overlap no other network's."""
    if any(_overlaps(subnet, other) for other in taken):
        raise PoolOverlap(f"invalid pool request: {POOL_OVERLAP}")


# ---- addresses in one subnet ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leases:
    """The addresses taken in one subnet, as offsets from its network address. The network
    address is never handed out, nor the v4 broadcast (except in a /31 or /32, which have
    no such addresses)."""

    subnet: Net
    taken: frozenset[int] = frozenset()

    def _reserved(self, offset: int) -> bool:
        host_bits = self.subnet.max_prefixlen - self.subnet.prefixlen
        if offset == 0:
            return self.subnet.version == 6 or host_bits > 1
        return self.subnet.version == 4 and host_bits > 1 and offset == self.subnet.num_addresses - 1

    def _offset(self, addr: Addr) -> int:
        return int(addr) - int(self.subnet.network_address)

    def holds(self, addr: Addr) -> bool:
        return addr.version == self.subnet.version and addr in self.subnet and self._offset(addr) in self.taken

    def take(self, addr: Addr) -> Leases:
        """`addr` itself (an `--ip`, a gateway, an auxiliary address)."""
        if addr.version != self.subnet.version or addr not in self.subnet:
            raise InvalidArgument(OUT_OF_RANGE)
        offset = self._offset(addr)
        if offset in self.taken or self._reserved(offset):
            raise AddressInUse(ADDRESS_IN_USE)
        return Leases(self.subnet, self.taken | {offset})

    def take_any(self, within: Net | None = None) -> tuple[Addr, Leases]:
        """The lowest free address of `within` (the network's ip-range), else of the subnet."""
        scope = within if within is not None else self.subnet
        first = max(self._offset(scope.network_address), 0)
        last = min(self._offset(scope.broadcast_address), self.subnet.num_addresses - 1)
        offset = first
        while offset <= last and (offset in self.taken or self._reserved(offset)):
            offset += 1
        if offset > last:
            raise PoolExhausted(NO_ADDRESSES)
        return self.subnet.network_address + offset, Leases(self.subnet, self.taken | {offset})

    def release(self, addr: Addr) -> Leases:
        """Give `addr` back; giving back what is not taken changes nothing."""
        if addr.version != self.subnet.version or addr not in self.subnet:
            return self
        return Leases(self.subnet, self.taken - {self._offset(addr)})
