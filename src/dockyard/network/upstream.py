"""Asking the upstream servers for what a container's embedded DNS does not know.

From the daemon's own namespace: a stub resolver on the host's 127.0.0.1 works, and an
internal network has no way out through here because the caller never asks (see
model/dnsview). Each server gets a fresh connected UDP socket (a random source port) and a
fresh random id, and a reply counts only if it comes from that server with that id and the
same question; TCP again when the reply is truncated and the client can take the whole of it.
Servers are asked in order, at most three, each for `timeout` seconds (dockerd's
extIOTimeout); silence, an error, SERVFAIL or REFUSED moves on to the next (as dockerd does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from dockyard.model import dnsmessage as wire
from dockyard.model.dnsmessage import Query, RCode, Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Upstream:
    """An external server, asked from the daemon's namespace."""

    address: IPv4Address | IPv6Address
    port: int = 53


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    timeout: float = 4.0  # per upstream server (dockerd's extIOTimeout)
    max_upstreams: int = 3  # dockerd's maxExtDNS


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self, message_id: int, question: wire.Question) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._id = message_id
        self._question = question

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # a stray or spoofed datagram is ignored, the right one may still come
        if not self.reply.done() and wire.reply_matches(data, self._id, self._question):
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():  # ICMP port unreachable: nobody there, next server at once
            self.reply.set_exception(exc)


async def _ask_udp(server: Upstream, message: bytes, message_id: int, question: wire.Question) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if server.address.version == 6 else socket.AF_INET
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _UdpExchange(message_id, question), remote_addr=(str(server.address), server.port), family=family
    )
    try:
        transport.sendto(message)
        return await protocol.reply
    finally:
        transport.close()


async def _ask_tcp(server: Upstream, message: bytes, message_id: int, question: wire.Question) -> bytes:
    reader, writer = await asyncio.open_connection(str(server.address), server.port)
    try:
        writer.write(struct.pack("!H", len(message)) + message)
        await writer.drain()
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = await reader.readexactly(length)
            if wire.reply_matches(reply, message_id, question):
                return reply
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def ask_upstreams(
    upstreams: Sequence[Upstream], query: Query, message: bytes, transport: Transport, limits: UpstreamLimits
) -> bytes | None:
    """The first usable reply of the upstream servers, asked in order, or None."""
    for server in upstreams[: limits.max_upstreams]:
        message_id = secrets.randbelow(0x10000)  # a fresh id for each server: the client's is guessable
        outgoing = wire.with_id(message, message_id)
        try:
            async with asyncio.timeout(limits.timeout):
                reply = await _ask_udp(server, outgoing, message_id, query.question)
                if wire.reply_truncated(reply) and transport is Transport.TCP:
                    reply = await _ask_tcp(server, outgoing, message_id, query.question)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            log.debug("dns: upstream %s:%s failed for %s: %r", server.address, server.port, query.question.text, exc)
            continue
        if wire.reply_rcode(reply) in (RCode.SERVFAIL, RCode.REFUSED):
            continue
        return reply
    return None


def upstreams_for(servers: Sequence[str], host_resolv: str | None = None) -> tuple[Upstream, ...]:
    """The servers a container's embedded DNS forwards to: the ones named (`--dns`, the
    daemon's `dns`), else the host's nameservers (loopback ones too: we ask from the host)."""
    if not servers:
        if host_resolv is None:
            try:
                with open("/etc/resolv.conf") as f:
                    host_resolv = f.read()
            except OSError:
                host_resolv = ""
        servers = [parts[1] for line in host_resolv.splitlines()
                   if len(parts := line.split()) > 1 and parts[0] == "nameserver"]  # fmt: skip
    found = []
    for text in servers:
        try:
            found.append(Upstream(ipaddress.ip_address(text.split("%", 1)[0])))
        except ValueError:
            log.warning("dns: ignoring nameserver %r", text)
    return tuple(found)
