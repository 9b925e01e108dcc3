"""network/portalloc: host ports held by real sockets; a taken port fails with dockerd's
words and leaves nothing held."""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from dockyard.errors import Internal
from dockyard.model.ports import ANY_V4, ANY_V6, BindRequest, HostPorts, Proto
from dockyard.network.portalloc import (
    DEFAULT_RANGE,
    PortAllocated,
    PortAllocator,
    ephemeral_range,
    parse_port_range,
    reserve_exact,
)

LO = IPv4Address("127.0.0.1")
C4 = IPv4Address("10.9.0.2")
C6 = IPv6Address("fd00:9::2")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_run(n: int) -> int:
    """The first of n consecutive ports nobody holds on 127.0.0.1 (TCP and UDP)."""
    for _ in range(50):
        start = free_port()
        if start + n > 65535:
            continue
        if all(_bindable(p, socket.SOCK_STREAM) and _bindable(p, socket.SOCK_DGRAM) for p in range(start, start + n)):
            return start
    raise AssertionError("no run of free ports")


def _bindable(port: int, kind: int, host: str = "127.0.0.1", family: int = socket.AF_INET) -> bool:
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as most servers do
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((host, port))
            if kind == socket.SOCK_STREAM:
                s.listen()
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE
            return False
        return True


def req(port: int | tuple[int, int], proto: Proto = Proto.TCP, host: IPv4Address | IPv6Address = LO, cport: int = 80) -> BindRequest:
    ports = HostPorts(port, port) if isinstance(port, int) else HostPorts(*port)
    return BindRequest(proto, C6 if host.version == 6 else C4, cport, host, ports)


def test_port_range_file(tmp_path: Path) -> None:
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    assert parse_port_range("1 2 3") is None
    assert parse_port_range("60999 32768") is None
    (tmp_path / "range").write_text("40000\t40100\n")
    assert ephemeral_range(tmp_path / "range") == (40000, 40100)
    assert ephemeral_range(tmp_path / "missing") == DEFAULT_RANGE == (49153, 65535)
    (tmp_path / "junk").write_text("junk\n")
    assert ephemeral_range(tmp_path / "junk") == DEFAULT_RANGE
    assert PortAllocator().port_range == ephemeral_range()


def test_exact_ports_are_held_until_released() -> None:
    port = free_run(1)
    alloc = PortAllocator()
    with alloc.reserve([req(port), req(port, Proto.UDP, cport=53)]) as held:
        assert [(p.proto, p.host_ip, p.host_port) for p in held.published] == [(Proto.TCP, LO, port), (Proto.UDP, LO, port)]
        assert not _bindable(port, socket.SOCK_STREAM)  # even with SO_REUSEADDR: we listen
        assert not _bindable(port, socket.SOCK_DGRAM)
    assert _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM)
    held.release()  # twice is fine


def test_port_of_another_program() -> None:
    port = free_run(2)
    other = socket.socket()
    other.bind(("127.0.0.1", port + 1))
    other.listen()
    try:
        alloc = PortAllocator()
        with pytest.raises(PortAllocated) as err:
            alloc.reserve([req(port), req(port + 1, cport=81)])
        assert err.value.message == f"failed to bind host port for 127.0.0.1:{port + 1}:10.9.0.2:81/tcp: address already in use"
        assert _bindable(port, socket.SOCK_STREAM)  # the first one was let go: nothing half-made
        assert alloc.reserve([req(port)]).published[0].host_port == port  # and the table forgot it
    finally:
        other.close()


def test_port_already_ours() -> None:
    port = free_run(1)
    alloc = PortAllocator()
    first = alloc.reserve([req(port)])
    try:
        with pytest.raises(PortAllocated) as err:
            alloc.reserve([req(port, Proto.UDP, cport=53), req(port)])
        assert err.value.message == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
        assert _bindable(port, socket.SOCK_DGRAM)  # the UDP one it took first is released
    finally:
        first.release()


def test_every_address_gets_one_port_for_both_families() -> None:
    start = free_run(20)
    alloc = PortAllocator((start, start + 19))
    with alloc.reserve([BindRequest(Proto.TCP, C4, 80, ANY_V4), BindRequest(Proto.TCP, C6, 80, ANY_V6)]) as held:
        v4, v6 = held.published
        assert (v4.host_ip, v6.host_ip) == (ANY_V4, ANY_V6)
        assert v4.host_port == v6.host_port and start <= v4.host_port < start + 20
        assert not _bindable(v4.host_port, socket.SOCK_STREAM)
        assert not _bindable(v4.host_port, socket.SOCK_STREAM, "::1", socket.AF_INET6)


def test_random_ports_move_on_skip_taken_and_run_out() -> None:
    start = free_run(4)
    alloc = PortAllocator((start, start + 3))
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", start + 1))
    blocker.listen()
    taken = []
    try:
        for _ in range(3):
            taken.append(alloc.reserve([BindRequest(Proto.TCP, C4, 80, LO)]))
        assert [r.published[0].host_port for r in taken] == [start, start + 2, start + 3]
        with pytest.raises(PortAllocated, match="^all ports are allocated$"):
            alloc.reserve([BindRequest(Proto.TCP, C4, 80, LO)])
        taken.pop(0).release()
        again = alloc.reserve([BindRequest(Proto.TCP, C4, 80, LO)])  # wraps to the freed one
        taken.append(again)
        assert again.published[0].host_port == start
    finally:
        blocker.close()
        for r in taken:
            r.release()


def test_host_port_range() -> None:
    start = free_run(3)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", start))
    blocker.listen()
    try:
        alloc = PortAllocator((1, 1))  # the ephemeral range plays no part
        with alloc.reserve([req((start, start + 2))]) as held:
            assert held.published[0].host_port == start + 1
        blocker2 = socket.socket()
        blocker2.bind(("127.0.0.1", start + 1))
        blocker2.listen()
        blocker3 = socket.socket()
        blocker3.bind(("127.0.0.1", start + 2))
        blocker3.listen()
        try:
            with pytest.raises(PortAllocated) as err:
                PortAllocator().reserve([req((start, start + 2))])
            assert f"for 127.0.0.1:{start}-{start + 2}:10.9.0.2:80/tcp: address already in use" in err.value.message
            assert err.value.message.startswith("failed to bind host port ")
        finally:
            blocker2.close()
            blocker3.close()
    finally:
        blocker.close()


def test_reserve_exact_takes_back_known_ports() -> None:
    port = free_run(1)
    alloc = PortAllocator()
    with alloc.reserve([req(port)]) as held:
        known = held.published
    with reserve_exact(PortAllocator(), known) as again:
        assert again.published == known


def test_one_reservation_for_several_containers_keeps_them_apart() -> None:
    start = free_run(4)
    alloc = PortAllocator((start, start + 3))
    other = IPv4Address("10.9.0.3")
    with alloc.reserve([BindRequest(Proto.TCP, C4, 80, LO), BindRequest(Proto.TCP, other, 80, ANY_V4)]) as held:
        a, b = held.published
        assert a.host_port != b.host_port


def test_sctp_where_the_kernel_has_none() -> None:
    """This machine's kernel has no SCTP (CONFIG_IP_SCTP unset): a clear error, nothing held."""
    port = free_run(1)
    alloc = PortAllocator()
    try:
        held = alloc.reserve([req(port), req(port, Proto.SCTP, cport=9)])
    except Internal as exc:
        assert exc.message == f"failed to create socket for 127.0.0.1:{port}:10.9.0.2:9/sctp: Protocol not supported"
        assert _bindable(port, socket.SOCK_STREAM)
    else:  # a kernel with SCTP: both held
        assert [p.proto for p in held.published] == [Proto.TCP, Proto.SCTP]
        held.release()
