"""A container's place on its networks: what was asked (EndpointRequest, part of the spec)
and what a start made (Endpoint, part of the running state), and the pure choices between
them: which networks a network mode means, interface names, MAC addresses, the files."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from dockyard.errors import InvalidArgument
from dockyard.model import dnsview
from dockyard.model.ports import Published


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """One `NetworkingConfig.EndpointsConfig` entry, its network resolved at create."""

    network_id: str
    network_name: str
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    ipv4: str = ""  # IPAMConfig.IPv4Address: a fixed address, asked for
    ipv6: str = ""
    link_local: tuple[str, ...] = ()
    mac: str = ""
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    gw_priority: int = 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint while the container runs: the addresses it holds and its devices."""

    network_id: str
    network_name: str
    endpoint_id: str
    interface: str  # eth0, eth1, ... inside the container
    host_veth: str  # the other end, on the bridge
    mac: str
    ipv4: IPv4Interface | None = None
    ipv6: IPv6Interface | None = None
    gateway4: IPv4Address | None = None
    gateway6: IPv6Address | None = None
    aliases: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # "target:alias" on a user network: names only this container resolves
    gateway_route: bool = False  # the container's default route goes through this endpoint
    ports: tuple[Published, ...] = ()  # host ports forwarded to it (the gateway endpoint only)


def mac_for(address: IPv4Address) -> str:
    """dockerd's classic MAC for a bridge endpoint: 02:42 and the four bytes of its address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)


def check_mac(text: str) -> str:
    """A MAC address as given (`--mac-address`), normalised; a multicast one is refused."""
    parts = text.split(":") if text else []
    try:
        raw = bytes(int(p, 16) for p in parts) if len(parts) == 6 and all(len(p) <= 2 for p in parts) else b""
    except ValueError:
        raw = b""
    if not raw:
        raise InvalidArgument(f"invalid MAC address: {text}")
    if raw[0] & 1:
        raise InvalidArgument(f"invalid MAC address: {text}: a multicast address")
    return ":".join(f"{b:02x}" for b in raw)


def interface_name(index: int) -> str:
    return f"eth{index}"


def dns_names(container_name: str, short_id: str, aliases: Sequence[str], user_defined: bool, hostname: str = "") -> tuple[str, ...]:
    """The names a container answers to on one network (DNSNames, API >= 1.45): on user
    networks its name, its aliases, its short id and its hostname; none on the default bridge."""
    if not user_defined:
        return ()
    return dnsview.dns_names(container_name, aliases, short_id, hostname)


def parse_fixed_address(text: str, version: int) -> IPv4Address | IPv6Address | None:
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv{version} address: {text}") from None
    if addr.version != version:
        raise InvalidArgument(f"invalid IPv{version} address: {text}")
    return addr


def own_hosts_lines(endpoints: Sequence[Endpoint], hostname: str, domainname: str = "") -> list[tuple[str, str]]:
    """The container's own entries of /etc/hosts: each address with its host name, as dockerd."""
    name = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    lines: list[tuple[str, str]] = []
    for e in endpoints:
        if e.ipv4 is not None:
            lines.append((str(e.ipv4.ip), name))
        if e.ipv6 is not None:
            lines.append((str(e.ipv6.ip), name))
    return lines


def hosts_with(text: str, lines: Sequence[tuple[str, str]]) -> str:
    """/etc/hosts with `lines` (address, names) appended, as dockerd adds an endpoint's
    addresses when a running container joins a network; ones already there are not repeated."""
    present = {(p[0], " ".join(p[1:])) for line in text.splitlines() if len(p := line.split()) > 1}
    out = text if not text or text.endswith("\n") else text + "\n"
    return out + "".join(f"{ip}\t{names}\n" for ip, names in lines if (ip, " ".join(names.split())) not in present)


def hosts_without(text: str, lines: Sequence[tuple[str, str]]) -> str:
    """/etc/hosts without the entries `lines` added (a disconnect), every other line kept."""
    gone = {(ip, " ".join(names.split())) for ip, names in lines}
    kept = [line for line in text.splitlines(keepends=True)
            if not ((p := line.split()) and (p[0], " ".join(p[1:])) in gone)]  # fmt: skip
    return "".join(kept)
