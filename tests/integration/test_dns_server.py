"""network/dns: the embedded DNS server in a real network namespace, asked from inside it.

The upstream is a stub resolver this test starts on 127.0.0.1 (never the host's servers).
Queries are made by a thread that setns()es into the namespace (dnspython), and by busybox
nslookup under nsenter, as a container's tools would.
"""

from __future__ import annotations

import asyncio
import errno
import ctypes
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from dockyard.errors import Conflict, Internal, NotFound
from dockyard.model.dnsview import EndpointRecord, NameTable, NetworkNames, dns_names
from dockyard.network.dns import DnsLimits, DnsServers, install_redirect
from dockyard.network.netns import create_netns, release_netns
from dockyard.network.upstream import Upstream

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


# ---- a stub upstream on 127.0.0.1 ----------------------------------------------------------


@dataclass
class Stub:
    """Answers example.test (A 192.0.2.1), big.test (60 A: TC over plain UDP), fail.test
    (SERVFAIL); never answers slow.test. Logs every question it gets."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    def reply(self, data: bytes, proto: str) -> bytes | None:
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text().lower()
        self.seen.append((proto, name))
        response = dns.message.make_response(query)
        if name == "slow.test.":
            return None
        if name == "fail.test.":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name == "example.test.":
            response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
        elif name == "big.test.":
            response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", *[f"192.0.2.{i}" for i in range(1, 61)]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire = response.to_wire()
        if proto == "udp" and len(wire) > 512 and query.edns < 0:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        return wire


class _StubUdp(asyncio.DatagramProtocol):
    def __init__(self, stub: Stub) -> None:
        self.stub = stub

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        out = self.stub.reply(data, "udp")
        if out is not None:
            self.transport.sendto(out, addr)  # type: ignore[attr-defined]


@asynccontextmanager
async def stub_upstream(host: str = "127.0.0.1") -> AsyncIterator[Stub]:
    stub = Stub()
    loop = asyncio.get_running_loop()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            out = stub.reply(await reader.readexactly(length), "tcp")
            if out is not None:
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        finally:
            writer.close()

    for _ in range(20):  # a free UDP port may be taken for TCP (other tests run beside): another
        udp, _ = await loop.create_datagram_endpoint(lambda: _StubUdp(stub), local_addr=(host, 0))
        stub.port = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(serve, host, stub.port)
            break
        except OSError as exc:
            udp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
    else:
        raise AssertionError("no port free for both UDP and TCP")
    try:
        yield stub
    finally:
        udp.close()
        tcp.close()
        await tcp.wait_closed()


# ---- asking from inside the namespace ------------------------------------------------------


async def in_netns(path: Path, work: Callable[[], T]) -> T:
    """Run `work` in a thread of its own that joined the namespace (and then ends)."""
    results: list[Any] = []

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if _libc.setns(fd, 0x40000000) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    await asyncio.to_thread(thread.join)
    if isinstance(results[0], BaseException):
        raise results[0]
    return results[0]  # type: ignore[no-any-return]


async def ask(path: Path, name: str, rdtype: str = "A", *, tcp: bool = False, edns: bool = False, timeout: float = 3.0) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    if tcp:
        return await in_netns(path, lambda: dns.query.tcp(query, "127.0.0.11", timeout=timeout))
    return await in_netns(path, lambda: dns.query.udp(query, "127.0.0.11", timeout=timeout))


def answers(reply: dns.message.Message) -> list[str]:
    return sorted(str(r) for rrset in reply.answer for r in rrset)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def netns(tmp_path: Path) -> Any:
    path = tmp_path / "ns"
    create_netns(path)
    try:
        yield path
    finally:
        release_netns(path)


class Tables:
    """The engine's side: a live table the test changes."""

    def __init__(self, *, internal: bool = False) -> None:
        self.endpoints = [
            EndpointRecord(dns_names("web", ["frontend"], "3f2a9c1d5e7b" + "0" * 52), (ip_address("172.30.0.2"), ip_address("fd00::2"))),
            EndpointRecord(dns_names("db", [], "9b8a7c6d5e4f" + "1" * 52), (ip_address("172.30.0.3"),)),
        ]
        self.internal = internal
        self.others: tuple[NetworkNames, ...] = ()

    def __call__(self) -> NameTable:
        return NameTable((NetworkNames("app", tuple(self.endpoints), self.internal), *self.others))


@asynccontextmanager
async def serving(netns: Path, table: Callable[[], NameTable], upstreams: list[Upstream], limits: DnsLimits | None = None) -> AsyncIterator[DnsServers]:
    async with DnsServers(limits or DnsLimits(timeout=1.0)) as servers:
        await servers.add(netns, table, upstreams)
        yield servers


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- tests ---------------------------------------------------------------------------------


def test_local_names_over_udp_and_tcp(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]
            assert answers(await ask(netns, "frontend.app", tcp=True)) == ["172.30.0.2"]
            assert answers(await ask(netns, "3f2a9c1d5e7b")) == ["172.30.0.2"]
            assert answers(await ask(netns, "web", "AAAA")) == ["fd00::2"]
            nodata = await ask(netns, "db", "AAAA")
            assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
            ptr = await ask(netns, "3.0.30.172.in-addr.arpa", "PTR", tcp=True)
            assert answers(ptr) == ["db.app."] and ptr.answer[0].ttl == 600
            assert stub.seen == []  # all of it answered here

    run(scenario())


def test_unknown_names_go_to_the_upstream_from_the_daemon_namespace(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            reply = await ask(netns, "example.test")
            assert answers(reply) == ["192.0.2.1"] and reply.answer[0].ttl == 60
            nx = await ask(netns, "nowhere.test", tcp=True)
            assert nx.rcode() == dns.rcode.NXDOMAIN
            txt = await ask(netns, "web", "TXT")  # a type we do not answer: forwarded as dockerd does
            assert txt.rcode() == dns.rcode.NXDOMAIN
            assert ("udp", "example.test.") in stub.seen and ("udp", "web.") in stub.seen

    run(scenario())


def test_truncated_upstream_replies(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            udp = await ask(netns, "big.test")
            assert udp.flags & dns.flags.TC and not udp.answer  # relayed: the client retries over TCP
            tcp = await ask(netns, "big.test", tcp=True)
            assert not tcp.flags & dns.flags.TC and len(answers(tcp)) == 60
            assert stub.seen.count(("tcp", "big.test.")) == 1  # UDP first, TCP on TC
            edns = await ask(netns, "big.test", edns=True)
            assert len(answers(edns)) == 60  # the client's EDNS size went upstream with the query

    run(scenario())


def test_upstreams_in_order_past_silence_refusal_and_servfail(netns: Path) -> None:
    async def scenario() -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))  # bound, never answers: the timeout applies (1 s: a loaded host answers a live stub late)
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        closed.close()  # nobody there: ICMP port unreachable, next server at once
        try:
            async with stub_upstream() as stub:
                upstreams = [
                    Upstream(ip_address("127.0.0.1"), closed_port),
                    Upstream(ip_address("127.0.0.1"), silent.getsockname()[1]),
                    Upstream(ip_address("127.0.0.1"), stub.port),
                ]
                async with serving(netns, Tables(), upstreams, DnsLimits(timeout=1.0)):
                    assert answers(await ask(netns, "example.test")) == ["192.0.2.1"]
                    failing = [Upstream(ip_address("127.0.0.1"), stub.port)] * 2
                async with serving(netns, Tables(), failing, DnsLimits(timeout=1.0)):
                    stub.seen.clear()
                    fail = await ask(netns, "fail.test")
                    assert fail.rcode() == dns.rcode.SERVFAIL
                    assert stub.seen == [("udp", "fail.test.")] * 2  # both asked, then our SERVFAIL
                fourth = [*upstreams[:1]] * 3 + [Upstream(ip_address("127.0.0.1"), stub.port)]
                async with serving(netns, Tables(), fourth, DnsLimits(timeout=1.0)):
                    assert (await ask(netns, "example.test")).rcode() == dns.rcode.SERVFAIL  # 3 at most
        finally:
            silent.close()

    run(scenario())


def test_internal_never_forwards(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(internal=True), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            for tcp in (False, True):
                reply = await ask(netns, "example.test", tcp=tcp)
                assert reply.rcode() == dns.rcode.SERVFAIL and not reply.answer
            assert (await ask(netns, "8.8.8.8.in-addr.arpa", "PTR")).rcode() == dns.rcode.SERVFAIL
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]  # its own names still work
            assert stub.seen == []

    run(scenario())


def test_live_table_changes(netns: Path) -> None:
    async def scenario() -> None:
        tables = Tables(internal=True)
        async with serving(netns, tables, []):
            assert (await ask(netns, "cache")).rcode() == dns.rcode.SERVFAIL
            tables.endpoints.append(EndpointRecord(("cache", "store"), (ip_address("172.30.0.9"),)))
            assert answers(await ask(netns, "store")) == ["172.30.0.9"]  # a container started
            del tables.endpoints[0]
            assert (await ask(netns, "web")).rcode() == dns.rcode.SERVFAIL  # it stopped
            tables.others = (NetworkNames("other"),)
            # connected to a non-internal network, but no upstream: still nothing forwarded
            assert (await ask(netns, "example.test")).rcode() == dns.rcode.SERVFAIL

    run(scenario())


def test_hostile_packets_leave_the_server_answering(netns: Path) -> None:
    def hostile() -> list[bytes | None]:
        out: list[bytes | None] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            two = dns.message.make_query("web", "A")
            two.question.append(two.question[0])
            for packet in [b"", b"\x00", os.urandom(11), b"\xff" * 600, two.to_wire(), b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"]:
                sock.sendto(packet, ("127.0.0.11", 53))
                try:
                    out.append(sock.recv(4096))
                except TimeoutError:
                    out.append(None)
        with socket.create_connection(("127.0.0.11", 53), timeout=1) as conn:
            conn.sendall(b"\x00\x05hello")  # garbage over TCP: the connection is closed
            out.append(conn.recv(100) or None)
        return out

    async def scenario() -> None:
        async with serving(netns, Tables(), []):
            replies = await in_netns(netns, hostile)
            assert replies[:4] == [None, None, None, None]  # no header, or a response: silence
            formerr = dns.message.from_wire(replies[4], question_only=True)  # type: ignore[arg-type]
            assert formerr.rcode() == dns.rcode.FORMERR
            assert dns.message.from_wire(replies[5], question_only=True).rcode() == dns.rcode.FORMERR  # type: ignore[arg-type]
            assert replies[6] is None
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]

    run(scenario())


def test_forwards_in_flight_are_bounded(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub:
            limits = DnsLimits(timeout=2.0, inflight_per_server=2)
            async with serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)], limits) as servers:

                def flood() -> list[int | None]:
                    codes: list[int | None] = []
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                        sock.settimeout(0.5)
                        queries = [dns.message.make_query("slow.test", "A") for _ in range(5)]
                        for query in queries:
                            sock.sendto(query.to_wire(), ("127.0.0.11", 53))
                        for _ in queries:
                            try:
                                codes.append(dns.message.from_wire(sock.recv(4096)).rcode())
                            except TimeoutError:
                                codes.append(None)
                    return codes

                codes = await in_netns(netns, flood)
                assert codes.count(dns.rcode.REFUSED) == 3
                server = servers.get(netns)
                assert server is not None and server.inflight == 2

    run(scenario())


def test_udp_retransmission_is_not_forwarded_twice(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)], DnsLimits(timeout=0.5)):

            def twice() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    data = dns.message.make_query("slow.test", "A").to_wire()
                    sock.sendto(data, ("127.0.0.11", 53))
                    sock.sendto(data, ("127.0.0.11", 53))
                    sock.settimeout(2)
                    assert dns.message.from_wire(sock.recv(4096)).rcode() == dns.rcode.SERVFAIL

            await in_netns(netns, twice)
            assert stub.seen == [("udp", "slow.test.")]

    run(scenario())


def _listening(netns: Path) -> str:
    return subprocess.run(["nsenter", f"--net={netns}", "ss", "-Hlntu"], capture_output=True, text=True, check=True).stdout


def _ruleset(netns: Path) -> str:
    return subprocess.run(["nsenter", f"--net={netns}", "nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout


def test_removal_and_shutdown_leave_no_socket_and_no_rule(netns: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        second = tmp_path / "ns2"
        create_netns(second)
        try:
            async with DnsServers() as servers:
                await servers.add(netns, Tables(), [])
                await servers.add(second, Tables(), [])
                assert "127.0.0.11:" in _listening(netns) and "dockyard_dns" in _ruleset(netns)
                with pytest.raises(Conflict, match="already serves"):
                    await servers.add(netns, Tables(), [])
                client = await in_netns(second, lambda: socket.create_connection(("127.0.0.11", 53), timeout=1))
                await servers.remove(netns)
                await servers.remove(netns)  # idempotent
                assert _listening(netns) == "" and _ruleset(netns) == ""
                assert answers(await ask(second, "web", tcp=True)) == ["172.30.0.2"]
                with pytest.raises(NotFound, match="does not exist"):
                    await servers.add(tmp_path / "missing", Tables(), [])
                assert tmp_path / "missing" not in servers
            assert _listening(second) == ""  # leaving closed the rest
            assert "dockyard_dns" in _ruleset(second)  # its rule stays for the next daemon
            assert client.recv(10) == b""  # and its open connections
            client.close()
        finally:
            release_netns(second)

    run(scenario())


def test_port_53_stays_the_containers(netns: Path) -> None:
    def bind_wildcard_53() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            udp.bind(("0.0.0.0", 53))  # what a DNS server image does
            tcp.bind(("0.0.0.0", 53))
            tcp.listen()
            return "bound"

    async def scenario() -> None:
        async with serving(netns, Tables(), []):
            assert await in_netns(netns, bind_wildcard_53) == "bound"
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]
            assert answers(await ask(netns, "web", tcp=True)) == ["172.30.0.2"]

    run(scenario())


def test_without_redirect_the_server_binds_53_itself(netns: Path) -> None:
    async def scenario() -> None:
        async with DnsServers() as servers:
            await servers.add(netns, Tables(), [], redirect=False)
            assert "127.0.0.11:53 " in _listening(netns) and _ruleset(netns) == ""
            assert answers(await ask(netns, "db")) == ["172.30.0.3"]
            await servers.remove(netns)
            assert _listening(netns) == ""

    run(scenario())


def test_redirect_made_ahead_of_time(netns: Path) -> None:
    async def scenario() -> None:
        await install_redirect(netns, 5300)
        assert "dnat to 127.0.0.11:5300" in _ruleset(netns)
        async with DnsServers() as servers:
            with pytest.raises(Internal, match="rules_ready"):
                await servers.add(netns, Tables(), [], rules_ready=True)
            await servers.add(netns, Tables(), [], port=5300, rules_ready=True)
            assert "127.0.0.11:5300 " in _listening(netns)
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]
            assert answers(await ask(netns, "db", tcp=True)) == ["172.30.0.3"]
            await servers.remove(netns)
            assert _listening(netns) == "" and _ruleset(netns) == ""

    run(scenario())


def test_a_previous_daemons_rule_is_replaced(netns: Path) -> None:
    async def scenario() -> None:
        await install_redirect(netns, 5999)  # left by a daemon killed with -9
        async with DnsServers() as servers:
            await servers.add(netns, Tables(), [])
            rules = _ruleset(netns)
            assert "5999" not in rules and rules.count("table ip dockyard_dns") == 1
            assert answers(await ask(netns, "web")) == ["172.30.0.2"]

    run(scenario())


def test_tcp_connections_are_bounded(netns: Path) -> None:
    def three() -> list[bytes]:
        conns = [socket.create_connection(("127.0.0.11", 53), timeout=2) for _ in range(3)]
        try:
            query = dns.message.make_query("web", "A").to_wire()
            out = []
            for conn in conns:
                try:
                    conn.sendall(struct.pack("!H", len(query)) + query)
                    out.append(conn.recv(4096))
                except OSError:
                    out.append(b"")
            return out
        finally:
            for conn in conns:
                conn.close()

    async def scenario() -> None:
        async with serving(netns, Tables(), [], DnsLimits(tcp_connections=2)):
            replies = await in_netns(netns, three)
            assert [bool(r) for r in replies] == [True, True, False]

    run(scenario())


def test_tcp_pipelined_queries_answer_as_they_complete(netns: Path) -> None:
    def pipeline() -> dict[int, dns.message.Message]:
        queries = [dns.message.make_query(n, "A") for n in ("example.test", "web", "big.test", "nowhere.test", "db")]
        with socket.create_connection(("127.0.0.11", 53), timeout=5) as conn:
            conn.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries)))
            buffer = b""
            replies: dict[int, dns.message.Message] = {}
            while len(replies) < len(queries):
                chunk = conn.recv(65536)
                assert chunk, "connection closed early"
                buffer += chunk
                while len(buffer) >= 2 and len(buffer) >= 2 + struct.unpack("!H", buffer[:2])[0]:
                    length = struct.unpack("!H", buffer[:2])[0]
                    reply = dns.message.from_wire(buffer[2 : 2 + length])
                    replies[reply.id] = reply
                    buffer = buffer[2 + length :]
        return {queries.index(next(q for q in queries if q.id == rid)): r for rid, r in replies.items()}

    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)], DnsLimits(tcp_pipeline=1)):
            replies = await in_netns(netns, pipeline)
            assert answers(replies[0]) == ["192.0.2.1"]
            assert answers(replies[1]) == ["172.30.0.2"]
            assert len(answers(replies[2])) == 60
            assert replies[3].rcode() == dns.rcode.NXDOMAIN
            assert answers(replies[4]) == ["172.30.0.3"]

    run(scenario())


def test_ipv6_upstream(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream("::1") as stub, serving(netns, Tables(), [Upstream(ip_address("::1"), stub.port)]):
            assert answers(await ask(netns, "example.test")) == ["192.0.2.1"]
            assert len(answers(await ask(netns, "big.test", tcp=True))) == 60

    run(scenario())


def test_a_failing_table_source_answers_nothing_and_forwards_nothing(netns: Path) -> None:
    def broken() -> NameTable:
        raise RuntimeError("the engine's snapshot is gone")

    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, broken, [Upstream(ip_address("127.0.0.1"), stub.port)]):
            assert (await ask(netns, "web")).rcode() == dns.rcode.SERVFAIL
            assert (await ask(netns, "example.test")).rcode() == dns.rcode.SERVFAIL
            assert stub.seen == []

    run(scenario())


def test_idle_and_half_sent_tcp_connections_are_closed(netns: Path) -> None:
    def half_sent() -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.11", 53), timeout=5) as conn:
            conn.sendall(b"\x00\x40abc")  # 64 bytes announced, 3 sent
            start = time.monotonic()
            return conn.recv(10), time.monotonic() - start

    async def scenario() -> None:
        async with serving(netns, Tables(), [], DnsLimits(tcp_idle=0.3)):
            data, waited = await in_netns(netns, half_sent)
            assert data == b"" and waited < 3

    run(scenario())


def test_busybox_nslookup_inside_the_namespace(netns: Path) -> None:
    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            result = await asyncio.to_thread(
                subprocess.run,
                ["nsenter", f"--net={netns}", "busybox", "nslookup", "web", "127.0.0.11"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert "172.30.0.2" in result.stdout, result.stdout + result.stderr
            assert "fd00::2" in result.stdout
            result = await asyncio.to_thread(
                subprocess.run,
                ["nsenter", f"--net={netns}", "busybox", "nslookup", "example.test", "127.0.0.11"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert "192.0.2.1" in result.stdout, result.stdout + result.stderr

    run(scenario())


def test_glibc_resolver_through_resolv_conf(netns: Path, tmp_path: Path) -> None:
    """getent (glibc: A and AAAA on one socket at once) with a container's resolv.conf,
    bind-mounted in a private mount namespace so the host's file is untouched."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.11\noptions ndots:0\n")

    def getent(name: str) -> subprocess.CompletedProcess[str]:
        script = f"mount --bind {resolv} /etc/resolv.conf && exec getent ahosts {name}"
        return subprocess.run(["nsenter", f"--net={netns}", "unshare", "-m", "sh", "-c", script], check=False, capture_output=True, text=True, timeout=30)

    async def scenario() -> None:
        async with stub_upstream() as stub, serving(netns, Tables(), [Upstream(ip_address("127.0.0.1"), stub.port)]):
            result = await asyncio.to_thread(getent, "frontend")
            assert "172.30.0.2" in result.stdout and "fd00::2" in result.stdout, result.stderr
            result = await asyncio.to_thread(getent, "example.test")
            assert "192.0.2.1" in result.stdout, result.stderr
            result = await asyncio.to_thread(getent, "nowhere.test")
            assert result.returncode == 2 and result.stdout == ""

    run(scenario())
