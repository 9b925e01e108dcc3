"""rtnetlink messages, pure: requests as bytes, answers parsed into frozen values.

Only what a container network needs: links (bridge, veth with its peer placed in another
namespace, master, up, MAC, MTU), addresses and routes, and the acks and dumps that come
back. Values from linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h and linux/veth.h.
pyroute2 would do this too, but importing it costs the daemon ~150 ms and ~13 MiB.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

# message types
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

# header flags
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

# link attributes
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # linux/if_link.h: the bridge port's hairpin mode, a u8
NLA_F_NESTED = 0x8000
IFF_UP = 0x1

# address and route attributes
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")

Address = IPv4Address | IPv6Address


class NetlinkError(OSError):
    """The kernel refused a request: errno and what was asked."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    raw = _ATTR.pack(_ATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _name(text: str) -> bytes:
    raw = text.encode()
    if not 0 < len(raw) < 16 or b"/" in raw or b"\0" in raw:
        raise ValueError(f"invalid interface name {text!r}")
    return raw + b"\0"


def _mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"invalid MAC address {text!r}")
    return bytes(int(p, 16) for p in parts)


def message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body


def _ifinfo(index: int = 0, *, up: bool | None = None, family: int = socket.AF_UNSPEC) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return _IFINFO.pack(family, 0, index, flags, change)


# ---- requests ---------------------------------------------------------------------------


def new_bridge(seq: int, name: str, *, mac: str = "", mtu: int = 0) -> bytes:
    attrs = attr(IFLA_IFNAME, _name(name)) + attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
    if mac:
        attrs += attr(IFLA_ADDRESS, _mac(mac))
    if mtu:
        attrs += attr(IFLA_MTU, struct.pack("=I", mtu))
    return message(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, _ifinfo() + attrs)


def new_veth(seq: int, name: str, peer: str, *, peer_netns_fd: int, peer_mac: str = "", mtu: int = 0) -> bytes:
    """A veth pair: `name` here, `peer` created directly in the namespace of `peer_netns_fd`."""
    peer_attrs = attr(IFLA_IFNAME, _name(peer)) + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    if peer_mac:
        peer_attrs += attr(IFLA_ADDRESS, _mac(peer_mac))
    if mtu:
        peer_attrs += attr(IFLA_MTU, struct.pack("=I", mtu))
    info = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, _ifinfo() + peer_attrs))
    attrs = attr(IFLA_IFNAME, _name(name)) + attr(IFLA_LINKINFO, info)
    if mtu:
        attrs += attr(IFLA_MTU, struct.pack("=I", mtu))
    return message(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, _ifinfo() + attrs)


def set_link(seq: int, index: int, *, up: bool | None = None, master: int | None = None, alias: str | None = None) -> bytes:
    attrs = attr(IFLA_MASTER, struct.pack("=I", master)) if master is not None else b""
    if alias is not None:  # "" clears it
        attrs += attr(IFLA_IFALIAS, alias.encode())
    return message(RTM_NEWLINK, NLM_F_ACK, seq, _ifinfo(index, up=up) + attrs)


def set_hairpin(seq: int, index: int, on: bool = True) -> bytes:
    """A bridge port's hairpin mode (`bridge link set dev X hairpin on`): frames may leave
    by the port they came in on, so a container reaches its own published port."""
    protinfo = attr(IFLA_PROTINFO | NLA_F_NESTED, attr(IFLA_BRPORT_MODE, struct.pack("=B", 1 if on else 0)))
    return message(RTM_SETLINK, NLM_F_ACK, seq, _ifinfo(index, family=socket.AF_BRIDGE) + protinfo)


def del_link(seq: int, index: int) -> bytes:
    return message(RTM_DELLINK, NLM_F_ACK, seq, _ifinfo(index))


def get_link(seq: int, name: str) -> bytes:
    return message(RTM_GETLINK, 0, seq, _ifinfo() + attr(IFLA_IFNAME, _name(name)))


def dump_links(seq: int) -> bytes:
    return message(RTM_GETLINK, NLM_F_DUMP, seq, _ifinfo())


def _family(addr: Address) -> int:
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def new_address(seq: int, index: int, interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> bytes:
    """`ip addr add`: the address with its prefix, plus the v4 broadcast as `ip ... brd +` sets it."""
    addr = interface.ip
    family = _family(addr)
    body = _IFADDR.pack(family, interface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    body += attr(IFA_LOCAL, addr.packed) + attr(IFA_ADDRESS, addr.packed)
    if addr.version == 4 and interface.network.prefixlen < 31:
        body += attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
    return message(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def dump_addresses(seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    return message(RTM_GETADDR, NLM_F_DUMP, seq, _IFADDR.pack(family, 0, 0, 0, 0))


def new_default_route(seq: int, gateway: Address, index: int) -> bytes:
    """`ip route add default via <gateway> dev <index>`."""
    family = _family(gateway)
    body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
    body += attr(RTA_GATEWAY, gateway.packed) + attr(RTA_OIF, struct.pack("=I", index))
    return message(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)


def dump_routes(seq: int, family: int = socket.AF_INET) -> bytes:
    return message(RTM_GETROUTE, NLM_F_DUMP, seq, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))


# ---- answers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from the kernel: its type, sequence, payload; `error` for an ack (0 = ok)."""

    kind: int
    seq: int
    flags: int
    payload: bytes
    error: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    kind: str
    master: int
    up: bool
    mac: str
    alias: str = ""  # ifalias: a note of ours on the device (a retired bridge)


@dataclass(frozen=True, slots=True)
class AddressInfo:
    index: int
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, slots=True)
class Route:
    """A main-table route: its destination (0.0.0.0/0 for the default) and output interface."""

    destination: ipaddress.IPv4Network | ipaddress.IPv6Network
    index: int


def replies(data: bytes) -> Iterator[Reply]:
    """The messages in one datagram from a netlink socket."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise ValueError("truncated netlink message")
        payload = data[offset + _HEADER.size : offset + length]
        error = struct.unpack_from("=i", payload)[0] if kind == NLMSG_ERROR else 0
        yield Reply(kind, seq, flags, payload, -error if error < 0 else error)
        offset += _align(length)


def attributes(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """rtattrs from `offset` on, by type (the last one of a type wins; we read no lists)."""
    found: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + _ATTR.size : offset + length]  # without NLA_F_NESTED etc.
        offset += _align(length)
    return found


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def parse_link(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(payload)
    found = attributes(payload, _IFINFO.size)
    info = attributes(found.get(IFLA_LINKINFO, b""))
    master = struct.unpack("=I", found[IFLA_MASTER])[0] if IFLA_MASTER in found else 0
    mac = ":".join(f"{b:02x}" for b in found.get(IFLA_ADDRESS, b""))
    return Link(index, _cstring(found.get(IFLA_IFNAME, b"")), _cstring(info.get(IFLA_INFO_KIND, b"")),
                master, bool(flags & IFF_UP), mac, _cstring(found.get(IFLA_IFALIAS, b"")))  # fmt: skip


def parse_address(payload: bytes) -> AddressInfo:
    _family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(payload)
    found = attributes(payload, _IFADDR.size)
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS) or b""
    addr = ipaddress.ip_address(raw)
    return AddressInfo(index, ipaddress.ip_interface((addr, prefixlen)))


def parse_route(payload: bytes) -> Route | None:
    """A unicast route of the main table, else None (local, broadcast, other tables)."""
    family, dst_len, _src, _tos, table, _proto, _scope, kind, _flags = _RTMSG.unpack_from(payload)
    if table != RT_TABLE_MAIN or kind != RTN_UNICAST:
        return None
    found = attributes(payload, _RTMSG.size)
    zero = bytes(4 if family == socket.AF_INET else 16)
    dst = ipaddress.ip_address(found.get(RTA_DST, zero))
    index = struct.unpack("=I", found[RTA_OIF])[0] if RTA_OIF in found else 0
    return Route(ipaddress.ip_network((dst, dst_len), strict=False), index)
