"""Exposed and published ports, pure: the API's port fields as frozen values, and back.

dockerd is the reference (v28.2.2: daemon/container.go validatePortBindings, the bridge
driver's port_mapping_linux.go, go-connections/nat). Its rules, kept here:
- `Config.ExposedPorts` keys are "<port>[/<proto>]", tcp when the proto is left out;
- only exposed ports are published: a `PortBindings` entry for a port that is not exposed is
  ignored (the docker CLI always exposes what `-p` publishes);
- `HostPort` "" (or "0") is a free port of the ephemeral range, "8000-8010" the first free one
  of that range, "8080" exactly that one; `HostIp` "" is every address of each family the
  container has an address of (0.0.0.0 and ::), the same host port for both;
- `PublishAllPorts` (-P) publishes each exposed port that has no binding to a free port;
- a mapping from a host family to a container without an address of that family is dropped,
  as dockerd does with its userland proxy off (dockyard has no proxy: nftables cannot NAT
  between families).
Create-time checks use dockerd's words: `invalid port specification: "<text>"`. dockerd lets a
few more things through to fail later or silently (an unknown proto, an unparsable HostIp
meaning "every address", port 0); they are refused here, at create, with the words of the
docker CLI's own parser (`invalid proto: x`, `invalid IP address: x`).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from dockyard.errors import InvalidArgument
from dockyard.model.shellwords import go_quote

Addr = IPv4Address | IPv6Address

# dockerd's words for ports and network modes (runconfig/errors.go, daemon_unix.go): a 400
# for --network container:<id> with -p/-P or --expose, a warning for --network host with -p.
CONFLICT_PUBLISH = "conflicting options: port publishing and the container type network mode"
CONFLICT_EXPOSE = "conflicting options: port exposing and the container type network mode"
HOST_MODE_WARNING = "Published ports are discarded when using host network mode"
# What the engine puts before a reservation's or the firewall's error at start (a 500).
PROGRAMMING_FAILED = "driver failed programming external connectivity on endpoint {name} ({endpoint_id}): {error}"

ANY_V4 = IPv4Address("0.0.0.0")
ANY_V6 = IPv6Address("::")

_DIGITS = re.compile(r"[0-9]+")


class Proto(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"

    @property
    def number(self) -> int:
        """The IP protocol number: dockerd orders bindings by it (tcp < udp < sctp)."""
        return {"tcp": 6, "udp": 17, "sctp": 132}[self.value]


@dataclass(frozen=True, slots=True, order=True)
class ExposedPort:
    port: int
    proto: Proto = Proto.TCP

    @property
    def key(self) -> str:
        """The API's map key: "80/tcp"."""
        return f"{self.port}/{self.proto}"


@dataclass(frozen=True, slots=True, order=True)
class HostPorts:
    """The host side of a mapping before allocation: (0, 0) is any free port, start == end
    that port exactly, else the first free one of start-end."""

    start: int = 0
    end: int = 0

    @property
    def any(self) -> bool:
        return self.start == 0

    @property
    def exact(self) -> bool:
        return self.start != 0 and self.start == self.end

    def __str__(self) -> str:
        if self.any:
            return ""
        return str(self.start) if self.exact else f"{self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class PortMapping:
    """One publication asked for: host address None is every address (v4 and v6)."""

    proto: Proto
    container_port: int
    host_ip: Addr | None = None
    host_ports: HostPorts = HostPorts()

    def sort_key(self) -> tuple[int, int, int, int, int, int, int]:
        """dockerd's order (cmpPortBinding): exact host ports before ranges, then container
        port, proto, host ports, host address (none, then v4, then v6)."""
        ip = self.host_ip
        return (
            0 if self.host_ports.exact else 1,
            self.container_port,
            self.proto.number,
            self.host_ports.start,
            self.host_ports.end,
            0 if ip is None else ip.version,
            int(ip) if ip is not None else 0,
        )


@dataclass(frozen=True, slots=True)
class BindRequest:
    """A mapping made concrete for one endpoint: one host address family, one container
    address. host_ip 0.0.0.0 or :: means every address of that family."""

    proto: Proto
    container_ip: Addr
    container_port: int
    host_ip: Addr
    host_ports: HostPorts = HostPorts()

    def describe(self, host_port: int | None = None) -> str:
        """dockerd's PortBinding.String(): "0.0.0.0:8080:172.17.0.2:80/tcp"."""
        port = str(host_port) if host_port else str(self.host_ports)
        head = _hostport(self.host_ip, port) if port else _host(self.host_ip)
        return f"{head}:{_hostport(self.container_ip, str(self.container_port))}/{self.proto}"


@dataclass(frozen=True, slots=True)
class Published:
    """A host port reserved and forwarded to a container port."""

    proto: Proto
    container_ip: Addr
    container_port: int
    host_ip: Addr
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def _host(ip: Addr) -> str:
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _hostport(ip: Addr, port: str) -> str:
    return f"{_host(ip)}:{port}"


# ---- parsing, as dockerd and go-connections/nat do -------------------------------------------


def _split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: "80/udp" -> ("udp", "80"); no proto is tcp."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _uint16(text: str) -> int | None:
    """strconv.ParseUint(text, 10, 16): digits only, at most 65535."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= 65535 else None


def _port_range(text: str) -> tuple[int, int] | None:
    """nat.ParsePortRange: "8000" or "8000-8010" (end >= start); None when invalid."""
    if not text:
        return None
    if "-" not in text:
        port = _uint16(text)
        return None if port is None else (port, port)
    parts = text.split("-")
    start, end = _uint16(parts[0]), _uint16(parts[1])
    if start is None or end is None or end < start:
        return None
    return start, end


def _proto(text: str) -> Proto:
    try:
        return Proto(text.lower())
    except ValueError:
        raise InvalidArgument(f"invalid proto: {text}") from None


def parse_port_key(key: str) -> ExposedPort:
    """A key of ExposedPorts or PortBindings: "80/tcp", "53/udp", "80" (tcp)."""
    proto, port = _split_proto_port(key)
    number = _uint16(port)
    if not number:
        raise InvalidArgument(f"invalid port specification: {go_quote(port)}")
    return ExposedPort(number, _proto(proto))


def parse_host_ports(text: str) -> HostPorts:
    """A binding's HostPort: "" or "0" (any), "8080", "8000-8010"; a "/proto" tail is
    ignored, as dockerd does."""
    _, port = _split_proto_port(text)
    if not port:
        return HostPorts()
    bounds = _port_range(port)
    if bounds is None or (bounds[0] == 0 and bounds[1] != 0):
        raise InvalidArgument(f"invalid port specification: {go_quote(text)}")
    return HostPorts(*bounds)


def parse_host_ip(text: str) -> Addr | None:
    """A binding's HostIp: "" is every address; "[::1]" is taken as ::1; an IPv4-mapped v6
    address is its v4 address."""
    if not text:
        return None
    raw = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ip = ipaddress.ip_address(raw) if "%" not in raw else None
    except ValueError:
        ip = None
    if ip is None:
        raise InvalidArgument(f"invalid IP address: {text}")
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def exposed_ports(keys: Iterable[str]) -> tuple[ExposedPort, ...]:
    """Config.ExposedPorts' keys, checked, without duplicates ("80" and "80/tcp" are one)."""
    return tuple(sorted({parse_port_key(k) for k in keys}))


def validate_port_bindings(bindings: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """HostConfig.PortBindings at create: every key, host address and host port."""
    for key, entries in bindings.items():
        parse_port_key(key)
        for host_ip, host_port in entries:
            parse_host_ports(host_port)
            parse_host_ip(host_ip)


def port_mappings(
    exposed: Iterable[str],
    bindings: Mapping[str, Sequence[tuple[str, str]]],
    publish_all: bool = False,
) -> tuple[PortMapping, ...]:
    """What a container asks to publish, in dockerd's order (see PortMapping.sort_key).

    `exposed` are Config.ExposedPorts' keys (the image's and the container's), `bindings`
    HostConfig.PortBindings as (HostIp, HostPort) pairs."""
    by_port: dict[ExposedPort, list[tuple[str, str]]] = {}
    for key, entries in bindings.items():
        by_port.setdefault(parse_port_key(key), []).extend(entries)
    out = []
    for port in exposed_ports(exposed):
        entries = by_port.get(port, [])
        for host_ip, host_port in entries:
            out.append(PortMapping(port.proto, port.port, parse_host_ip(host_ip), parse_host_ports(host_port)))
        if publish_all and not entries:
            out.append(PortMapping(port.proto, port.port))
    return tuple(sorted(out, key=PortMapping.sort_key))


def bind_requests(
    mappings: Iterable[PortMapping],
    ipv4: Addr | None,
    ipv6: Addr | None,
    default_host_ip: Addr = ANY_V4,
) -> tuple[BindRequest, ...]:
    """The mappings for an endpoint with these addresses, one request per host family; a
    family the endpoint has no address of is dropped.

    A mapping without a host address takes `default_host_ip` (dockerd's `--ip`, or the
    network's com.docker.network.bridge.host_binding_ipv4): 0.0.0.0, the default, means
    0.0.0.0 to ipv4 and :: to ipv6; any other address binds that address only, in its own
    family (dockerd's configurePortBindingIPv4/IPv6)."""
    out = []
    for m in mappings:
        families: list[tuple[Addr, Addr]] = []
        host = m.host_ip
        if host is None and default_host_ip != ANY_V4:
            host = default_host_ip
        if host is None:
            if ipv4 is not None:
                families.append((ANY_V4, ipv4))
            if ipv6 is not None:
                families.append((ANY_V6, ipv6))
        elif host.version == 4 and ipv4 is not None:
            families.append((host, ipv4))
        elif host.version == 6 and ipv6 is not None:
            families.append((host, ipv6))
        for host_ip, container_ip in families:
            out.append(BindRequest(m.proto, container_ip, m.container_port, host_ip, m.host_ports))
    return tuple(out)


# ---- the docker CLI's -p syntax (go-connections/nat.ParsePortSpec) ---------------------------


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port_spec(raw: str) -> tuple[tuple[str, str, str], ...]:
    """`-p [ip:][hostPort:]containerPort[/proto]` as the docker CLI parses it, to
    (PortBindings key, HostIp, HostPort) triples, one per container port of a range."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = _split_proto_port(container_port)
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise InvalidArgument(f"invalid IP address {ip}: missing ']' in address")
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
    if not container_port:
        raise InvalidArgument(f"no port specified: {raw}<empty>")
    bounds = _port_range(container_port)
    if bounds is None:
        raise InvalidArgument(f"invalid containerPort: {container_port}")
    start, end = bounds
    host_start = host_end = 0
    if host_port:
        host_bounds = _port_range(host_port)
        if host_bounds is None:
            raise InvalidArgument(f"invalid hostPort: {host_port}")
        host_start, host_end = host_bounds
        # A host range with one container port is the range to pick a free port from.
        if end - start != host_end - host_start and end != start:
            raise InvalidArgument(
                f"invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            )
    proto = _proto(proto).value
    out = []
    for i in range(end - start + 1):
        if not host_port:
            host = ""
        elif start == end and host_start != host_end:
            host = f"{host_start}-{host_end}"
        else:
            host = str(host_start + i)
        out.append((f"{start + i}/{proto}", ip, host))
    return tuple(out)


# ---- rendering: dockerd's shapes (NetworkSettings.Ports, the Ports of GET /containers/json) --


def port_map(exposed: Iterable[ExposedPort], published: Iterable[Published]) -> dict[str, tuple[Published, ...] | None]:
    """Each exposed port with its publications, None when it has none; sorted by key as
    Go's JSON encoder sorts a map's keys."""
    out: dict[str, list[Published] | None] = {p.key: None for p in exposed}
    for pub in published:
        slot = out.get(pub.key)
        if slot is None:
            out[pub.key] = slot = []
        slot.append(pub)
    return {k: (tuple(v) if v is not None else None) for k, v in sorted(out.items())}


def network_settings_ports(
    exposed: Iterable[ExposedPort], published: Iterable[Published]
) -> dict[str, list[dict[str, str]] | None]:
    """`NetworkSettings.Ports` of a running container: {"80/tcp": [{"HostIp": "0.0.0.0",
    "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}], "443/tcp": null}. A
    container that is not running has {}: dockerd drops the map with the endpoint, so the
    caller passes no exposed ports then (nor on --network none/host, which have no
    endpoint with ports)."""
    return {
        key: None if pubs is None else [{"HostIp": str(p.host_ip), "HostPort": str(p.host_port)} for p in pubs]
        for key, pubs in port_map(exposed, published).items()
    }


def summary_ports(exposed: Iterable[ExposedPort], published: Iterable[Published]) -> list[dict[str, object]]:
    """The `Ports` list of GET /containers/json: one entry per publication, and one without
    IP and PublicPort (omitempty) per exposed port that has none. Made from the same map as
    NetworkSettings.Ports, so [] for a container that is not running."""
    out: list[dict[str, object]] = []
    for key, pubs in port_map(exposed, published).items():
        port, _, proto = key.partition("/")
        if pubs is None:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        for p in pubs:
            out.append({"IP": str(p.host_ip), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": proto})
    return out
