"""Host port reservation: the daemon binds every published host port itself.

Holding the socket is what makes a taken port fail cleanly at start (dockerd does the same,
v28.2.2 libnetwork/drivers/bridge/port_mapping_linux.go) instead of two programs silently
sharing it while nftables sends the traffic to the container. The sockets carry no traffic:
the DNAT rules take every packet before a socket lookup.

- TCP: SO_REUSEADDR, bound, and listening with backlog 0, as dockerd without its userland
  proxy. SO_REUSEADDR so that a port a program has just left (TIME_WAIT) can be published;
  listening because a bound, non-listening SO_REUSEADDR socket does not stop another
  SO_REUSEADDR program (most servers) from binding and listening on the same port; only a
  listener conflicts with everyone. It also shows the port in `ss -ltn` as the daemon's.
- UDP and SCTP: bound without SO_REUSEADDR (UDP sockets that both set it share a port, which
  is the silent sharing we want to refuse; there is no TIME_WAIT to tolerate).
- v6 sockets are IPV6_V6ONLY: [::]:8080 and 0.0.0.0:8080 are two reservations.

Random host ports come from /proc/sys/net/ipv4/ip_local_port_range, as dockerd's allocator
reads it (49153-65535 only when the file cannot be read), searched from the port after the
last one handed out in that range, wrapping once. A reservation takes all of a container's
ports or none: a failure part-way closes what it had bound.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from dockyard.errors import Internal
from dockyard.model.ports import Addr, BindRequest, HostPorts, Proto, Published

log = logging.getLogger(__name__)

PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_RANGE = (49153, 65535)  # dockerd's fallback (portallocator_unix.go)

_SOCK_TYPE = {Proto.TCP: socket.SOCK_STREAM, Proto.UDP: socket.SOCK_DGRAM, Proto.SCTP: socket.SOCK_STREAM}
_IPPROTO = {Proto.TCP: socket.IPPROTO_TCP, Proto.UDP: socket.IPPROTO_UDP, Proto.SCTP: socket.IPPROTO_SCTP}


class PortAllocated(Internal):
    """The host port is taken (dockerd: a System error, 500). The engine prefixes
    "driver failed programming external connectivity on endpoint <name> (<id>): "."""


def parse_port_range(text: str) -> tuple[int, int] | None:
    """ip_local_port_range's "32768\t60999"; None when it does not hold two ports."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    start, end = int(parts[0]), int(parts[1])
    return (start, end) if 0 < start <= end <= 65535 else None


def ephemeral_range(path: Path = PORT_RANGE_FILE) -> tuple[int, int]:
    try:
        found = parse_port_range(path.read_text())
    except OSError:
        found = None
    if found is None:
        log.info("falling back to default port range %d-%d", *DEFAULT_RANGE)
        return DEFAULT_RANGE
    return found


@dataclass
class _Held:
    request: BindRequest
    sock: socket.socket
    published: Published


@dataclass
class Reservation:
    """A container's host ports, held until `release` (also on leaving a `with` block)."""

    _allocator: PortAllocator
    _held: list[_Held] = field(default_factory=list)

    @property
    def published(self) -> tuple[Published, ...]:
        return tuple(h.published for h in self._held)

    def release(self) -> None:
        """Close every socket and forget the ports; a second call does nothing."""
        held, self._held = self._held, []
        for h in reversed(held):
            self._allocator._forget(h.published)
            h.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class PortAllocator:
    """The daemon's table of the host ports it holds, by (address, proto); the kernel's
    bind() is the final word for ports other programs hold."""

    def __init__(self, port_range: tuple[int, int] | None = None) -> None:
        self.port_range = port_range or ephemeral_range()
        self._taken: set[tuple[Addr, Proto, int]] = set()
        self._last: dict[tuple[int, int], int] = {}  # per searched range: the port handed out last

    def reserve(self, requests: Iterable[BindRequest]) -> Reservation:
        """Bind a host port for each request. Requests that differ only in host address
        (0.0.0.0 and :: for one mapping) get the same port, as dockerd gives them. Raises
        PortAllocated with dockerd's words, having released everything it took."""
        reservation = Reservation(self)
        try:
            for group in _same_port_groups(list(requests)):
                reservation._held.extend(self._bind_group(group))
        except BaseException:
            reservation.release()
            raise
        return reservation

    def _forget(self, pub: Published) -> None:
        self._taken.discard((pub.host_ip, pub.proto, pub.host_port))

    def _bind_group(self, group: list[BindRequest]) -> list[_Held]:
        first = group[0]
        if first.host_ports.exact:
            port = first.host_ports.start
            for req in group:
                if (req.host_ip, req.proto, port) in self._taken:
                    raise PortAllocated(f"Bind for {_host(req.host_ip)}:{port} failed: port is already allocated")
            return self._bind_all(group, port)
        bounds = self.port_range if first.host_ports.any else (first.host_ports.start, first.host_ports.end)
        last_error: PortAllocated | None = None
        for port in self._candidates(bounds):
            if any((req.host_ip, req.proto, port) in self._taken for req in group):
                continue
            try:
                held = self._bind_all(group, port)
            except PortAllocated as exc:  # another program holds it: try the next one
                last_error = exc
                continue
            self._last[bounds] = port
            return held
        if last_error is not None and not first.host_ports.any:
            raise last_error
        raise PortAllocated("all ports are allocated")

    def _candidates(self, bounds: tuple[int, int]) -> Iterator[int]:
        start, end = bounds
        last = self._last.get(bounds, end)
        size = end - start + 1
        for i in range(1, size + 1):
            yield start + (last - start + i) % size

    def _bind_all(self, group: list[BindRequest], port: int) -> list[_Held]:
        held: list[_Held] = []
        try:
            for req in group:
                sock = _bind(req, port)
                pub = Published(req.proto, req.container_ip, req.container_port, req.host_ip, port)
                held.append(_Held(req, sock, pub))
                self._taken.add((req.host_ip, req.proto, port))
        except BaseException:
            for h in held:
                self._forget(h.published)
                h.sock.close()
            raise
        return held


def _host(ip: Addr) -> str:
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _same_port_groups(requests: list[BindRequest]) -> Iterator[list[BindRequest]]:
    """Runs of requests that differ only in their host addresses (dockerd's needSamePort):
    the families of one mapping, or one container port published on several host
    addresses. A run never spans two containers (two addresses of one family)."""
    group: list[BindRequest] = []
    for req in requests:
        if group and (_port_key(group[-1]) != _port_key(req) or _other_endpoint(group, req)):
            yield group
            group = []
        group.append(req)
    if group:
        yield group


def _port_key(r: BindRequest) -> tuple[Proto, int, HostPorts]:
    return (r.proto, r.container_port, r.host_ports)


def _other_endpoint(group: list[BindRequest], req: BindRequest) -> bool:
    return any(g.container_ip.version == req.container_ip.version and g.container_ip != req.container_ip for g in group)


def _bind(req: BindRequest, port: int) -> socket.socket:
    family = socket.AF_INET6 if req.host_ip.version == 6 else socket.AF_INET
    try:
        sock = socket.socket(family, _SOCK_TYPE[req.proto] | socket.SOCK_CLOEXEC, _IPPROTO[req.proto])
    except OSError as exc:
        raise Internal(f"failed to create socket for {req.describe(port)}: {exc.strerror}") from exc
    try:
        if req.proto is Proto.TCP:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((str(req.host_ip), port))
        if req.proto is Proto.TCP:
            sock.listen(0)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            where = "" if req.host_ports.exact else f" {port}"
            raise PortAllocated(f"failed to bind host port{where} for {req.describe()}: {_strerror(exc)}") from exc
        raise Internal(f"failed to bind host port for {req.describe(port)}: {_strerror(exc)}") from exc
    return sock


def _strerror(exc: OSError) -> str:
    """Go's syscall.Errno text: lower case ("address already in use")."""
    return (exc.strerror or str(exc)).lower()


def reserve_exact(allocator: PortAllocator, published: Iterable[Published]) -> Reservation:
    """Take back ports known from before (a daemon restarted with containers running)."""
    requests = [
        BindRequest(p.proto, p.container_ip, p.container_port, p.host_ip, HostPorts(p.host_port, p.host_port))
        for p in published
    ]
    return allocator.reserve(requests)
