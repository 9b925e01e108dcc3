"""model/volumes.py: names, filters and prune selection, as dockerd decides them."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.filters import Filters
from dockyard.model.volumes import (
    ANONYMOUS_LABEL,
    LocalOptions,
    Volume,
    check_driver,
    check_name,
    check_options,
    local_options,
    prunable,
    select,
)

NAMED = Volume("data", "2026-01-01T00:00:00Z", labels={"tier": "db"})
PLAIN = Volume("plain", "2026-01-01T00:00:00Z")
ANON = Volume("f" * 64, "2026-01-01T00:00:00Z", labels={ANONYMOUS_LABEL: ""})
ALL = (NAMED, PLAIN, ANON)


@pytest.mark.parametrize("name", ["ab", "a1", "A.b_c-d", "0" * 64, "x.."])
def test_good_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", ["a", "", "a/b", "..", ".a", "-a", "_a", "a b", "a:b", "ü1"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^create {name}: "):
        check_name(name)


def test_only_the_local_driver() -> None:
    check_driver("v1", "local")
    with pytest.raises(NotFound, match='plugin "flocker" not found'):
        check_driver("v1", "flocker")


def _names(volumes: list[Volume]) -> list[str]:
    return [v.name for v in volumes]


def test_select_filters() -> None:
    assert _names(select(ALL, Filters(), ())) == sorted(v.name for v in ALL)
    assert _names(select(ALL, Filters.of({"name": ["pla"]}), ())) == ["plain"]
    assert _names(select(ALL, Filters.of({"label": ["tier=db"]}), ())) == ["data"]
    assert _names(select(ALL, Filters.of({"label": ["tier=web"]}), ())) == []
    assert _names(select(ALL, Filters.of({"dangling": ["false"]}), ["plain"])) == ["plain"]
    assert _names(select(ALL, Filters.of({"dangling": ["1"]}), ["plain"])) == ["data", "f" * 64]
    assert _names(select(ALL, Filters.of({"driver": ["nfs"]}), ())) == []
    with pytest.raises(InvalidArgument, match="invalid filter 'size'"):
        select(ALL, Filters.of({"size": ["1"]}), ())


def test_prune_selection() -> None:
    assert _names(prunable(ALL, Filters(), (), all_named=False)) == ["f" * 64]
    assert _names(prunable(ALL, Filters(), ["f" * 64], all_named=False)) == []
    assert _names(prunable(ALL, Filters(), ["plain"], all_named=True)) == ["data", "f" * 64]
    assert _names(prunable(ALL, Filters.of({"all": ["true"]}), (), all_named=False)) == _names(sorted(ALL, key=lambda v: v.name))
    assert _names(prunable(ALL, Filters.of({"all": ["1"], "label!": ["tier"]}), (), all_named=False)) == ["f" * 64, "plain"]
    with pytest.raises(InvalidArgument):
        prunable(ALL, Filters.of({"dangling": ["true"]}), (), all_named=False)


def test_driver_options() -> None:
    assert check_options("v1", {}) == LocalOptions()
    assert not LocalOptions().needs_mount
    with pytest.raises(InvalidArgument, match='^create v1: invalid option: "colour"$'):
        check_options("v1", {"colour": "red", "type": "tmpfs"})
    tmpfs = check_options("v1", {"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000"})
    assert tmpfs == LocalOptions("tmpfs", "tmpfs", "size=10m,uid=1000") and tmpfs.needs_mount
    assert check_options("v1", {"type": "none", "o": "bind", "device": "/srv"}).needs_mount
    assert check_options("v1", {"size": "0"}).size == 0  # no quota asked: no quota needed
    assert check_options("v1", {"size": "1g"}, quota=True).size == 1 << 30


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type": "tmpfs"}, 'missing required option: "device"'),
        ({"device": "tmpfs"}, 'missing required option: "type"'),
        ({"o": "size=1m"}, 'missing required option: "device"'),
        ({"o": "size=1m", "device": "tmpfs"}, 'missing required option: "type"'),
        ({"size": "10m"}, "quota size requested but no quota support"),
        ({"size": "ten"}, "invalid size: 'ten'"),
        ({"size": "10q"}, "invalid suffix: 'q'"),
    ],
)
def test_driver_options_refused_with_dockerds_words(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_options("v1", options)
    assert caught.value.message == f"create v1: {message}"


def test_options_of_a_stored_volume() -> None:
    assert local_options(None) == LocalOptions()
    assert local_options({"type": "tmpfs", "device": "tmpfs"}).needs_mount
