"""Engine events as dockerd emits them, and the `GET /events` selection: filters and time window.

Everything here is pure. The rules follow moby's daemon/events/filter.go and the events route
(daemon/server/router/system); where dockyard differs from dockerd the docstring says so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from dockyard.errors import InvalidArgument
from dockyard.model.containers import Container
from dockyard.model.filters import Filters
from dockyard.model.references import parse_reference


class EventType(enum.StrEnum):
    BUILDER = "builder"
    CONFIG = "config"
    CONTAINER = "container"
    DAEMON = "daemon"
    IMAGE = "image"
    NETWORK = "network"
    NODE = "node"
    PLUGIN = "plugin"
    SECRET = "secret"
    SERVICE = "service"
    VOLUME = "volume"


class Action(enum.StrEnum):
    """dockerd's event actions (moby api/types/events). exec_create, exec_start and
    health_status are prefixes: the action written is e.g. `exec_create: sh -c true`."""

    CREATE = "create"
    START = "start"
    RESTART = "restart"
    STOP = "stop"
    CHECKPOINT = "checkpoint"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    ATTACH = "attach"
    DETACH = "detach"
    RESIZE = "resize"
    UPDATE = "update"
    RENAME = "rename"
    KILL = "kill"
    DIE = "die"
    OOM = "oom"
    DESTROY = "destroy"
    REMOVE = "remove"
    COMMIT = "commit"
    TOP = "top"
    COPY = "copy"
    ARCHIVE_PATH = "archive-path"
    EXTRACT_TO_DIR = "extract-to-dir"
    EXPORT = "export"
    IMPORT = "import"
    SAVE = "save"
    LOAD = "load"
    TAG = "tag"
    UNTAG = "untag"
    PUSH = "push"
    PULL = "pull"
    PRUNE = "prune"
    DELETE = "delete"
    ENABLE = "enable"
    DISABLE = "disable"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    RELOAD = "reload"
    MOUNT = "mount"
    UNMOUNT = "unmount"
    EXEC_CREATE = "exec_create"
    EXEC_START = "exec_start"
    EXEC_DIE = "exec_die"
    EXEC_DETACH = "exec_detach"
    HEALTH_STATUS = "health_status"


LOCAL_SCOPE = "local"


def _frozen(attributes: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(attributes))


@dataclass(frozen=True)
class Event:
    """One published event. `seq` orders events as they were published (time can step back)."""

    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    time_nano: int = 0
    scope: str = LOCAL_SCOPE
    seq: int = 0

    @staticmethod
    def of(
        type_: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str] | None,
        time_nano: int,
        seq: int = 0,
        scope: str = LOCAL_SCOPE,
    ) -> Event:
        return Event(str(type_), str(action), actor_id, _frozen(attributes or {}), time_nano, scope, seq)

    def legacy_fields(self) -> dict[str, str]:
        """The deprecated top-level `status`/`id`/`from` dockerd (API < 1.52) adds for
        container and image events; empty values are left out (Go's omitempty)."""
        if self.type not in (EventType.CONTAINER, EventType.IMAGE):
            return {}
        fields = {"status": self.action, "id": self.actor_id}
        if self.type == EventType.CONTAINER:
            fields["from"] = self.attributes.get("image", "")
        return {k: v for k, v in fields.items() if v}


# ---- actions and attributes as dockerd writes them -------------------------------------------


def exec_action(prefix: Action, entrypoint: str, args: Sequence[str]) -> str:
    """`exec_create: <entrypoint> <args...>` (dockerd joins with one space, even with no args)."""
    return f"{prefix}: {entrypoint} {' '.join(args)}"


def health_action(status: str) -> str:
    """`health_status: healthy` (or starting/unhealthy)."""
    return f"{Action.HEALTH_STATUS}: {status}"


def container_attributes(
    labels: Mapping[str, str], image: str, name: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A container event's attributes in dockerd's precedence: the extras (exitCode, signal,
    execID...), overwritten by the labels, then `image` (as the user named it) and `name`."""
    attributes = dict(extra or {})
    attributes.update(labels)
    if image:
        attributes["image"] = image
    attributes["name"] = name.lstrip("/")
    return attributes


def attributes_of(c: Container, **extra: str) -> dict[str, str]:
    """The attributes of an event about container `c`."""
    return container_attributes(c.spec.labels, c.spec.image, c.name, extra)


# ---- filters ---------------------------------------------------------------------------------

EVENT_FILTER_KEYS = (
    "config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
    "scope", "secret", "service", "type", "volume",
)  # fmt: skip
# Keys matched against the actor's id or name by prefix, whatever the event's type (dockerd).
_NAMED = ("config", "container", "daemon", "network", "node", "plugin", "secret", "service", "volume")
# An `event` filter holding one of these switches every `event` value to prefix matching (#25798).
_PREFIX_ACTIONS = frozenset({"health_status", "exec_create", "exec_start"})


def _exact(wanted: frozenset[str], value: str) -> bool:
    return not wanted or value in wanted


def _fuzzy(wanted: frozenset[str], value: str) -> bool:
    return not wanted or any(value.startswith(w) for w in wanted)


def _familiar_name(image: str) -> str:
    """dockerd's stripTag: the repository without tag or digest, or the text as it is."""
    try:
        return parse_reference(image).familiar_name
    except InvalidArgument:
        return image


@dataclass(frozen=True)
class EventFilter:
    """A validated `filters=` of GET /events; `matches` is dockerd's Filter.Include.

    Unlike dockerd (which ignores keys it does not know), an unknown key is refused with
    400 `invalid filter 'x'`, so a typo does not silently select every event.
    """

    filters: Filters = field(default_factory=Filters)

    @staticmethod
    def parse(filters: Filters) -> EventFilter:
        filters.validate(EVENT_FILTER_KEYS)
        return EventFilter(filters)

    def matches(self, event: Event) -> bool:
        f = self.filters
        if not f:
            return True
        actions = f.values("event")
        if actions & _PREFIX_ACTIONS:
            if not _fuzzy(actions, event.action):
                return False
        elif not _exact(actions, event.action):
            return False
        if not _exact(f.values("type"), event.type) or not _exact(f.values("scope"), event.scope):
            return False
        name = event.attributes.get("name", "")
        for key in _NAMED:
            wanted = f.values(key)
            if wanted and not (_fuzzy(wanted, event.actor_id) or _fuzzy(wanted, name)):
                return False
        images = f.values("image")
        if images and not self._matches_image(images, event):
            return False
        return f.match_labels(event.attributes)

    @staticmethod
    def _matches_image(wanted: frozenset[str], event: Event) -> bool:
        """Image events by id or name; container events by the image they were created from;
        both also by the name without its tag (`busybox` selects `busybox:latest`)."""
        image = event.attributes.get("name" if event.type == EventType.IMAGE else "image", "")
        candidates = (event.actor_id, image)
        if any(c in wanted for c in candidates):
            return True
        return any(_familiar_name(c) in wanted for c in candidates if c)


# ---- since / until ---------------------------------------------------------------------------

_SECONDS = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT64_MAX = 2**63 - 1
_MAX_FRACTION_DIGITS = 20


def parse_unix_timestamp(value: str) -> int:
    """`<seconds>[.<fraction>]` -> unix nanoseconds, as dockerd's ParseUnixTimestamp.

    The API takes only this form: the CLI turns durations and RFC 3339 times into it itself.
    """
    seconds, _, fraction = value.partition(".")
    if not _SECONDS.fullmatch(seconds):
        raise InvalidArgument(f'invalid timestamp "{value}": invalid seconds "{seconds}": invalid syntax')
    sec = int(seconds)
    if not -_INT64_MAX - 1 <= sec <= _INT64_MAX:
        raise InvalidArgument(f'invalid timestamp "{value}": invalid seconds "{seconds}": value out of range')
    if len(fraction) > _MAX_FRACTION_DIGITS:
        raise InvalidArgument(
            f'invalid timestamp "{value}": invalid nanoseconds: length {len(fraction)} '
            f"exceeds maximum {_MAX_FRACTION_DIGITS}"
        )
    for i, ch in enumerate(fraction):
        if not "0" <= ch <= "9":
            raise InvalidArgument(
                f"invalid timestamp \"{value}\": invalid nanoseconds: invalid character '{ch}' at position {i}"
            )
    return sec * 1_000_000_000 + int((fraction or "0")[:9].ljust(9, "0"))


@dataclass(frozen=True)
class EventWindow:
    """Which events a GET /events answers: the stored ones in [since, until] (replayed when
    either is given), then live ones until `until` (unless it has passed: replay and close).

    As in dockerd, `since` only bounds the replay: live events flow from now on even when
    `since` lies in the future.
    """

    since_ns: int | None = None
    until_ns: int | None = None
    only_past: bool = False

    @property
    def replays(self) -> bool:
        return self.since_ns is not None or self.until_ns is not None

    def admits(self, time_nano: int) -> bool:
        """Inside the replay range."""
        if self.since_ns is not None and time_nano < self.since_ns:
            return False
        return self.until_ns is None or time_nano <= self.until_ns

    def remaining_s(self, now_ns: int) -> float | None:
        """Seconds the live part may still run; None without `until`."""
        if self.until_ns is None:
            return None
        return max(0.0, (self.until_ns - now_ns) / 1e9)


def parse_event_window(since: str, until: str, now_ns: int) -> EventWindow:
    """The `since`/`until` query parameters, with dockerd's errors (400)."""
    try:
        since_ns = parse_unix_timestamp(since) if since else None
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid value for 'since': {exc.message}") from None
    try:
        until_ns = parse_unix_timestamp(until) if until else None
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid value for 'until': {exc.message}") from None
    if until_ns is None:
        return EventWindow(since_ns, None, False)
    if since_ns is not None and until_ns < since_ns:
        raise InvalidArgument(f"`since` time ({since}) cannot be after `until` time ({until})")
    return EventWindow(since_ns, until_ns, until_ns < now_ns)
