"""network/rtnl: rtnetlink requests as bytes, answers parsed; values checked against the kernel's headers."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from dockyard.network import rtnl


def _header(raw: bytes) -> tuple[int, int, int, int, int]:
    return struct.unpack_from("=IHHII", raw)  # type: ignore[return-value]


def _attrs_after(raw: bytes, fixed: int) -> dict[int, bytes]:
    return rtnl.attributes(raw, 16 + fixed)


def test_attributes_are_padded_to_four_bytes() -> None:
    assert rtnl.attr(3, b"ab\0") == struct.pack("=HH", 7, 3) + b"ab\0" + b"\0"
    assert rtnl.attr(3, b"abcd") == struct.pack("=HH", 8, 3) + b"abcd"


def test_a_bridge_request() -> None:
    raw = rtnl.new_bridge(7, "dy0", mac="02:42:ac:11:00:01", mtu=1400)
    length, kind, flags, seq, pid = _header(raw)
    assert (length, kind, seq, pid) == (len(raw), rtnl.RTM_NEWLINK, 7, 0)
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL
    found = _attrs_after(raw, 16)
    assert found[rtnl.IFLA_IFNAME] == b"dy0\0"
    assert rtnl.attributes(found[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_KIND] == b"bridge"
    assert found[rtnl.IFLA_ADDRESS] == bytes.fromhex("0242ac110001")
    assert struct.unpack("=I", found[rtnl.IFLA_MTU]) == (1400,)


def test_a_veth_puts_its_peer_in_another_namespace() -> None:
    raw = rtnl.new_veth(1, "vethabc", "eth0", peer_netns_fd=9, peer_mac="02:42:0a:00:00:02")
    info = rtnl.attributes(_attrs_after(raw, 16)[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth"
    peer = rtnl.attributes(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    peer_attrs = rtnl.attributes(peer, 16)  # after the peer's own ifinfomsg
    assert peer_attrs[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", peer_attrs[rtnl.IFLA_NET_NS_FD]) == (9,)
    assert peer_attrs[rtnl.IFLA_ADDRESS] == bytes.fromhex("02420a000002")


@pytest.mark.parametrize("name", ["", "x" * 16, "a/b", "a\0b"])
def test_bad_interface_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid interface name"):
        rtnl.new_bridge(1, name)


def test_set_link_up_and_master() -> None:
    raw = rtnl.set_link(3, 12, up=True, master=4)
    _family, _kind, index, flags, change = struct.unpack_from("=BxHiII", raw, 16)
    assert (index, flags, change) == (12, rtnl.IFF_UP, rtnl.IFF_UP)
    assert struct.unpack("=I", _attrs_after(raw, 16)[rtnl.IFLA_MASTER]) == (4,)
    _, _, _, down_flags, down_change = struct.unpack_from("=BxHiII", rtnl.set_link(3, 12, up=False), 16)
    assert (down_flags, down_change) == (0, rtnl.IFF_UP)


def test_an_address_with_its_broadcast() -> None:
    raw = rtnl.new_address(1, 5, ipaddress.ip_interface("10.1.2.3/24"))
    family, prefixlen, _flags, _scope, index = struct.unpack_from("=BBBBI", raw, 16)
    assert (family, prefixlen, index) == (socket.AF_INET, 24, 5)
    found = _attrs_after(raw, 8)
    assert found[rtnl.IFA_LOCAL] == found[rtnl.IFA_ADDRESS] == bytes([10, 1, 2, 3])
    assert found[rtnl.IFA_BROADCAST] == bytes([10, 1, 2, 255])
    v6 = _attrs_after(rtnl.new_address(1, 5, ipaddress.ip_interface("fd00::2/64")), 8)
    assert rtnl.IFA_BROADCAST not in v6


def test_a_default_route() -> None:
    raw = rtnl.new_default_route(1, ipaddress.ip_address("10.1.2.1"), 5)
    fields = struct.unpack_from("=BBBBBBBBI", raw, 16)
    assert fields[0] == socket.AF_INET and fields[1] == 0 and fields[4] == rtnl.RT_TABLE_MAIN
    found = _attrs_after(raw, 12)
    assert found[rtnl.RTA_GATEWAY] == bytes([10, 1, 2, 1])
    assert struct.unpack("=I", found[rtnl.RTA_OIF]) == (5,)


def test_replies_acks_errors_and_truncation() -> None:
    ack = struct.pack("=IHHII", 36, rtnl.NLMSG_ERROR, 0, 4, 0) + struct.pack("=i", 0) + bytes(16)
    refusal = struct.pack("=IHHII", 36, rtnl.NLMSG_ERROR, 0, 5, 0) + struct.pack("=i", -17) + bytes(16)
    done = struct.pack("=IHHII", 20, rtnl.NLMSG_DONE, rtnl.NLM_F_MULTI, 6, 0) + bytes(4)
    got = list(rtnl.replies(ack + refusal + done))
    assert [(r.kind, r.seq, r.error) for r in got] == [(2, 4, 0), (2, 5, 17), (3, 6, 0)]
    with pytest.raises(ValueError, match="truncated"):
        list(rtnl.replies(ack[:30]))


def test_parse_link_address_and_route() -> None:
    link = struct.pack("=BxHiII", 0, 1, 7, rtnl.IFF_UP, 0) + rtnl.attr(rtnl.IFLA_IFNAME, b"br0\0") \
        + rtnl.attr(rtnl.IFLA_MASTER, struct.pack("=I", 3)) + rtnl.attr(rtnl.IFLA_ADDRESS, bytes.fromhex("0242ac110001")) \
        + rtnl.attr(rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"bridge"))
    assert rtnl.parse_link(link) == rtnl.Link(7, "br0", "bridge", 3, True, "02:42:ac:11:00:01")
    addr = struct.pack("=BBBBI", socket.AF_INET, 16, 0, 0, 7) + rtnl.attr(rtnl.IFA_LOCAL, bytes([172, 30, 0, 1]))
    assert rtnl.parse_address(addr) == rtnl.AddressInfo(7, ipaddress.ip_interface("172.30.0.1/16"))
    route = struct.pack("=BBBBBBBBI", socket.AF_INET, 24, 0, 0, rtnl.RT_TABLE_MAIN, 2, 253, rtnl.RTN_UNICAST, 0) \
        + rtnl.attr(rtnl.RTA_DST, bytes([10, 9, 8, 0])) + rtnl.attr(rtnl.RTA_OIF, struct.pack("=I", 7))
    assert rtnl.parse_route(route) == rtnl.Route(ipaddress.ip_network("10.9.8.0/24"), 7)
    local = struct.pack("=BBBBBBBBI", socket.AF_INET, 32, 0, 0, 255, 2, 254, 2, 0)
    assert rtnl.parse_route(local) is None


def test_hairpin_is_a_nested_protinfo_on_an_af_bridge_setlink() -> None:
    raw = rtnl.set_hairpin(5, 33)
    _length, kind, flags, seq, _pid = _header(raw)
    assert (kind, seq) == (rtnl.RTM_SETLINK, 5) and flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
    family, _kind, index, _flags, change = struct.unpack_from("=BxHiII", raw, 16)
    assert (family, index, change) == (socket.AF_BRIDGE, 33, 0)
    assert struct.unpack_from("=HH", raw, 32) == (12, rtnl.IFLA_PROTINFO | rtnl.NLA_F_NESTED)
    found = _attrs_after(raw, 16)  # the parser reads the type without its flag bits
    assert rtnl.attributes(found[rtnl.IFLA_PROTINFO])[rtnl.IFLA_BRPORT_MODE] == b"\x01"
    off = _attrs_after(rtnl.set_hairpin(5, 33, on=False), 16)[rtnl.IFLA_PROTINFO]
    assert rtnl.attributes(off)[rtnl.IFLA_BRPORT_MODE] == b"\x00"
