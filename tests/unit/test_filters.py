"""The filters= query parameter: both JSON forms, matching rules, dockerd's messages."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.filters import Filters, parse_filters


@pytest.mark.parametrize("raw", [None, "", "{}"])
def test_empty(raw: str | None) -> None:
    filters = parse_filters(raw)
    assert not filters
    assert filters.keys() == frozenset()
    assert filters == Filters()


def test_map_form() -> None:
    filters = parse_filters('{"label":{"a=b":true,"c":true},"dangling":{"true":true}}')
    assert filters.values("label") == {"a=b", "c"}
    assert filters.values("dangling") == {"true"}
    assert filters.keys() == {"label", "dangling"}
    assert filters.has("label") and not filters.has("name")
    assert filters.values("name") == frozenset()


def test_map_form_false_values_are_left_out() -> None:
    assert parse_filters('{"name":{"a":true,"b":false}}').values("name") == {"a"}


def test_list_form() -> None:
    filters = parse_filters('{"label":["k=v","k2"],"name":["x"]}')
    assert filters.values("label") == {"k=v", "k2"}
    assert filters.values("name") == {"x"}


def test_both_forms_are_equal() -> None:
    assert parse_filters('{"label":{"k=v":true}}') == parse_filters('{"label":["k=v"]}')


def test_null_values_keep_the_key() -> None:
    filters = parse_filters('{"dangling":null}')
    assert filters.has("dangling") and filters.values("dangling") == frozenset()


def test_of_builds_filters() -> None:
    assert Filters.of({"label": ["a"]}) == parse_filters('{"label":["a"]}')


def test_filters_are_immutable() -> None:
    filters = parse_filters('{"label":["a"]}')
    with pytest.raises(TypeError):
        filters.fields["x"] = frozenset()  # type: ignore[index]


@pytest.mark.parametrize("raw", ["{", "nope", '{"label":'])
def test_bad_json(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="^invalid filter: "):
        parse_filters(raw)


@pytest.mark.parametrize(
    "raw",
    ['["label"]', '"label"', "1", '{"label":"a"}', '{"label":1}', '{"label":[1]}',
     '{"label":{"a":"yes"}}', '{"label":{"a":1}}'],
)  # fmt: skip
def test_wrong_shape(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="^invalid filter: "):
        parse_filters(raw)


def test_validate() -> None:
    filters = parse_filters('{"label":["a"],"dangling":["true"]}')
    filters.validate(["label", "dangling", "before"])
    with pytest.raises(InvalidArgument) as info:
        filters.validate(("label",))
    assert info.value.message == "invalid filter 'dangling'"


def test_validate_names_the_first_key_in_order() -> None:
    with pytest.raises(InvalidArgument, match="^invalid filter 'alpha'$"):
        parse_filters('{"zulu":["1"],"alpha":["1"]}').validate(())


def test_match_exact() -> None:
    filters = parse_filters('{"name":["web","db"]}')
    assert filters.match_exact("name", "web")
    assert not filters.match_exact("name", "cache")
    assert filters.match_exact("status", "anything")  # no filter on the key


def test_match_prefix_and_regex() -> None:
    filters = parse_filters('{"id":["abc"],"name":["^we.$","(bad"]}')
    assert filters.match_prefix("id", "abcdef")
    assert not filters.match_prefix("id", "xabc")
    assert filters.match_prefix("other", "x")
    assert filters.match_regex("name", "web")
    assert not filters.match_regex("name", "webs")
    assert filters.match_regex("name", "(bad")  # an exact value matches even if not a regex
    assert filters.match_regex("other", "x")


LABELS = {"app": "web", "tier": "front", "empty": ""}


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [
        ([], True),
        (["app"], True),
        (["app=web"], True),
        (["app=db"], False),
        (["missing"], False),
        (["app", "tier=front"], True),
        (["app", "tier=back"], False),
        (["empty="], True),
        (["empty=x"], False),
        (["app=web=x"], False),
    ],
)
def test_match_labels(wanted: list[str], matches: bool) -> None:
    assert Filters.of({"label": wanted}).match_labels(LABELS) is matches


def test_match_labels_on_unlabelled_object() -> None:
    assert Filters().match_labels({})
    assert not Filters.of({"label": ["a"]}).match_labels({})


def test_negated_labels_exclude_when_all_hold() -> None:
    assert not Filters.of({"label!": ["app=web"]}).match_labels(LABELS)
    assert Filters.of({"label!": ["app=db"]}).match_labels(LABELS)
    assert Filters.of({"label!": ["app", "missing"]}).match_labels(LABELS)
    assert not Filters.of({"label!": ["app", "tier"]}).match_labels(LABELS)
    both = Filters.of({"label": ["app"], "label!": ["tier=back"]})
    assert both.match_labels(LABELS)


def test_match_labels_other_key() -> None:
    assert Filters.of({"driver-label": ["x"]}).match_labels({"x": "1"}, key="driver-label")


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["true"], True), (["1"], True), (["false"], False), (["0"], False),
     (["true", "1"], True), (["false", "0"], False)],
)  # fmt: skip
def test_bool_value(values: list[str], expected: bool) -> None:
    assert Filters.of({"dangling": values}).bool_value("dangling") is expected


def test_bool_value_absent() -> None:
    assert Filters().bool_value("dangling") is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["maybe"], "invalid filter 'dangling=maybe'"),
        (["True"], "invalid filter 'dangling=True'"),
        (["true", "false"], "invalid filter 'dangling=false,true'"),
        ([], "invalid filter 'dangling'"),
    ],
)
def test_bool_value_invalid(values: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Filters.of({"dangling": values}).bool_value("dangling")
    assert info.value.message == message


def test_time_filter_values() -> None:
    from dockyard.model.filters import parse_time_filter

    now = 1_800_000_000_000_000_000
    assert parse_time_filter("1700000000", now) == 1_700_000_000_000_000_000
    assert parse_time_filter("1700000000.5", now) == 1_700_000_000_500_000_000
    assert parse_time_filter("2026-11-27T00:00:00Z", now) == 1_795_737_600_000_000_000
    assert parse_time_filter("10m", now) == now - 600_000_000_000
    with pytest.raises(InvalidArgument, match="invalid filter 'until=soon'"):
        parse_time_filter("soon", now)
