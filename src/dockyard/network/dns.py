"""The embedded DNS server: one per container network namespace, at 127.0.0.11:53.

The sockets are made inside the container's namespace by a short-lived thread that
setns()es into it (a socket keeps the namespace it was made in, so the thread may end),
and are then served by the daemon's event loop like any other. Answers come from
model/dnsview with the table the engine's callable gives at that moment, so a container
that stops or leaves a network disappears from the next answer. What is not ours goes to
the upstream servers from the daemon's own namespace (network/upstream), SERVFAIL when none
answers; internal-only containers never forward (NameTable.can_forward).

Bounds, so a container cannot make the daemon hold unbounded state: forwarded queries in
flight per server and for all of them (REFUSED past them at once; dockerd waits up to 4 s
for one of its 1024 slots, then answers REFUSED),
a UDP retransmission of a query still in flight is dropped, TCP connections per server,
each with an idle timeout, one message at a time of at most 65535 bytes, a few forwarded
queries at a time (reading pauses beyond), and a cap on unread replies.

Port 53 of the namespace stays the container's (a DNS server image binds 0.0.0.0:53): as
dockerd does, the sockets take random ports and a nat rule in the namespace's own nftables
(table `ip dockyard_dns`, one `nft` transaction) sends 127.0.0.11:53 to them; conntrack
gives the replies their source back. `redirect=False` binds 127.0.0.11:53 itself.
An nft commit costs ~20 ms here (the kernel's grace period): a namespace made ahead of time
can get the rule then (`install_redirect` to a fixed port), and `add(port=..., rules_ready=True)`
only binds, in about a millisecond.

A listening socket pins its namespace: remove the server before releasing the namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import random
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.linux.command import run_command
from dockyard.model import dnsmessage as wire
from dockyard.model.dnsmessage import Query, RCode, Transport
from dockyard.model.dnsview import Forward, NameTable, failure, respond
from dockyard.network.upstream import Upstream, UpstreamLimits, ask_upstreams
from dockyard.tasks import Component, Tasks

log = logging.getLogger(__name__)

LISTEN_ADDRESS = "127.0.0.11"
CLONE_NEWNET = 0x40000000
REDIRECT_TABLE = "dockyard_dns"
NFT_TIMEOUT = 10.0

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

TableSource = Callable[[], NameTable]


@dataclass(frozen=True, slots=True)
class DnsLimits(UpstreamLimits):
    inflight_per_server: int = 1024  # dockerd's maxConcurrent
    inflight_total: int = 2048  # each holds a socket: well inside the daemon's open-file limit
    tcp_connections: int = 32
    tcp_idle: float = 8.0  # miekg/dns's idle timeout between queries on one connection
    tcp_pipeline: int = 8  # forwarded queries of one connection at a time; reading pauses beyond
    tcp_unread: int = 256 * 1024  # bytes of replies a client has not read: closed past it


class _Budget:
    """A counter of slots; taking fails instead of waiting, so nothing queues up."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0

    def take(self) -> bool:
        if self.used >= self.size:
            return False
        self.used += 1
        return True

    def give(self) -> None:
        self.used -= 1


def open_listeners(netns: Path, address: str = LISTEN_ADDRESS, port: int = 53) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets bound to address:port inside `netns` (blocking: run in a thread).

    setns() moves only the calling thread, so the work runs in a thread of its own that
    ends afterwards; the sockets stay in the namespace they were made in."""
    made: list[socket.socket] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise Internal(f"setns({netns}): {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            made.append(udp)
            udp.bind((address, port))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            made.append(tcp)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((address, port))
            tcp.listen(64)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=work, name="dns-listen")
    worker.start()
    worker.join()
    if errors:
        for sock in made:
            sock.close()
        exc = errors[0]
        if isinstance(exc, FileNotFoundError):
            raise NotFound(f"network namespace {netns} does not exist") from exc
        if isinstance(exc, OSError):
            raise Internal(f"DNS server in {netns}: {exc.strerror or exc}") from exc
        raise exc
    udp, tcp = made
    udp.setblocking(False)
    tcp.setblocking(False)
    return udp, tcp


def redirect_rules(address: str, udp_port: int, tcp_port: int) -> str:
    """One nft transaction that replaces our table in the container's namespace: queries to
    address:53 go to the ports our sockets have (the empty table first, so the delete never
    fails)."""
    return (
        f"table ip {REDIRECT_TABLE} {{}}\n"
        f"delete table ip {REDIRECT_TABLE}\n"
        f"table ip {REDIRECT_TABLE} {{\n"
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        f"    ip daddr {address} udp dport 53 dnat to {address}:{udp_port}\n"
        f"    ip daddr {address} tcp dport 53 dnat to {address}:{tcp_port}\n"
        "  }\n"
        "}\n"
    )


async def _nft_in(netns: Path, ruleset: str, what: str) -> None:
    result = await run_command(["nsenter", f"--net={netns}", "nft", ruleset], timeout=NFT_TIMEOUT, what=what)
    if result.returncode != 0:
        raise Internal(f"{what}: {result.stderr.decode(errors='replace').strip()}")


async def install_redirect(netns: Path, port: int, address: str = LISTEN_ADDRESS) -> None:
    """The redirect rule alone, to `port` for UDP and TCP: for a namespace made ahead of time,
    so that a later `add(port=port, rules_ready=True)` runs no nft."""
    await _nft_in(netns, redirect_rules(address, port, port), f"DNS redirect in {netns}")


# ---- serving a namespace ------------------------------------------------------------------


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._server.on_datagram(data, addr)


class _TcpConnection(asyncio.Protocol):
    """One client connection: length-prefixed messages, answered in order of completion."""

    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._forwards: set[asyncio.Task[Any]] = set()
        self._paused = False
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._server.accept(self):
            transport.abort()
            return
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(self._server.limits.tcp_idle, self._idle_out)

    def _idle_out(self) -> None:
        if self._forwards:  # a reply is still coming: not idle
            self._arm_idle()
        else:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._arm_idle()
        while len(self._buffer) >= 2 and not self._paused:
            (length,) = struct.unpack_from("!H", self._buffer)
            if len(self._buffer) < 2 + length:
                return
            message = bytes(self._buffer[2 : 2 + length])
            del self._buffer[: 2 + length]
            if not self._server.on_stream_message(message, self):
                self.close()
                return

    def send(self, reply: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(struct.pack("!H", len(reply)) + reply)
        if transport.get_write_buffer_size() > self._server.limits.tcp_unread:
            self.close()

    def track(self, task: asyncio.Task[Any]) -> None:
        self._forwards.add(task)
        task.add_done_callback(self._forward_done)
        if len(self._forwards) >= self._server.limits.tcp_pipeline and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _forward_done(self, task: asyncio.Task[Any]) -> None:
        self._forwards.discard(task)
        if self._paused and len(self._forwards) < self._server.limits.tcp_pipeline:
            self._paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
                self.data_received(b"")  # messages that arrived while paused

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        for task in list(self._forwards):
            task.cancel()
        self._server.forget(self)
        self._transport = None


class DnsServer:
    """The resolver of one namespace; made and ended by DnsServers."""

    def __init__(
        self,
        netns: Path,
        table: TableSource,
        upstreams: Sequence[Upstream],
        limits: DnsLimits,
        tasks: Tasks,
        budget: _Budget,
    ) -> None:
        self.netns = netns
        self.limits = limits
        self.redirected = False
        self._table = table
        self._upstreams = tuple(upstreams)
        self._tasks = tasks
        self._budget = budget
        self._own = _Budget(limits.inflight_per_server)
        self._rng = random.Random()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TcpConnection] = set()
        self._pending_udp: set[tuple[Any, bytes]] = set()
        self._forwards: set[asyncio.Task[Any]] = set()

    async def start(self, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpListener(self), sock=udp)
            self._tcp = await loop.create_server(lambda: _TcpConnection(self), sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            await self.close()
            raise

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        return self._upstreams

    def set_upstreams(self, upstreams: Sequence[Upstream]) -> None:
        self._upstreams = tuple(upstreams)

    def _decide(self, message: bytes, transport: Transport) -> bytes | Forward | None:
        try:
            table = self._table()
        except Exception:
            log.exception("dns: the name table of %s failed", self.netns)
            table = NameTable()
        can_forward = table.can_forward and bool(self._upstreams)
        return respond(message, table, transport=transport, can_forward=can_forward, rng=self._rng)

    def on_datagram(self, data: bytes, addr: Any) -> None:
        decision = self._decide(data, Transport.UDP)
        udp = self._udp
        if decision is None or udp is None:
            return
        if isinstance(decision, bytes):
            udp.sendto(decision, addr)
            return
        key = (addr, data)  # a stub's retransmission: same source, same bytes
        if key in self._pending_udp:
            return
        self._pending_udp.add(key)

        def send(reply: bytes) -> None:
            if self._udp is not None:
                self._udp.sendto(reply, addr)

        task = self._forward(decision.query, data, Transport.UDP, send)
        if task is None:
            self._pending_udp.discard(key)
        else:
            task.add_done_callback(lambda _: self._pending_udp.discard(key))

    def on_stream_message(self, message: bytes, connection: _TcpConnection) -> bool:
        """False: garbage, close the connection."""
        decision = self._decide(message, Transport.TCP)
        if decision is None:
            return False
        if isinstance(decision, bytes):
            connection.send(decision)
            return True
        task = self._forward(decision.query, message, Transport.TCP, connection.send)
        if task is not None:
            connection.track(task)
        return True

    def _forward(self, query: Query, message: bytes, transport: Transport, send: Callable[[bytes], None]) -> asyncio.Task[Any] | None:
        if not self._tasks.active or not self._own.take():
            send(failure(query, transport, RCode.REFUSED))
            return None
        if not self._budget.take():
            self._own.give()
            send(failure(query, transport, RCode.REFUSED))
            return None
        task = self._tasks.spawn(self._relay(query, message, transport, send), f"forward {query.question.text}")
        self._forwards.add(task)

        def done(_: asyncio.Task[Any]) -> None:
            self._forwards.discard(task)
            self._own.give()
            self._budget.give()

        task.add_done_callback(done)
        return task

    async def _relay(self, query: Query, message: bytes, transport: Transport, send: Callable[[bytes], None]) -> None:
        reply = await ask_upstreams(self._upstreams, query, message, transport, self.limits)
        if reply is None:
            send(failure(query, transport, RCode.SERVFAIL))
        else:
            send(wire.fit_reply(reply, query, query.limit(transport)))

    def accept(self, connection: _TcpConnection) -> bool:
        if self._tcp is None or len(self._connections) >= self.limits.tcp_connections:
            return False
        self._connections.add(connection)
        return True

    def forget(self, connection: _TcpConnection) -> None:
        self._connections.discard(connection)

    @property
    def inflight(self) -> int:
        return len(self._forwards)

    async def close(self) -> None:
        """Close the sockets and every connection, end the forwards in flight."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.close()
        for connection in list(self._connections):
            connection.close()
        forwards = list(self._forwards)
        for task in forwards:
            task.cancel()
        if forwards:
            await asyncio.wait(forwards)
        if tcp is not None:
            await tcp.wait_closed()
        await asyncio.sleep(0)  # the transports close their sockets on the next turn of the loop


class DnsServers(Component):
    """Every embedded DNS server of the daemon, by namespace path; leaving closes them all."""

    def __init__(self, limits: DnsLimits | None = None) -> None:
        self.limits = limits or DnsLimits()
        self._servers: dict[str, DnsServer] = {}
        self._budget = _Budget(self.limits.inflight_total)
        self._tasks = Tasks("dns")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # the rules stay: a running container's namespace outlives the daemon (live
            # restore), the next daemon's add replaces them, and nft would cost 20 ms each
            for key in list(self._servers):
                await self.remove(key, clear_redirect=False)
        finally:
            await super().__aexit__(kind, exc, tb)

    def __contains__(self, netns: object) -> bool:
        return str(netns) in self._servers

    def get(self, netns: Path | str) -> DnsServer | None:
        return self._servers.get(str(netns))

    async def add(
        self,
        netns: Path | str,
        table: TableSource,
        upstreams: Sequence[Upstream],
        *,
        address: str = LISTEN_ADDRESS,
        redirect: bool = True,
        port: int = 0,
        rules_ready: bool = False,
    ) -> DnsServer:
        """Serve DNS inside `netns` at address:53. The table is asked on every query;
        forwarding happens when it says the container can reach out and there are upstreams.
        With `redirect`, the sockets take `port` (0: random ones) and the nat rule is installed,
        unless `rules_ready` (install_redirect did it for that port)."""
        if rules_ready and not (redirect and port):
            raise Internal("dns: rules_ready needs redirect and the port they were made for")
        key = str(netns)
        if not self._tasks.active:
            raise Internal("dns: the DNS servers are not running")
        if key in self._servers:
            raise Conflict(f"a DNS server already serves {key}")
        server = DnsServer(Path(key), table, upstreams, self.limits, self._tasks, self._budget)
        self._servers[key] = server  # claimed before the await: a second add conflicts
        try:
            udp, tcp = await asyncio.to_thread(open_listeners, Path(key), address, port if redirect else 53)
            await server.start(udp, tcp)
            if redirect:
                server.redirected = True
            if redirect and not rules_ready:
                rules = redirect_rules(address, udp.getsockname()[1], tcp.getsockname()[1])
                await _nft_in(Path(key), rules, f"DNS redirect in {key}")
        except BaseException:
            del self._servers[key]
            await server.close()
            raise
        return server

    async def remove(self, netns: Path | str, *, clear_redirect: bool = True) -> None:
        """Stop serving `netns`; a namespace without a server is fine (idempotent). The
        redirect rule goes too, unless the namespace is about to go (`clear_redirect=False`
        saves the nft run on a container's stop)."""
        server = self._servers.pop(str(netns), None)
        if server is None:
            return
        await server.close()
        if server.redirected and clear_redirect and server.netns.exists():
            try:
                await _nft_in(server.netns, f"delete table ip {REDIRECT_TABLE}", f"DNS redirect in {netns}")
            except Internal as exc:
                log.warning("dns: %s", exc.message)
