"""model/events: dockerd's event shape, its filter rules, and the since/until window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.events import (
    EVENT_FILTER_KEYS,
    Action,
    Event,
    EventFilter,
    EventWindow,
    container_attributes,
    exec_action,
    health_action,
    parse_event_window,
    parse_unix_timestamp,
)
from dockyard.model.filters import Filters

CID = "4146" + "a" * 60
IMG = "sha256:" + "b" * 64


def ev(type_: str = "container", action: str = "start", actor: str = CID, **attrs: str) -> Event:
    return Event.of(type_, action, actor, attrs, 1_700_000_000_123_456_789, seq=1)


def sel(fields: Mapping[str, Iterable[str]]) -> EventFilter:
    return EventFilter.parse(Filters.of(fields))


CONTAINER = ev(image="busybox", name="web-1", app="x")
IMAGE_TAG = ev("image", "tag", IMG, name="busybox:latest")
NETWORK = ev("network", "connect", "n" * 64, name="bridge", type="bridge", container=CID)
VOLUME = ev("volume", "mount", "data", driver="local", container=CID)
DAEMON = ev("daemon", "reload", "d1d2-uuid", name="host1")
ALL = (CONTAINER, IMAGE_TAG, NETWORK, VOLUME, DAEMON)


def selected(fields: Mapping[str, Iterable[str]], events: Iterable[Event] = ALL) -> list[Event]:
    f = sel(fields)
    return [e for e in events if f.matches(e)]


# ---- the event and its legacy fields -------------------------------------------------------------


def test_event_is_frozen_and_copies_attributes() -> None:
    attrs = {"a": "1"}
    e = Event.of("container", "start", CID, attrs, 5)
    attrs["a"] = "2"
    assert e.attributes == {"a": "1"}
    with pytest.raises(TypeError):
        e.attributes["b"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        e.action = "stop"  # type: ignore[misc]


def test_event_of_takes_enums_as_plain_strings() -> None:
    e = Event.of(Action.DIE, Action.DIE, "x", None, 1)
    assert type(e.type) is str and type(e.action) is str and e.attributes == {}
    assert e.scope == "local"


def test_legacy_fields_of_a_container_event() -> None:
    assert CONTAINER.legacy_fields() == {"status": "start", "id": CID, "from": "busybox"}


def test_legacy_from_is_left_out_without_image() -> None:
    prune = Event.of("container", "prune", "", {"reclaimed": "0"}, 1)
    assert prune.legacy_fields() == {"status": "prune"}


def test_legacy_fields_of_an_image_event_have_no_from() -> None:
    assert IMAGE_TAG.legacy_fields() == {"status": "tag", "id": IMG}


@pytest.mark.parametrize("event", [NETWORK, VOLUME, DAEMON])
def test_no_legacy_fields_for_other_types(event: Event) -> None:
    assert event.legacy_fields() == {}


# ---- actions and attributes ---------------------------------------------------------------------


def test_exec_action_as_dockerd_writes_it() -> None:
    assert exec_action(Action.EXEC_CREATE, "sh", ["-c", "echo hi"]) == "exec_create: sh -c echo hi"
    assert exec_action(Action.EXEC_START, "true", []) == "exec_start: true "


def test_health_action() -> None:
    assert health_action("healthy") == "health_status: healthy"
    assert health_action("unhealthy") == "health_status: unhealthy"


def test_container_attributes_precedence() -> None:
    attrs = container_attributes(
        {"name": "label-name", "exitCode": "label", "l": "v"}, "busybox", "/web", {"exitCode": "3", "x": "y"}
    )
    # Extras first, labels over them, then image and name (dockerd's order).
    assert attrs == {"exitCode": "label", "x": "y", "l": "v", "image": "busybox", "name": "web"}


def test_container_attributes_without_image() -> None:
    assert container_attributes({}, "", "web") == {"name": "web"}


# ---- filters -------------------------------------------------------------------------------------


def test_no_filters_match_everything() -> None:
    assert selected({}) == list(ALL)
    assert EventFilter().matches(CONTAINER)


@pytest.mark.parametrize("key", ["bogus", "label!", "until", "name", "id"])
def test_unknown_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid filter '{key}'$"):
        sel({key: ["x"]})


def test_every_documented_key_is_accepted() -> None:
    for key in EVENT_FILTER_KEYS:
        sel({key: ["x"]})


def test_type_is_exact() -> None:
    assert selected({"type": ["container"]}) == [CONTAINER]
    assert selected({"type": ["image", "network"]}) == [IMAGE_TAG, NETWORK]
    assert selected({"type": ["contain"]}) == []


def test_a_key_with_no_values_does_not_filter() -> None:
    assert selected({"type": []}) == list(ALL)


def test_event_is_exact_by_default() -> None:
    assert selected({"event": ["start"]}) == [CONTAINER]
    assert selected({"event": ["star"]}) == []
    die = ev(action="die", exitCode="0")
    assert selected({"event": ["die", "start"]}, [die, CONTAINER]) == [die, CONTAINER]


@pytest.mark.parametrize("prefix", ["exec_create", "exec_start", "health_status"])
def test_prefix_actions_match_by_prefix(prefix: str) -> None:
    full = ev(action=f"{prefix}: sh -c true")
    assert selected({"event": [prefix]}, [full, CONTAINER]) == [full]
    # The full action still matches itself.
    assert selected({"event": [full.action]}, [full]) == [full]


def test_prefix_mode_applies_to_every_event_value() -> None:
    # dockerd's FuzzyMatch: once one of them is asked for, all values match as prefixes.
    stop = ev(action="stop")
    execd = ev(action="exec_create: ls")
    assert selected({"event": ["exec_create", "st"]}, [stop, execd, CONTAINER]) == [stop, execd, CONTAINER]
    assert selected({"event": ["st"]}, [stop, CONTAINER]) == []


def test_exec_die_is_exact() -> None:
    died = ev(action="exec_die", execID="e1", exitCode="0")
    assert selected({"event": ["exec_die"]}, [died]) == [died]
    assert selected({"event": ["exec"]}, [died]) == []


@pytest.mark.parametrize("value", [CID, CID[:12], CID[:4], "web-1", "web"])
def test_container_by_id_short_id_or_name_prefix(value: str) -> None:
    assert CONTAINER in selected({"container": [value]})


def test_container_mismatch() -> None:
    assert selected({"container": ["db"]}, [CONTAINER]) == []
    assert selected({"container": ["aaaa"]}, [CONTAINER]) == []  # not a prefix of the id


def test_container_filter_does_not_check_the_type() -> None:
    # dockerd matches actor id/name whatever the type: busy... selects the image named busybox:latest.
    assert selected({"container": ["busybox"]}) == [IMAGE_TAG]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("network", "bridge", NETWORK),
        ("network", "nnnn", NETWORK),
        ("volume", "data", VOLUME),
        ("volume", "da", VOLUME),
        ("daemon", "host1", DAEMON),
        ("daemon", "d1d2", DAEMON),
    ],
)
def test_named_keys(key: str, value: str, expected: Event) -> None:
    assert selected({key: [value]}) == [expected]


def test_named_keys_combine_with_and() -> None:
    assert selected({"container": ["web"], "type": ["container"]}) == [CONTAINER]
    assert selected({"container": ["web"], "network": ["bridge"]}) == []


@pytest.mark.parametrize("value", ["busybox", "busybox:latest", IMG])
def test_image_events_by_id_name_or_repository(value: str) -> None:
    assert IMAGE_TAG in selected({"image": [value]})


@pytest.mark.parametrize("value", ["busybox", "busybox:latest"])
def test_container_events_by_their_image(value: str) -> None:
    tagged = ev(image="busybox:latest", name="a")
    assert selected({"image": [value]}, [tagged]) == [tagged]


def test_image_filter_values_are_not_normalised() -> None:
    # As dockerd: only the event's side loses its tag and domain; the filter is taken as written.
    tagged = ev(image="busybox:latest", name="a")
    assert selected({"image": ["docker.io/library/busybox"]}, [tagged, IMAGE_TAG]) == []
    full = ev(image="docker.io/library/busybox:latest", name="a")
    assert selected({"image": ["busybox"]}, [full]) == [full]


def test_image_filter_is_not_a_prefix_match() -> None:
    assert selected({"image": ["busy"]}) == []
    assert selected({"image": [IMG[:20]]}) == []


def test_image_filter_with_the_untagged_name_of_an_event() -> None:
    other = ev(image="registry.local:5000/team/app:1.2", name="a")
    assert selected({"image": ["registry.local:5000/team/app"]}, [other]) == [other]
    assert selected({"image": ["team/app"]}, [other]) == []


def test_image_filter_for_a_container_does_not_use_its_name() -> None:
    assert selected({"image": ["web-1"]}, [CONTAINER]) == []


def test_image_filter_on_unparseable_names() -> None:
    odd = ev(image="Not A Reference", name="a")
    assert selected({"image": ["Not A Reference"]}, [odd]) == [odd]


def test_labels() -> None:
    assert selected({"label": ["app"]}) == [CONTAINER]
    assert selected({"label": ["app=x"]}) == [CONTAINER]
    assert selected({"label": ["app=y"]}) == []
    assert selected({"label": ["app", "image=busybox"]}) == [CONTAINER]
    assert selected({"label": ["app", "missing"]}) == []


def test_labels_match_any_attribute() -> None:
    # dockerd looks in all attributes, not only the container's labels.
    assert selected({"label": ["exitCode=1"]}, [ev(action="die", exitCode="1")]) != []


def test_scope() -> None:
    swarm = Event.of("service", "create", "s1", {"name": "svc"}, 1, scope="swarm")
    assert selected({"scope": ["local"]}, [CONTAINER, swarm]) == [CONTAINER]
    assert selected({"scope": ["swarm"]}, [CONTAINER, swarm]) == [swarm]


def test_the_cli_compose_filter() -> None:
    compose = ev(image="busybox:latest", name="p-web-1", **{"com.docker.compose.project": "apimapone"})
    f = {"label": ["com.docker.compose.project=apimapone"], "type": ["container"]}
    assert selected(f, [compose, CONTAINER, IMAGE_TAG]) == [compose]


# ---- since / until -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1700000000", 1_700_000_000_000_000_000),
        ("1700000000.5", 1_700_000_000_500_000_000),
        ("1700000000.000000001", 1_700_000_000_000_000_001),
        ("1700000000.1234567891234", 1_700_000_000_123_456_789),
        ("1700000000.", 1_700_000_000_000_000_000),
        ("+5", 5_000_000_000),
        ("-5", -5_000_000_000),
    ],
)
def test_unix_timestamps(text: str, ns: int) -> None:
    assert parse_unix_timestamp(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", 'invalid timestamp "abc": invalid seconds "abc": invalid syntax'),
        ("2024-01-01T00:00:00Z", 'invalid seconds "2024-01-01T00:00:00Z"'),
        ("10s", 'invalid seconds "10s": invalid syntax'),
        (" 5", "invalid syntax"),
        ("5.x", "invalid nanoseconds: invalid character 'x' at position 0"),
        ("5.-1", "invalid character '-' at position 0"),
        ("5." + "1" * 21, "invalid nanoseconds: length 21 exceeds maximum 20"),
        ("9" * 20, "value out of range"),
        ("", 'invalid seconds ""'),
    ],
)
def test_bad_unix_timestamps(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_unix_timestamp(text)


NOW = 1_800_000_000_000_000_000


def test_window_without_times_follows_live_only() -> None:
    w = parse_event_window("", "", NOW)
    assert w == EventWindow(None, None, False)
    assert not w.replays and w.remaining_s(NOW) is None


def test_window_since_replays_then_follows() -> None:
    w = parse_event_window("1700000000", "", NOW)
    assert w.replays and not w.only_past and w.until_ns is None
    assert w.admits(1_700_000_000_000_000_000) and not w.admits(1_699_999_999_999_999_999)


def test_window_since_zero_replays_everything() -> None:
    w = parse_event_window("0", "", NOW)
    assert w.replays and w.admits(1)


def test_window_until_in_the_past_replays_and_closes() -> None:
    w = parse_event_window("1700000000", "1700000010", NOW)
    assert w.only_past and w.remaining_s(NOW) == 0.0
    assert w.admits(1_700_000_010_000_000_000) and not w.admits(1_700_000_010_000_000_001)


def test_window_until_alone_replays_from_the_start() -> None:
    w = parse_event_window("", "1700000010", NOW)
    assert w.replays and w.only_past and w.admits(0)


def test_window_until_in_the_future_follows_until_then() -> None:
    w = parse_event_window("", "1800000002.5", NOW)
    assert not w.only_past and w.remaining_s(NOW) == pytest.approx(2.5)


def test_window_since_in_the_future_is_accepted() -> None:
    w = parse_event_window("1900000000", "", NOW)
    assert not w.only_past and w.replays and not w.admits(NOW)


def test_window_since_after_until() -> None:
    with pytest.raises(InvalidArgument, match=r"^`since` time \(20\) cannot be after `until` time \(10\)$"):
        parse_event_window("20", "10", NOW)


def test_window_since_equal_until() -> None:
    assert parse_event_window("10", "10", NOW).only_past


@pytest.mark.parametrize("key", ["since", "until"])
def test_window_bad_value_names_the_parameter(key: str) -> None:
    args = {"since": "", "until": "", key: "yesterday"}
    with pytest.raises(InvalidArgument, match=f"^invalid value for '{key}': invalid timestamp"):
        parse_event_window(args["since"], args["until"], NOW)
