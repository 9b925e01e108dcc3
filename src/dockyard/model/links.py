"""Legacy links (`--link name:alias`) on the default bridge: what dockerd gives the linking
container at each start, an /etc/hosts entry and environment variables per linked one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.model.ports import ExposedPort, Proto


def parse_link(text: str) -> tuple[str, str]:
    """HostConfig.Links entry -> (container name, alias): `name:alias`, `name` (the alias is
    the name), or inspect's own `/name:/parent/alias`, which clients send back."""
    if not text:
        raise InvalidArgument("empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"bad format for links: {text}")
    if len(parts) == 1:
        return text.removeprefix("/"), text.removeprefix("/")
    name, alias = parts
    if name.startswith("/"):
        return name[1:], alias.rsplit("/", 1)[-1]
    if not name or not alias:
        raise InvalidArgument(f"bad format for links: {text}")
    return name, alias


def renamed_links(links: Sequence[str], old: str, new: str) -> tuple[str, ...]:
    """A container's `name:alias` links after the linked container `old` became `new`: dockerd
    links by container, so a link follows a rename (the alias stays)."""
    return tuple(f"{new}:{alias}" if name == old else link for link in links
                 for name, _, alias in (link.partition(":"),))  # fmt: skip


@dataclass(frozen=True, slots=True)
class LinkedContainer:
    """A linked container as the linking one sees it at its start."""

    alias: str
    name: str  # without the leading slash
    hostname: str
    address: str  # its address on the default bridge
    env: tuple[str, ...] = ()
    ports: tuple[ExposedPort, ...] = ()


def hosts_entry(child: LinkedContainer) -> str:
    """An --add-host style `names:address`: the alias, its hostname, and its name unless that
    is the alias (dockerd's order)."""
    names = [child.alias, child.hostname] + ([child.name] if child.alias != child.name else [])
    return f"{' '.join(names)}:{child.address}"


def _env_prefix(alias: str) -> str:
    return alias.upper().replace("-", "_")


def _sorted_ports(ports: Sequence[ExposedPort]) -> list[ExposedPort]:
    # By number; tcp before udp on the same number.
    return sorted(ports, key=lambda p: (p.port, p.proto is not Proto.TCP))


def link_env(parent: str, child: LinkedContainer) -> list[str]:
    """The variables dockerd sets for one link: <ALIAS>_PORT (the lowest port), a
    _START/_END group for each run of consecutive ports, each port's own group, <ALIAS>_NAME
    (/parent/alias) and <ALIAS>_ENV_<VAR> for the child's variables but HOME and PATH."""
    prefix = _env_prefix(child.alias)
    ports = _sorted_ports(child.ports)
    env: list[str] = []
    ip = child.address
    if ports:
        first = ports[0]
        env.append(f"{prefix}_PORT={first.proto}://{ip}:{first.port}")
    i = 0
    while i < len(ports):
        j = i
        while j + 1 < len(ports) and ports[j + 1].port == ports[j].port + 1:
            j += 1
        if j > i:
            p, q = ports[i], ports[j]
            key = f"{prefix}_PORT_{p.port}_{p.proto.upper()}"
            env += [
                f"{key}_START={p.proto}://{ip}:{p.port}",
                f"{key}_ADDR={ip}",
                f"{key}_PROTO={p.proto}",
                f"{key}_PORT_START={p.port}",
                f"{prefix}_PORT_{p.port}_{q.proto.upper()}_END={q.proto}://{ip}:{q.port}",
                f"{prefix}_PORT_{p.port}_{q.proto.upper()}_PORT_END={q.port}",
            ]
            i = j + 1
        else:
            i += 1
    for p in ports:
        key = f"{prefix}_PORT_{p.port}_{p.proto.upper()}"
        env += [f"{key}={p.proto}://{ip}:{p.port}", f"{key}_ADDR={ip}", f"{key}_PORT={p.port}", f"{key}_PROTO={p.proto}"]
    env.append(f"{prefix}_NAME=/{parent}/{child.alias}")
    for item in child.env:
        name, sep, value = item.partition("=")
        if sep and name not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{name}={value}")
    return env


def with_link_env(own: Sequence[str], parent: str, children: Sequence[LinkedContainer]) -> tuple[str, ...]:
    """The container's environment with its links' variables first; its own variables win
    over a link's of the same name (dockerd replaces those)."""
    mine = {item.partition("=")[0] for item in own}
    linked = [item for child in children for item in link_env(parent, child) if item.partition("=")[0] not in mine]
    return (*linked, *own)
