"""A rtnetlink socket in one network namespace: blocking calls, each a request and its ack.

A socket keeps the namespace it was made in, so a socket for a container's namespace is
made by a short-lived thread that enters the namespace (setns moves only that thread)
and ends. Callers run these calls in a thread (`asyncio.to_thread`); each takes well
under a millisecond.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from dockyard.network import rtnl
from dockyard.network.rtnl import Address, AddressInfo, Link, NetlinkError, Route

CLONE_NEWNET = 0x40000000
_RECV = 1 << 16

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def socket_in(netns: Path) -> socket.socket:
    """A netlink socket inside the namespace pinned at `netns`."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise NetlinkError(code, f"setns {netns}: {os.strerror(code)}")
            finally:
                os.close(fd)
            made.append(_open_socket())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=work, name="netlink-ns")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


class Netlink:
    """rtnetlink in the daemon's namespace, or in the one pinned at `netns`."""

    def __init__(self, netns: Path | None = None) -> None:
        self._sock = _open_socket() if netns is None else socket_in(netns)
        self._seq = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _call(self, build: Callable[[int], bytes], what: str) -> None:
        """Send one request and wait for its ack; a refusal raises NetlinkError(errno)."""
        seq = self._next()
        self._sock.send(build(seq))
        while True:
            for reply in rtnl.replies(self._sock.recv(_RECV)):
                if reply.seq == seq and reply.kind == rtnl.NLMSG_ERROR:
                    if reply.error:
                        raise NetlinkError(reply.error, f"{what}: {os.strerror(reply.error)}")
                    return

    def _dump(self, build: Callable[[int], bytes]) -> Iterator[rtnl.Reply]:
        seq = self._next()
        self._sock.send(build(seq))
        while True:
            for reply in rtnl.replies(self._sock.recv(_RECV)):
                if reply.seq != seq:
                    continue
                if reply.kind == rtnl.NLMSG_DONE:
                    return
                if reply.kind == rtnl.NLMSG_ERROR:
                    if reply.error:
                        raise NetlinkError(reply.error, os.strerror(reply.error))
                    return
                yield reply

    # ---- links ------------------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        """The link called `name`, or None."""
        seq = self._next()
        self._sock.send(rtnl.get_link(seq, name))
        while True:
            for reply in rtnl.replies(self._sock.recv(_RECV)):
                if reply.seq != seq:
                    continue
                if reply.kind == rtnl.NLMSG_ERROR:
                    if reply.error in (errno.ENODEV, errno.ENOENT):
                        return None
                    raise NetlinkError(reply.error, f"get link {name}: {os.strerror(reply.error)}")
                if reply.kind == rtnl.RTM_NEWLINK:
                    return rtnl.parse_link(reply.payload)

    def links(self) -> list[Link]:
        return [rtnl.parse_link(r.payload) for r in self._dump(rtnl.dump_links) if r.kind == rtnl.RTM_NEWLINK]

    def add_bridge(self, name: str, *, mac: str = "", mtu: int = 0) -> None:
        self._call(lambda seq: rtnl.new_bridge(seq, name, mac=mac, mtu=mtu), f"add bridge {name}")

    def add_veth(self, name: str, peer: str, peer_netns: Path, *, peer_mac: str = "", mtu: int = 0) -> None:
        """`name` here; `peer` made directly in the namespace pinned at `peer_netns`."""
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._call(lambda seq: rtnl.new_veth(seq, name, peer, peer_netns_fd=fd, peer_mac=peer_mac, mtu=mtu),
                       f"add veth {name}")  # fmt: skip
        finally:
            os.close(fd)

    def set_link(self, index: int, *, up: bool | None = None, master: int | None = None, alias: str | None = None) -> None:
        self._call(lambda seq: rtnl.set_link(seq, index, up=up, master=master, alias=alias), f"set link {index}")

    def set_hairpin(self, index: int, on: bool = True) -> None:
        """Hairpin mode on a bridge port (the link must be enslaved already)."""
        self._call(lambda seq: rtnl.set_hairpin(seq, index, on), f"set hairpin on link {index}")

    def delete_link(self, index: int) -> None:
        """Delete a link; one already gone is fine (a veth goes with its peer's namespace)."""
        try:
            self._call(lambda seq: rtnl.del_link(seq, index), f"delete link {index}")
        except NetlinkError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENOENT):
                raise

    # ---- addresses and routes ----------------------------------------------------------

    def add_address(self, index: int, interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
        """Add an address; the same address already there is fine."""
        try:
            self._call(lambda seq: rtnl.new_address(seq, index, interface), f"add address {interface}")
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def addresses(self, family: int = socket.AF_UNSPEC) -> list[AddressInfo]:
        dump = self._dump(lambda seq: rtnl.dump_addresses(seq, family))
        return [rtnl.parse_address(r.payload) for r in dump if r.kind == rtnl.RTM_NEWADDR]

    def add_default_route(self, gateway: Address, index: int) -> None:
        self._call(lambda seq: rtnl.new_default_route(seq, gateway, index), f"add default route via {gateway}")

    def routes(self, family: int = socket.AF_INET) -> list[Route]:
        dump = self._dump(lambda seq: rtnl.dump_routes(seq, family))
        found = (rtnl.parse_route(r.payload) for r in dump if r.kind == rtnl.RTM_NEWROUTE)
        return [r for r in found if r is not None]
