"""`GET /containers/json` selection: every `docker ps` filter with dockerd's rules (moby
daemon/list.go), as a pure function of the containers and lookups the caller passes in.

dockerd's rules kept here, some of them surprising:
- newest first; without `all`, only running containers (running, paused, restarting), but
  a `status` filter or a `limit` > 0 lists stopped ones too (an `exited` filter does not);
- `id` selects the container an id prefix names uniquely: an ambiguous prefix selects none;
- `name` is an exact name or a regular expression searched in the name, with and without
  its leading slash;
- `before`/`since` name one container by full id or exact name (else 404 "No such
  container"), and are positions in the list the name/id filters leave: a container those
  filters removed bounds nothing, so `before` then excludes everything;
- `exited=N` selects stopped containers that ran at least once and exited with N;
- `ancestor` selects containers of an image or of any image built on it; an unknown image
  selects nothing (no error);
- `publish`/`expose` match published/private ports (`80`, `80/udp`, `8000-8080/tcp`); a
  publish and an expose filter together select containers matching either.
Where dockerd answers 500 (a bad `publish`/`expose` value) this answers 400 with its words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.containers import ZERO_TIME, Container, ContainerStatus
from dockyard.model.filters import Filters
from dockyard.model.health import status_of
from dockyard.model.mounts import parse_bind

PS_FILTER_KEYS = (
    "ancestor", "before", "exited", "expose", "health", "id", "is-task", "isolation", "label",
    "name", "network", "publish", "since", "status", "volume",
)  # fmt: skip


# The order dockerd lists them in its error messages.
_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
_HEALTHS = ("none", "starting", "healthy", "unhealthy")
# In dockerd a restarting container is still "Running": `docker ps` lists it.
_LISTED_WITHOUT_ALL = frozenset({ContainerStatus.RUNNING, ContainerStatus.PAUSED, ContainerStatus.RESTARTING})
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UINT_RE = re.compile(r"[0-9]+", re.ASCII)
_INT64 = 2**63


@dataclass(frozen=True)
class ListedPort:
    """A port as `docker ps` lists it: the container's port, the host port (0 = not published)."""

    private: int
    public: int = 0
    type: str = "tcp"


@dataclass(frozen=True)
class PortRange:
    proto: str
    start: int
    end: int

    def holds(self, port: int, proto: str) -> bool:
        return proto == self.proto and self.start <= port <= self.end


@dataclass(frozen=True)
class ContainerQuery:
    """Validated filters, ready to select with."""

    filters: Filters
    include_all: bool
    limit: int
    exited: frozenset[int]
    is_task: bool | None
    names: tuple[re.Pattern[str], ...]
    publish: tuple[PortRange, ...]
    expose: tuple[PortRange, ...]


# ---- the default lookups: what the container's spec alone says --------------------------------


def container_health(c: Container) -> str:
    """What the container's own record says: none without a healthcheck."""
    return status_of(c.health, c.spec.healthcheck)


def spec_networks(c: Container) -> Mapping[str, str]:
    """Network name -> network id, from the network mode (ids are not known here)."""
    mode = c.spec.host.network_mode
    if mode in ("", "default", "bridge"):
        return {"bridge": ""}
    if mode.startswith("container:"):
        return {}  # shares another container's stack: dockerd lists no network for it
    return {mode: ""}


def spec_mounts(c: Container) -> tuple[tuple[str, str], ...]:
    """(volume name or bind source, destination) of each bind; --tmpfs is not a mount point."""
    mounts = []
    for bind in c.spec.host.binds:
        try:
            m = parse_bind(bind)
        except InvalidArgument:
            continue  # refused at create; an old row must not break `ps`
        mounts.append((m.source, m.destination))
    return tuple(mounts)


def no_ports(c: Container) -> tuple[ListedPort, ...]:
    return ()


def not_a_task(c: Container) -> bool:
    return False


def image_family(image_id: str, parents: Mapping[str, str]) -> frozenset[str]:
    """`image_id` and every image built on it, from child -> parent ids (for `ancestor`)."""
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent:
            children.setdefault(parent, []).append(child)
    found = {image_id}
    todo = [image_id]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


# ---- parsing ---------------------------------------------------------------------------------


def _go_int(text: str) -> int | None:
    if not _INT_RE.fullmatch(text):
        return None
    return int(text)


def _parse_exited(values: Iterable[str]) -> frozenset[int]:
    codes = set()
    for value in sorted(values):
        code = _go_int(value)
        if code is None:
            raise InvalidArgument(f"invalid filter 'exited={value}': strconv.Atoi: parsing \"{value}\": invalid syntax")
        if not -_INT64 <= code < _INT64:
            raise InvalidArgument(f"invalid filter 'exited={value}': strconv.Atoi: parsing \"{value}\": value out of range")
        codes.add(code)
    return frozenset(codes)


def _check_one_of(key: str, kind: str, allowed: Sequence[str], values: Iterable[str]) -> None:
    for value in sorted(values):
        if value not in allowed:
            raise InvalidArgument(
                f"invalid filter '{key}={value}': invalid value for {kind} ({value}): must be one of {', '.join(allowed)}"
            )


def _parse_bool(filters: Filters, key: str) -> bool | None:
    """dockerd's GetBoolOrDefault: true/1 or false/0, else `invalid filter 'key=[v ...]'`."""
    if not filters.has(key):
        return None
    values = filters.values(key)
    if not values:
        raise InvalidArgument(f"invalid filter '{key}'")
    is_true = bool(values & {"1", "true"})
    if is_true == bool(values & {"0", "false"}):
        raise InvalidArgument(f"invalid filter '{key}=[{' '.join(sorted(values))}]'")
    return is_true


def _parse_port16(text: str) -> int:
    if not _UINT_RE.fullmatch(text):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    port = int(text)
    if port > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return port


def _parse_ports(key: str, values: Iterable[str]) -> tuple[PortRange, ...]:
    """`80`, `80/udp`, `8000-8080[/proto]` (go-connections' SplitProtoPort and ParsePortRange)."""
    ranges = []
    for value in sorted(values):
        if ":" in value:
            raise InvalidArgument(f"filter for '{key}' should not contain ':': {value}")
        parts = value.split("/")
        if not parts[0]:
            proto, port = "", ""
        elif len(parts) == 1 or not parts[1]:
            proto, port = "tcp", parts[0]
        else:
            proto, port = parts[1], parts[0]
        try:
            if not port:
                raise ValueError("empty string specified for ports")
            if "-" in port:
                bounds = port.split("-")
                start, end = _parse_port16(bounds[0]), _parse_port16(bounds[1])
                if end < start:
                    raise ValueError(f"invalid range specified for port: {port}")
            else:
                start = end = _parse_port16(port)
        except ValueError as exc:
            raise InvalidArgument(f"error while looking up for {key} {value}: {exc}") from None
        ranges.append(PortRange(proto, start, end))
    return tuple(ranges)


def _compile_names(values: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for value in sorted(values):
        try:
            patterns.append(re.compile(value))
        except re.error:
            continue  # dockerd skips an invalid expression: it may still match exactly
    return tuple(patterns)


def parse_query(filters: Filters, *, include_all: bool = False, limit: int = -1) -> ContainerQuery:
    """Validate the filters (400 with dockerd's words); `before`/`since` are resolved by select."""
    filters.validate(PS_FILTER_KEYS)
    exited = _parse_exited(filters.values("exited"))
    statuses = filters.values("status")
    _check_one_of("status", "state", _STATES, statuses)
    is_task = _parse_bool(filters, "is-task")
    _check_one_of("health", "health", _HEALTHS, filters.values("health"))
    return ContainerQuery(
        filters=filters,
        include_all=include_all or bool(statuses),
        limit=limit,
        exited=exited,
        is_task=is_task,
        names=_compile_names(filters.values("name")),
        publish=_parse_ports("publish", filters.values("publish")),
        expose=_parse_ports("expose", filters.values("expose")),
    )


# ---- selection -------------------------------------------------------------------------------


def _by_id_or_name(containers: Sequence[Container], value: str) -> str:
    """before=/since=: a full id or an exact name, as dockerd's idOrNameFilter."""
    for c in containers:
        if c.id == value:
            return c.id
    name = value.removeprefix("/")
    for c in containers:
        if c.name == name:
            return c.id
    raise NotFound(f"No such container: {value}")


def _bound(containers: Sequence[Container], filters: Filters, key: str) -> str | None:
    found = None
    for value in sorted(filters.values(key)):
        found = _by_id_or_name(containers, value)  # every value must exist; the last one counts
    return found


def _unique_prefixes(containers: Sequence[Container], prefixes: Iterable[str]) -> frozenset[str]:
    ids = set()
    for prefix in prefixes:
        if not prefix:
            continue
        matches = [c.id for c in containers if c.id.startswith(prefix)]
        if len(matches) == 1:
            ids.add(matches[0])
    return frozenset(ids)


def _name_matches(query: ContainerQuery, name: str) -> bool:
    wanted = query.filters.values("name")
    for candidate in (name, "/" + name):
        if candidate in wanted or any(p.search(candidate) for p in query.names):
            return True
    return False


def _ports_match(query: ContainerQuery, ports: Iterable[ListedPort]) -> bool:
    for port in ports:
        if any(r.holds(port.public, port.type) for r in query.publish):
            return True
        if any(r.holds(port.private, port.type) for r in query.expose):
            return True
    return False


def select(
    containers: Iterable[Container],
    filters: Filters | ContainerQuery,
    *,
    include_all: bool = False,
    limit: int = -1,
    image_ids: Callable[[str], Iterable[str]] = lambda ref: (),
    health_of: Callable[[Container], str] = container_health,
    networks_of: Callable[[Container], Mapping[str, str]] = spec_networks,
    mounts_of: Callable[[Container], Iterable[tuple[str, str]]] = spec_mounts,
    ports_of: Callable[[Container], Iterable[ListedPort]] = no_ports,
    is_task_of: Callable[[Container], bool] = not_a_task,
) -> list[Container]:
    """The containers `docker ps` shows, newest first.

    `image_ids(ref)`: ids of the image `ref` names (name or id) and of every image built on it,
    empty when there is none (see `image_family`). The other lookups default to what the spec
    says; pass the engine's own where it knows more (health, network ids, published ports).
    A ContainerQuery from `parse_query` carries its own include_all and limit.
    """
    query = filters if isinstance(filters, ContainerQuery) else parse_query(filters, include_all=include_all, limit=limit)
    f = query.filters
    everyone = list(containers)
    before = _bound(everyone, f, "before")
    since = _bound(everyone, f, "since")
    ordered = sorted(everyone, key=lambda c: c.created, reverse=True)
    if f.has("id") or f.has("name"):
        ids = _unique_prefixes(everyone, f.values("id")) if f.has("id") else None
        ordered = [
            c for c in ordered
            if (ids is None or c.id in ids) and (not f.has("name") or _name_matches(query, c.name))
        ]  # fmt: skip
    ancestors: frozenset[str] | None = None
    if f.has("ancestor"):
        ancestors = frozenset(i for ref in sorted(f.values("ancestor")) for i in image_ids(ref))
    statuses = f.values("status")
    healths = f.values("health")
    volumes = f.values("volume")
    networks = f.values("network")
    out: list[Container] = []
    for c in ordered:
        if before is not None:
            if c.id == before:
                before = None
            continue
        if since is not None and c.id == since:
            break
        status = c.state.status
        running = status in _LISTED_WITHOUT_ALL
        if not running and not query.include_all and query.limit <= 0:
            continue
        if query.is_task is not None and is_task_of(c) != query.is_task:
            continue
        if not f.match_labels(c.spec.labels):
            continue
        if query.limit > 0 and len(out) == query.limit:
            break
        if query.exited and (
            running or c.state.started_at == ZERO_TIME or c.state.exit_code not in query.exited
        ):
            continue
        if statuses and status.value not in statuses:
            continue
        if healths and str(health_of(c)) not in healths:
            continue
        if volumes:
            mounts = tuple(mounts_of(c))
            if not any(v in volumes or d in volumes for v, d in mounts):
                continue
        if ancestors is not None and c.image_id not in ancestors:
            continue
        if networks:
            attached = networks_of(c)
            if not any(
                n in attached or any(net_id.startswith(n) for net_id in attached.values()) for n in networks
            ):
                continue
        if (query.publish or query.expose) and not _ports_match(query, ports_of(c)):
            continue
        out.append(c)
    return out
