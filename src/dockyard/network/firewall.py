"""NAT, isolation and published ports: nftables tables of our own, replaced whole.

The daemon's firewall is two tables named `plan.table`: `inet T` (NAT, forwarding) and
`bridge T` (icc=false between the ports of one bridge). `render(plan)` is a pure function of a
frozen FirewallPlan; `Firewall.apply` loads its text with one `nft -f -`, which is one kernel
transaction: each table is declared (so that deleting it cannot fail), deleted and rebuilt, so
no packet ever sees half a ruleset and a rule the plan no longer has cannot survive. Nothing
else is touched: not other tables, not iptables' chains. A plan that only adds ports to the
last one applied is loaded as additions instead (render_additions: a container start need
not pay the RCU grace period that any deletion costs), also in one transaction.

What the rules do (dockerd v28.2.2's iptables rules, without its userland proxy, are the
model):
- published ports: DNAT in prerouting (from other hosts and from containers: the host's own
  addresses, `fib daddr type local`) and in output (from the host itself, 127.0.0.1 included;
  that needs route_localnet on the bridge and a masquerade of 127.0.0.0/8 sources leaving
  through it). A port published on 127.0.0.1 is DNATted only in output, and dropped when it
  arrives on any other interface than lo. IPv6 loopback cannot be DNATted to a container, so
  connections to [::1] on a v6 published port are refused at once instead of hanging on the
  reservation socket (portalloc.py);
- hairpin: traffic DNATted back into the bridge it came from (a container reaching its own or
  a neighbour's published port through a host address) is masqueraded, so the reply comes
  back through the host and is un-NATted (without br_netfilter it would not be; with it, the
  bridge port must be in hairpin mode for a container reaching itself: the netlink side);
- outbound: a non-internal bridge's subnet leaving through another interface is masqueraded;
- forward: established/related accepted; nothing crosses an internal bridge's edge;
  DNATted traffic to a published container port accepted; traffic between a bridge's own ports accepted (icc) or dropped (icc=false); any
  other traffic into a bridge dropped: from other hosts (unpublished ports are unreachable)
  and from other bridges (isolation); an internal bridge has no way out;
- prerouting guard: a container address is reached only through its own bridge (no direct
  routing to containers from outside; replies excepted), and 127.0.0.0/8 never arrives from
  a bridge;
- icc=false also in the bridge family, which sees frames between two ports of a bridge
  whether or not br_netfilter hands bridged traffic to the inet hooks (it does on our
  machines: it is built in, bridge-nf-call-iptables=1). This kernel has no conntrack in the
  bridge family to tell DNATted frames apart, so where br_netfilter bridges a container's
  connection to a neighbour's published port (through a host address), icc=false drops it
  too (as dockerd without its proxy does); without br_netfilter that traffic is routed, and
  passes.

Sysctls: `required_sysctls(plan)` lists them; `Firewall.apply` writes them after the rules
are in: net.ipv4.ip_forward (host-wide, as dockerd sets it) when a bridge may route,
net.ipv6.conf.all.forwarding when one has a v6 subnet (note: it stops the host accepting
router advertisements on interfaces with accept_ra=1), and route_localnet per bridge that
has a v4 port published on every address or on loopback. Writing them is left to the
caller's network namespace, as is everything here: tests run it inside a namespace of theirs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from dockyard.errors import Internal
from dockyard.linux.command import run_command
from dockyard.model.ports import Addr, Proto, Published
from dockyard.network.nftables import NftError, open_nftables

log = logging.getLogger(__name__)

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # IFNAMSIZ - 1; nothing nft would need quoted
_LOOPBACK4 = IPv4Network("127.0.0.0/8")
_LOOPBACK6 = IPv6Address("::1")
_NFT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class BridgePlan:
    """A bridge network as the firewall sees it."""

    name: str
    subnet4: IPv4Network | None = None
    gateway4: IPv4Address | None = None
    subnet6: IPv6Network | None = None
    gateway6: IPv6Address | None = None
    internal: bool = False
    icc: bool = True
    masquerade: bool = True

    def __post_init__(self) -> None:
        if not _IFNAME.fullmatch(self.name):
            raise Internal(f"firewall: invalid bridge name {self.name!r}")
        for subnet, gateway in ((self.subnet4, self.gateway4), (self.subnet6, self.gateway6)):
            if gateway is not None and (subnet is None or gateway not in subnet):
                raise Internal(f"firewall: gateway {gateway} of {self.name} is not in its subnet {subnet}")

    def subnets(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(s for s in (self.subnet4, self.subnet6) if s is not None)

    def has(self, ip: Addr) -> bool:
        return any(ip.version == s.version and ip in s for s in self.subnets())


@dataclass(frozen=True, slots=True)
class PortForward:
    """A published port: the host address and port (0.0.0.0 or :: is every address of the
    family) forwarded to a container on `bridge`."""

    bridge: str
    port: Published


@dataclass(frozen=True, slots=True)
class FirewallPlan:
    table: str
    bridges: tuple[BridgePlan, ...] = ()
    forwards: tuple[PortForward, ...] = ()

    def __post_init__(self) -> None:
        if not _TABLE_NAME.fullmatch(self.table):
            raise Internal(f"firewall: invalid table name {self.table!r}")
        names = [b.name for b in self.bridges]
        if len(set(names)) != len(names):
            raise Internal(f"firewall: a bridge is listed twice in {names}")
        by_name = {b.name: b for b in self.bridges}
        for f in self.forwards:
            bridge = by_name.get(f.bridge)
            if bridge is None:
                raise Internal(f"firewall: port forward to unknown bridge {f.bridge}")
            if bridge.internal:
                raise Internal(f"firewall: ports cannot be published on internal bridge {f.bridge}")
            if f.port.host_ip.version != f.port.container_ip.version:
                raise Internal(f"firewall: {f.port.host_ip} cannot be forwarded to {f.port.container_ip}")
            if not bridge.has(f.port.container_ip):
                raise Internal(f"firewall: {f.port.container_ip} is not on {f.bridge}")

    def bridge(self, name: str) -> BridgePlan:
        return next(b for b in self.bridges if b.name == name)


# ---- rendering ------------------------------------------------------------------------------


def _q(name: str) -> str:
    return f'"{name}"'


def _ip(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _is_any(ip: Addr) -> bool:
    return int(ip) == 0


def _is_loopback(ip: Addr) -> bool:
    return ip in _LOOPBACK4 if isinstance(ip, IPv4Address) else ip == _LOOPBACK6


def _target(p: Published) -> str:
    host = f"[{p.container_ip}]" if p.container_ip.version == 6 else str(p.container_ip)
    return f"dnat {_ip(p.container_ip.version)} to {host}:{p.container_port}"


def _dnat(p: Published, hook: str) -> str | None:
    """The DNAT rule of one published port, in prerouting or output; None when that hook
    must not have one (loopback from outside, IPv6 loopback at all)."""
    fam = _ip(p.host_ip.version)
    match = f"{p.proto} dport {p.host_port}"
    if _is_any(p.host_ip):
        nfproto = "ipv4" if p.host_ip.version == 4 else "ipv6"
        head = f"meta nfproto {nfproto} "
        if p.host_ip.version == 6 and hook == "output":
            head += "ip6 daddr != ::1 "
        return f"{head}fib daddr type local {match} {_target(p)}"
    if _is_loopback(p.host_ip) and (hook == "prerouting" or p.host_ip.version == 6):
        return None
    return f"{fam} daddr {p.host_ip} {match} {_target(p)}"


def _needs_route_localnet(p: Published) -> bool:
    return p.host_ip.version == 4 and (_is_any(p.host_ip) or _is_loopback(p.host_ip))


def _chain(name: str, head: str | None, rules: Iterable[str]) -> list[str]:
    return [f"\tchain {name} {{", *([f"\t\t{head}"] if head else []), *(f"\t\t{r}" for r in rules), "\t}"]


def _guard(plan: FirewallPlan) -> list[str]:
    rules = []
    for b in plan.bridges:
        for subnet, gateway in ((b.subnet4, b.gateway4), (b.subnet6, b.gateway6)):
            if subnet is None:
                continue
            fam = _ip(subnet.version)
            but_gateway = f" {fam} daddr != {gateway}" if gateway is not None else ""
            # Replies are let through: a container of a bridge without masquerade may have
            # reached a published port of another bridge.
            rules.append(f"iifname != {_q(b.name)} {fam} daddr {subnet}{but_gateway} ct direction original drop")
        rules.append(f"iifname {_q(b.name)} ip daddr {_LOOPBACK4} drop")
    for f in plan.forwards:
        p = f.port
        if p.host_ip.version == 4 and _is_loopback(p.host_ip):
            rules.append(f'iifname != "lo" ip daddr {p.host_ip} {p.proto} dport {p.host_port} drop')
    return rules


def _nat_postrouting(plan: FirewallPlan) -> list[str]:
    rules = []
    localnet = {f.bridge for f in plan.forwards if _needs_route_localnet(f.port)}
    published = {f.bridge for f in plan.forwards}
    for b in plan.bridges:
        if b.name in localnet:
            rules.append(f"oifname {_q(b.name)} ip saddr {_LOOPBACK4} masquerade")
        if b.name in published:
            for subnet in b.subnets():
                rules.append(f"oifname {_q(b.name)} ct status dnat {_ip(subnet.version)} saddr {subnet} masquerade")
        if b.masquerade and not b.internal:
            for subnet in b.subnets():
                rules.append(f"oifname != {_q(b.name)} {_ip(subnet.version)} saddr {subnet} masquerade")
    return rules


def _filter_output(plan: FirewallPlan) -> list[str]:
    rules = []
    for f in plan.forwards:
        p = f.port
        if p.host_ip.version == 6 and (_is_any(p.host_ip) or _is_loopback(p.host_ip)):
            refuse = "reject with tcp reset" if p.proto is Proto.TCP else "reject"
            rules.append(f"ip6 daddr ::1 {p.proto} dport {p.host_port} {refuse}")
    return rules


def _forward(plan: FirewallPlan) -> list[str]:
    rules = ["ct state established,related accept"]
    for b in plan.bridges:
        if b.internal:  # nothing crosses its edge, not even to a published port
            rules.append(f"iifname {_q(b.name)} oifname != {_q(b.name)} drop")
            rules.append(f"oifname {_q(b.name)} iifname != {_q(b.name)} drop")
    rules.append("jump published")
    for b in plan.bridges:
        rules.append(f"iifname {_q(b.name)} oifname {_q(b.name)} {'accept' if b.icc else 'drop'}")
    for b in plan.bridges:
        rules.append(f"oifname {_q(b.name)} drop")
    for b in plan.bridges:
        if not b.internal:
            rules.append(f"iifname {_q(b.name)} accept")
    return rules


def _published(plan: FirewallPlan) -> list[str]:
    """DNATted traffic to a published container port (after the internal bridges' drops,
    before everything else that drops)."""
    rules = []
    for f in plan.forwards:
        p = f.port
        fam = _ip(p.container_ip.version)
        rules.append(f"ct status dnat oifname {_q(f.bridge)} {fam} daddr {p.container_ip} {p.proto} dport {p.container_port} accept")
    return rules


def _bridge_forward(plan: FirewallPlan) -> list[str]:
    rules: list[str] = []
    for b in plan.bridges:
        if not b.icc:
            rules.extend(f"{_ip(s.version)} daddr {s} drop" for s in b.subnets())
    return rules


# The inet table's chains, in order, with their hooks. nft 1.0 knows the priority name
# "dstnat" only in prerouting: -100 is the same in output. The guard runs after conntrack
# (-200) and before DNAT (-100), so it sees the address a packet was sent to.
_CHAINS = (
    ("guard", "type filter hook prerouting priority mangle; policy accept;"),
    ("nat_prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("nat_output", "type nat hook output priority -100; policy accept;"),
    ("nat_postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ("filter_output", "type filter hook output priority filter; policy accept;"),
    ("published", None),  # a regular chain: forward jumps to it
    ("forward", "type filter hook forward priority filter; policy accept;"),
)


def _chain_rules(plan: FirewallPlan) -> dict[str, list[str]]:
    return {
        "guard": _guard(plan),
        "nat_prerouting": [r for f in plan.forwards if (r := _dnat(f.port, "prerouting"))],
        "nat_output": [r for f in plan.forwards if (r := _dnat(f.port, "output"))],
        "nat_postrouting": _nat_postrouting(plan),
        "filter_output": _filter_output(plan),
        "published": _published(plan),
        "forward": _forward(plan),
    }


def render(plan: FirewallPlan) -> str:
    """The whole `nft -f` script for the plan: both tables dropped and rebuilt."""
    t = plan.table
    lines = [f"table inet {t} {{}}", f"delete table inet {t}", f"table bridge {t} {{}}", f"delete table bridge {t}"]
    lines.append(f"table inet {t} {{")
    rules = _chain_rules(plan)
    for name, head in _CHAINS:
        lines += _chain(name, head, rules[name])
    lines.append("}")
    bridge_rules = _bridge_forward(plan)
    if bridge_rules:
        lines.append(f"table bridge {t} {{")
        lines += _chain("forward", "type filter hook forward priority filter; policy accept;", bridge_rules)
        lines.append("}")
    return "\n".join(lines) + "\n"


def _added(old: list[str], new: list[str]) -> list[str] | None:
    """The rules of `new` that `old` lacks, when `old` is `new` with them left out (in
    order); None otherwise."""
    added, i = [], 0
    for rule in new:
        if i < len(old) and old[i] == rule:
            i += 1
        else:
            added.append(rule)
    return added if i == len(old) else None


def render_additions(old: FirewallPlan, new: FirewallPlan) -> str | None:
    """A script that turns the ruleset of `old` into one equivalent to `new` by adding rules
    only, or None when that cannot be done (bridges changed, a forward went away).

    Deleting anything from nf_tables waits for an RCU grace period (about 12 ms here, see
    bench/firewall_apply.py): a whole-table replacement costs 16-20 ms where adding a
    container's rules costs about 4 ms, nft's own start-up. The rules a forward adds go to
    the ends of chains where their order does not matter: DNATs of distinct host ports,
    drops, disjoint masquerades, and the accepts of the `published` chain (which is why that
    is a chain of its own: in forward their place among the drops matters)."""
    if old.table != new.table or old.bridges != new.bridges or not set(old.forwards) <= set(new.forwards):
        return None
    before, after = _chain_rules(old), _chain_rules(new)
    lines = []
    for name, _ in _CHAINS:
        added = _added(before[name], after[name])
        if added is None:
            return None
        lines += [f"add rule inet {new.table} {name} {r}" for r in added]
    return "".join(f"{line}\n" for line in lines)


def render_removal(table: str) -> str:
    """Both tables gone, whether they exist or not."""
    if not _TABLE_NAME.fullmatch(table):
        raise Internal(f"firewall: invalid table name {table!r}")
    return f"table inet {table} {{}}\ndelete table inet {table}\ntable bridge {table} {{}}\ndelete table bridge {table}\n"


@dataclass(frozen=True, slots=True)
class Sysctl:
    """One setting under /proc/sys, by its path's parts (a bridge name may hold a dot,
    which sysctl(8)'s dotted key could not say)."""

    parts: tuple[str, ...]
    value: str

    @property
    def key(self) -> str:
        return ".".join(self.parts)

    @property
    def path(self) -> Path:
        return Path("/proc/sys", *self.parts)


def required_sysctls(plan: FirewallPlan) -> tuple[Sysctl, ...]:
    """The kernel settings the plan's rules need (none are ever turned off again here)."""
    out = []
    routed = [b for b in plan.bridges if not b.internal]
    if any(b.subnet4 is not None for b in routed):
        out.append(Sysctl(("net", "ipv4", "ip_forward"), "1"))
    if any(b.subnet6 is not None for b in routed):
        out.append(Sysctl(("net", "ipv6", "conf", "all", "forwarding"), "1"))
    for name in sorted({f.bridge for f in plan.forwards if _needs_route_localnet(f.port)}):
        out.append(Sysctl(("net", "ipv4", "conf", name, "route_localnet"), "1"))
    return tuple(out)


# ---- the adapter ----------------------------------------------------------------------------


class Firewall:
    """Loads plans into the kernel with `nft`, in the caller's network namespace. One
    owner calls it, one call at a time (it remembers the plan it applied last)."""

    def __init__(self, table: str, *, nft: str = "nft", timeout: float = _NFT_TIMEOUT) -> None:
        """With the default `nft`, scripts run through libnftables (network/nftables.py) when
        it loads: its netlink socket is made now, in the caller's network namespace."""
        render_removal(table)  # checks the name
        self.table = table
        self._nft = nft
        self._timeout = timeout
        self._applied: FirewallPlan | None = None  # what the kernel holds, as far as we know
        self._library = open_nftables() if nft == "nft" else None

    async def _nft_script(self, script: str, *, check: bool = False) -> None:
        if self._library is not None:
            try:
                await asyncio.to_thread(self._library.run, script, check=check)
            except NftError as exc:
                raise Internal(f"nft -f failed (table {self.table}): {exc.message}") from None
            return
        argv = [self._nft, *(["-c"] if check else []), "-f", "-"]
        done = await run_command(argv, timeout=self._timeout, what="nft", input=script.encode())
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip() or done.stdout.decode(errors="replace").strip()
            raise Internal(f"nft -f failed (table {self.table}): {err}")

    async def check(self, plan: FirewallPlan) -> None:
        """Let the kernel check the plan's script without loading it (`nft -c`)."""
        await self._nft_script(render(self._own(plan)), check=True)

    async def apply(self, plan: FirewallPlan, *, whole: bool = False) -> None:
        """Make the kernel's tables the plan's in one transaction, then set the sysctls
        (first checking they all exist: a missing bridge fails before anything changed).

        When the plan only adds to the one applied last by this object (a container's ports
        published), only the new rules are added (render_additions); otherwise, or with
        `whole`, or when adding fails, both tables are replaced whole."""
        sysctls = required_sysctls(self._own(plan))
        for s in sysctls:
            if not s.path.exists():
                raise Internal(f"setting {s.key}={s.value}: {s.path} does not exist")
        previous, self._applied = self._applied, None
        script = None if whole or previous is None else render_additions(previous, plan)
        if script is not None:
            try:
                if script:
                    await self._nft_script(script)
            except Internal as exc:  # someone changed our tables: start again from nothing
                log.warning("firewall: adding rules failed, replacing the tables whole: %s", exc.message)
                script = None
        if script is None:
            await self._nft_script(render(plan))
        self._applied = plan
        for s in sysctls:
            write_sysctl(s)

    async def remove(self) -> None:
        """Delete our tables; absent ones are fine. Sysctls stay as they are."""
        self._applied = None
        await self._nft_script(render_removal(self.table))

    def _own(self, plan: FirewallPlan) -> FirewallPlan:
        if plan.table != self.table:
            raise Internal(f"firewall: plan for table {plan.table}, this firewall owns {self.table}")
        return plan


def write_sysctl(s: Sysctl) -> None:
    """Set one sysctl when it differs (a /proc write: microseconds, no thread needed)."""
    path = s.path
    try:
        if path.read_text().strip() == s.value:
            return
        path.write_text(s.value + "\n")
    except OSError as exc:
        raise Internal(f"setting {s.key}={s.value}: {exc.strerror or exc}") from exc
    log.info("set %s=%s", s.key, s.value)
