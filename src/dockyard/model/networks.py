"""Networks: what a user asked for (NetworkSpec) and the record the daemon keeps (Network).

The three predefined networks of dockerd exist here too: `bridge` (the default bridge,
unless the daemon runs with `--bridge none`), `host` and `none`. They can be neither
created nor removed by a user.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockyard.errors import Conflict, Forbidden, InvalidArgument, NotFound
from dockyard.model import times
from dockyard.model.filters import Filters, parse_time_filter
from dockyard.model.ipam import AddressPool, Net, SubnetPlan

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE = "bridge"

# Options dockerd reads from a bridge network's driver options (and shows in inspect).
OPT_BRIDGE_NAME = "com.docker.network.bridge.name"
OPT_ENABLE_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
OPT_DEFAULT_BRIDGE = "com.docker.network.bridge.default_bridge"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_ENABLE_IPV4 = "com.docker.network.enable_ipv4"
OPT_ENABLE_IPV6 = "com.docker.network.enable_ipv6"


class Driver(enum.StrEnum):
    BRIDGE = "bridge"
    HOST = "host"
    NULL = "null"


def is_predefined(name: str) -> bool:
    """dockerd's IsPredefined: the three networks, and the `default` network mode."""
    return name in PREDEFINED or name == "default"


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """A network as created: the user's intent plus what create decided (subnets, device)."""

    name: str
    driver: Driver = Driver.BRIDGE
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    ipam_driver: str = "default"
    ipam_options: Mapping[str, str] | None = None  # None: not given (dockerd shows null), {} given empty
    subnets: tuple[SubnetPlan, ...] = ()  # gateway set: each one has its address
    bridge: str = ""  # the bridge device ("" for host and null)
    icc: bool = True
    masquerade: bool = True
    mtu: int = 0  # 0: the kernel's default (1500)


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    created: str  # RFC 3339 with nanoseconds, as inspect shows it
    spec: NetworkSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def predefined(self) -> bool:
        return is_predefined(self.spec.name)

    def subnets_of(self, version: int) -> tuple[Net, ...]:
        return tuple(s.subnet for s in self.spec.subnets if s.subnet.version == version)


def check_creatable(name: str, existing: Iterable[Network]) -> None:
    """A new network's name: not empty, not predefined, not taken (API >= 1.44 always checks)."""
    if not name:
        raise InvalidArgument("invalid name: name is empty")
    if is_predefined(name):
        raise Forbidden(f"operation is not permitted on predefined {name} network ")
    if any(n.name == name for n in existing):
        raise Conflict(f"network with name {name} already exists")


def find(term: str, networks: Iterable[Network]) -> Network:
    """dockerd's FindNetwork: a full id, then a full name, then an id prefix, unambiguous."""
    by_name: list[Network] = []
    by_prefix: list[Network] = []
    for n in networks:
        if n.id == term:
            return n
        if n.name == term:
            by_name.append(n)
        if term and n.id.startswith(term):
            by_prefix.append(n)
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise InvalidArgument(f"network {term} is ambiguous ({len(by_name)} matches found on name)")
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise InvalidArgument(f"network {term} is ambiguous ({len(by_prefix)} matches found based on ID prefix)")
    raise NotFound(f"network {term} not found")


LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")


def select(networks: Iterable[Network], filters: Filters, in_use: frozenset[str]) -> list[Network]:
    """`GET /networks?filters=`: dockerd's FilterNetworks. `in_use` holds the ids of networks
    with endpoints (for `dangling`)."""
    filters.validate(LIST_FILTERS)
    dangling = _dangling(filters)
    types = filters.values("type")
    for kind in sorted(types):
        if kind not in ("builtin", "custom"):
            raise InvalidArgument(f"invalid filter: 'type'='{kind}'")
    chosen = []
    for n in networks:
        if not (filters.match_exact("driver", n.spec.driver) and filters.match_regex("name", n.name)
                and filters.match_regex("id", n.id) and filters.match_labels(n.spec.labels)
                and filters.match_exact("scope", "local")):  # fmt: skip
            continue
        if dangling is not None and dangling == (n.predefined or n.id in in_use):
            continue
        if types and ("builtin" if n.predefined else "custom") not in types:
            continue
        chosen.append(n)
    return chosen


def _dangling(filters: Filters) -> bool | None:
    values = filters.values("dangling")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgument('got more than one value for filter key "dangling"')
    (value,) = values
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise InvalidArgument('invalid value for filter \'dangling\', must be "true" (or "1"), or "false" (or "0")')


def prunable(networks: Iterable[Network], filters: Filters, in_use: frozenset[str], now_ns: int) -> list[Network]:
    """`POST /networks/prune`: unused user networks older than `until`, with the labels asked."""
    filters.validate(PRUNE_FILTERS)
    until = min((parse_time_filter(v, now_ns) for v in filters.values("until")), default=None)
    chosen = []
    for n in networks:
        if n.predefined or n.id in in_use:
            continue
        if until is not None and times.parse_ns(n.created) >= until:
            continue
        if not filters.match_labels(n.spec.labels, "label"):
            continue
        if filters.has("label!") and _any_label(n.spec.labels, filters.values("label!")):
            continue
        chosen.append(n)
    return chosen


def _any_label(labels: Mapping[str, str], wanted: frozenset[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key in labels and (not sep or labels[key] == value):
            return True
    return False


def parse_bool_option(options: Mapping[str, str], key: str, default: bool) -> bool:
    """A bridge driver option holding a Go bool (strconv.ParseBool)."""
    raw = options.get(key)
    if raw is None:
        return default
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidArgument(f"driver-opt {key!r} is not a valid bool")


def parse_mtu(options: Mapping[str, str]) -> int:
    raw = options.get(OPT_MTU)
    if raw is None or raw == "":
        return 0
    try:
        mtu = int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid MTU number: {raw}") from None
    if mtu < 68 or mtu > 65535:
        raise InvalidArgument(f"invalid MTU number: {mtu}")
    return mtu


DEFAULT_BRIDGE_DEVICE = "dockyard0"


@dataclass(frozen=True, slots=True)
class NetworkDefaults:
    """The daemon's network settings (dockerd's flags and daemon.json keys of the same names).

    `bridge`: the default bridge's device, "none" for no default bridge; `bip`: its address
    with prefix ("" = the first free subnet of `default_bridge_pools`, gateway .1);
    `fixed_cidr`: the part of it containers get addresses from. dockerd's docker0 sits on
    172.17.0.0/16 unless told otherwise: dockyard's default bridge and pools keep clear of it,
    so both daemons run on one host.
    """

    bridge: str = DEFAULT_BRIDGE_DEVICE
    bip: str = ""
    fixed_cidr: str = ""
    mtu: int = 0
    icc: bool = True
    ip_masq: bool = True
    iptables: bool = True  # dockerd's name: False is no firewall at all (no tables, no sysctls)
    firewall_table: str = "dockyard"  # the nftables tables (inet and bridge) of this daemon
    host_binding_ipv4: str = "0.0.0.0"  # `--ip`: the host address of a -p without one, on every bridge network
    address_pools: tuple[AddressPool, ...] = ()  # () = DEFAULT_POOLS
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()

    @property
    def pools(self) -> tuple[AddressPool, ...]:
        return self.address_pools or DEFAULT_POOLS


DEFAULT_BRIDGE_POOLS = (AddressPool(ipaddress.ip_network("10.213.0.0/16"), 16),
                        AddressPool(ipaddress.ip_network("10.214.0.0/15"), 16))  # fmt: skip
# dockerd's local pools without 172.17.0.0/16, the one its docker0 takes.
DEFAULT_POOLS = (
    AddressPool(ipaddress.ip_network("172.18.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.19.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.20.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.24.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.28.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("192.168.0.0/16"), 20),
)
