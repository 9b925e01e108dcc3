"""model/ports: the API's port fields parsed with dockerd's rules and words, and rendered in
dockerd's shapes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.ports import (
    ANY_V4,
    ANY_V6,
    BindRequest,
    ExposedPort,
    HostPorts,
    PortMapping,
    Proto,
    Published,
    bind_requests,
    exposed_ports,
    network_settings_ports,
    parse_host_ip,
    parse_host_ports,
    parse_port_key,
    parse_port_spec,
    port_mappings,
    summary_ports,
    validate_port_bindings,
)

C4 = IPv4Address("10.9.0.2")
C6 = IPv6Address("fd00:9::2")


# ---- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "port", "proto"),
    [
        ("80/tcp", 80, Proto.TCP),
        ("80", 80, Proto.TCP),
        ("80/", 80, Proto.TCP),
        ("53/udp", 53, Proto.UDP),
        ("53/UDP", 53, Proto.UDP),
        ("9/sctp", 9, Proto.SCTP),
        ("65535/tcp", 65535, Proto.TCP),
        ("080/tcp", 80, Proto.TCP),
    ],
)
def test_port_keys(key: str, port: int, proto: Proto) -> None:
    assert parse_port_key(key) == ExposedPort(port, proto)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("abc/tcp", 'invalid port specification: "abc"'),
        ("65536/tcp", 'invalid port specification: "65536"'),
        ("70000", 'invalid port specification: "70000"'),
        ("-1/tcp", 'invalid port specification: "-1"'),
        ("+80/tcp", 'invalid port specification: "+80"'),
        ("80-90/tcp", 'invalid port specification: "80-90"'),
        ("0/tcp", 'invalid port specification: "0"'),
        ("", 'invalid port specification: ""'),
        ("/tcp", 'invalid port specification: ""'),
        ("tcp/80", 'invalid port specification: "tcp"'),
        ("80/icmp", "invalid proto: icmp"),
        ("80/xyz", "invalid proto: xyz"),
    ],
)
def test_bad_port_keys(key: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_port_key(key)
    assert err.value.message == message


def test_exposed_ports_sorted_without_duplicates() -> None:
    assert exposed_ports(["443/tcp", "80", "80/tcp", "53/udp"]) == (
        ExposedPort(53, Proto.UDP),
        ExposedPort(80),
        ExposedPort(443),
    )
    assert ExposedPort(53, Proto.UDP).key == "53/udp"


# ---- host side --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ports", "shown"),
    [
        ("", HostPorts(), ""),
        ("0", HostPorts(), ""),
        ("8080", HostPorts(8080, 8080), "8080"),
        ("8000-8010", HostPorts(8000, 8010), "8000-8010"),
        ("8080-8080", HostPorts(8080, 8080), "8080"),
        ("8080/tcp", HostPorts(8080, 8080), "8080"),  # dockerd ignores a proto there
        ("65535", HostPorts(65535, 65535), "65535"),
    ],
)
def test_host_ports(text: str, ports: HostPorts, shown: str) -> None:
    assert parse_host_ports(text) == ports
    assert str(ports) == shown


@pytest.mark.parametrize("text", ["abc", "65536", "80000", "-1", "8010-8000", "0-100", "80-", "-80", "8a"])
def test_bad_host_ports(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_host_ports(text)
    assert err.value.message == f'invalid port specification: "{text}"'


def test_host_port_kinds() -> None:
    assert HostPorts().any and not HostPorts().exact
    assert HostPorts(80, 80).exact and not HostPorts(80, 80).any
    assert not HostPorts(80, 90).exact and not HostPorts(80, 90).any


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("", None),
        ("0.0.0.0", ANY_V4),
        ("::", ANY_V6),
        ("127.0.0.1", IPv4Address("127.0.0.1")),
        ("::1", IPv6Address("::1")),
        ("[::1]", IPv6Address("::1")),
        ("::ffff:192.0.2.7", IPv4Address("192.0.2.7")),
    ],
)
def test_host_ips(text: str, ip: object) -> None:
    assert parse_host_ip(text) == ip


@pytest.mark.parametrize("text", ["localhost", "1.2.3", "300.1.1.1", "fe80::1%eth0", "[::1", "1.2.3.4/24"])
def test_bad_host_ips(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_host_ip(text)
    assert err.value.message == f"invalid IP address: {text}"


def test_validate_port_bindings() -> None:
    validate_port_bindings({"80/tcp": [("", "8080"), ("127.0.0.1", "")], "53/udp": []})
    with pytest.raises(InvalidArgument, match='invalid port specification: "99999"'):
        validate_port_bindings({"80/tcp": [("", "99999")]})
    with pytest.raises(InvalidArgument, match='invalid port specification: "x"'):
        validate_port_bindings({"x/tcp": [("", "80")]})
    with pytest.raises(InvalidArgument, match="invalid IP address: nope"):
        validate_port_bindings({"80/tcp": [("nope", "80")]})


# ---- what is published ----------------------------------------------------------------------


def test_bindings_of_exposed_ports_only() -> None:
    got = port_mappings(["80/tcp"], {"80/tcp": [("", "8080")], "81/tcp": [("", "8081")]})
    assert got == (PortMapping(Proto.TCP, 80, None, HostPorts(8080, 8080)),)


def test_publish_all_takes_unbound_exposed_ports() -> None:
    got = port_mappings(["80/tcp", "53/udp", "443"], {"443/tcp": [("127.0.0.1", "4443")]}, publish_all=True)
    assert got == (
        PortMapping(Proto.TCP, 443, IPv4Address("127.0.0.1"), HostPorts(4443, 4443)),
        PortMapping(Proto.UDP, 53),
        PortMapping(Proto.TCP, 80),
    )


def test_no_publish_all_means_no_random_ports() -> None:
    assert port_mappings(["80/tcp"], {}) == ()
    assert port_mappings(["80/tcp"], {"80/tcp": []}) == ()


def test_dockerd_order() -> None:
    """Exact ports before ranges, then container port, proto, host ports, host address."""
    got = port_mappings(
        ["80/tcp", "80/udp", "22/tcp"],
        {
            "80/tcp": [("::", "8080"), ("0.0.0.0", "8080"), ("", "9000-9010")],
            "80/udp": [("", "8080")],
            "22/tcp": [("", "")],
        },
    )
    assert [(m.container_port, m.proto, str(m.host_ports), str(m.host_ip)) for m in got] == [
        (80, Proto.TCP, "8080", "0.0.0.0"),
        (80, Proto.TCP, "8080", "::"),
        (80, Proto.UDP, "8080", "None"),
        (22, Proto.TCP, "", "None"),
        (80, Proto.TCP, "9000-9010", "None"),
    ]


def test_key_spellings_are_one_port() -> None:
    got = port_mappings(["80"], {"80/tcp": [("", "8080")]})
    assert got == (PortMapping(Proto.TCP, 80, None, HostPorts(8080, 8080)),)


def test_bind_requests_per_family() -> None:
    maps = (
        PortMapping(Proto.TCP, 80, None, HostPorts(8080, 8080)),
        PortMapping(Proto.TCP, 81, IPv4Address("127.0.0.1")),
        PortMapping(Proto.UDP, 53, IPv6Address("::1")),
    )
    assert bind_requests(maps, C4, C6) == (
        BindRequest(Proto.TCP, C4, 80, ANY_V4, HostPorts(8080, 8080)),
        BindRequest(Proto.TCP, C6, 80, ANY_V6, HostPorts(8080, 8080)),
        BindRequest(Proto.TCP, C4, 81, IPv4Address("127.0.0.1")),
        BindRequest(Proto.UDP, C6, 53, IPv6Address("::1")),
    )
    # An IPv4-only endpoint: nothing on ::, nothing for a v6 host address (no proxy).
    assert bind_requests(maps, C4, None) == (
        BindRequest(Proto.TCP, C4, 80, ANY_V4, HostPorts(8080, 8080)),
        BindRequest(Proto.TCP, C4, 81, IPv4Address("127.0.0.1")),
    )
    assert bind_requests(maps, None, None) == ()


def test_bind_requests_with_a_default_host_address() -> None:
    maps = (PortMapping(Proto.TCP, 80), PortMapping(Proto.TCP, 81, ANY_V6))
    lo = IPv4Address("127.0.0.1")
    assert bind_requests(maps, C4, C6, default_host_ip=lo) == (
        BindRequest(Proto.TCP, C4, 80, lo),  # that address only: no implicit ::
        BindRequest(Proto.TCP, C6, 81, ANY_V6),  # an explicit address stays
    )
    v6 = IPv6Address("fd00::7")
    assert bind_requests(maps[:1], C4, C6, default_host_ip=v6) == (BindRequest(Proto.TCP, C6, 80, v6),)
    assert bind_requests(maps[:1], C4, C6, default_host_ip=ANY_V4) == bind_requests(maps[:1], C4, C6)


def test_describe_as_dockerd() -> None:
    req = BindRequest(Proto.TCP, C4, 80, ANY_V4, HostPorts(8080, 8080))
    assert req.describe() == "0.0.0.0:8080:10.9.0.2:80/tcp"
    ranged = BindRequest(Proto.UDP, C6, 53, ANY_V6, HostPorts(8000, 8010))
    assert ranged.describe() == "[::]:8000-8010:[fd00:9::2]:53/udp"
    assert ranged.describe(8003) == "[::]:8003:[fd00:9::2]:53/udp"
    assert BindRequest(Proto.TCP, C4, 80, ANY_V4).describe() == "0.0.0.0:10.9.0.2:80/tcp"


# ---- the CLI's -p syntax --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", (("80/tcp", "", ""),)),
        ("8080:80", (("80/tcp", "", "8080"),)),
        ("8080:80/udp", (("80/udp", "", "8080"),)),
        ("127.0.0.1:8080:80", (("80/tcp", "127.0.0.1", "8080"),)),
        ("127.0.0.1::80", (("80/tcp", "127.0.0.1", ""),)),
        ("[::1]:8080:80", (("80/tcp", "::1", "8080"),)),
        ("::1:8080:80", (("80/tcp", "::1", "8080"),)),
        ("8000-8010:80", (("80/tcp", "", "8000-8010"),)),
        ("8000-8001:80-81", (("80/tcp", "", "8000"), ("81/tcp", "", "8001"))),
        ("80-81", (("80/tcp", "", ""), ("81/tcp", "", ""))),
        ("80/SCTP", (("80/sctp", "", ""),)),
    ],
)
def test_port_specs(spec: str, expected: tuple[tuple[str, str, str], ...]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("8080:99999", "invalid containerPort: 99999"),
        ("99999:80", "invalid hostPort: 99999"),
        ("foo:8080:80", "invalid IP address: foo"),
        ("8080:80/icmp", "invalid proto: icmp"),
        ("90-80", "invalid containerPort: 90-80"),
    ],
)
def test_bad_port_specs(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_port_spec(spec)
    assert err.value.message == message


# ---- rendering ------------------------------------------------------------------------------


def _pub(port: int, proto: Proto, host: str, host_port: int) -> Published:
    ip = ip_address(host)
    return Published(proto, C4 if ip.version == 4 else C6, port, ip, host_port)


def test_network_settings_ports_shape() -> None:
    exposed = exposed_ports(["80/tcp", "443/tcp", "53/udp"])
    published = [_pub(80, Proto.TCP, "0.0.0.0", 8080), _pub(80, Proto.TCP, "::", 8080), _pub(53, Proto.UDP, "127.0.0.1", 5353)]
    assert network_settings_ports(exposed, published) == {
        "443/tcp": None,
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
    }
    assert list(network_settings_ports(exposed, published)) == ["443/tcp", "53/udp", "80/tcp"]  # Go's key order
    assert network_settings_ports((), ()) == {}


def test_summary_ports_shape() -> None:
    exposed = exposed_ports(["80/tcp", "443/tcp"])
    published = [_pub(80, Proto.TCP, "0.0.0.0", 8080), _pub(80, Proto.TCP, "::", 8080)]
    assert summary_ports(exposed, published) == [
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
    ]
    assert summary_ports((), ()) == []
