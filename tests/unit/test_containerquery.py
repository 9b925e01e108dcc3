"""model/containerquery: every `docker ps` filter with dockerd's rules and messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.health import HealthStatus
from dockyard.model.containerquery import (
    PS_FILTER_KEYS,
    ContainerQuery,
    ListedPort,
    image_family,
    parse_query,
    select,
    spec_mounts,
    spec_networks,
)
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
)
from dockyard.model.filters import Filters

STARTED = "2024-01-01T00:00:01.000000000Z"
IMG_A = "sha256:" + "a" * 64
IMG_B = "sha256:" + "b" * 64  # built on A
IMG_C = "sha256:" + "c" * 64  # unrelated


def make(
    cid: str,
    name: str,
    created_s: int,
    status: ContainerStatus = ContainerStatus.RUNNING,
    *,
    exit_code: int = 0,
    started: bool = True,
    labels: Mapping[str, str] | None = None,
    image_id: str = IMG_A,
    binds: tuple[str, ...] = (),
    network_mode: str = "default",
) -> Container:
    return Container(
        id=cid.ljust(64, "0"),
        name=name,
        created=f"2024-01-01T00:{created_s // 60:02d}:{created_s % 60:02d}.000000000Z",
        image_id=image_id,
        spec=ContainerSpec(
            image="busybox", hostname="h", labels=dict(labels or {}),
            host=HostSpec(binds=binds, network_mode=network_mode),
        ),
        state=ContainerState(status=status, exit_code=exit_code, started_at=STARTED if started else ContainerState().started_at),
        runtime="runc",
        rw_layer="rw",
    )


# Oldest first; listed newest first.
FRESH = make("a1", "fresh", 1, ContainerStatus.CREATED, started=False, labels={"tier": "db"})
OK = make("a2", "ok", 2, ContainerStatus.EXITED, exit_code=0, labels={"tier": "web", "x": "1"})
FAILED = make("b3", "failed", 3, ContainerStatus.EXITED, exit_code=3, image_id=IMG_B)
WEB = make("c4", "web", 4, labels={"tier": "web"}, binds=("/srv/data:/data",), image_id=IMG_B)
PAUSED = make("c5", "paused", 5, ContainerStatus.PAUSED, network_mode="none")
BACKOFF = make("d6", "backoff", 6, ContainerStatus.RESTARTING, exit_code=1, image_id=IMG_C)
DEAD = make("e7", "dead", 7, ContainerStatus.DEAD, exit_code=137)
ALL = (FRESH, OK, FAILED, WEB, PAUSED, BACKOFF, DEAD)


def names(found: Iterable[Container]) -> list[str]:
    return [c.name for c in found]


def ps(fields: Mapping[str, Iterable[str]] | None = None, *, all_: bool = True, limit: int = -1,
       containers: Iterable[Container] = ALL, **lookups: object) -> list[str]:  # fmt: skip
    return names(select(containers, Filters.of(fields or {}), include_all=all_, limit=limit, **lookups))  # type: ignore[arg-type]


# ---- listing, order, all, limit ---------------------------------------------------------------


def test_newest_first_with_all() -> None:
    assert ps() == ["dead", "backoff", "paused", "web", "failed", "ok", "fresh"]


def test_without_all_only_running_paused_and_restarting() -> None:
    assert ps(all_=False) == ["backoff", "paused", "web"]


def test_order_does_not_depend_on_input_order() -> None:
    assert ps(containers=reversed(ALL)) == ps(containers=ALL)


def test_limit_implies_all() -> None:
    assert ps(all_=False, limit=2) == ["dead", "backoff"]


def test_limit_counts_selected_containers() -> None:
    assert ps({"label": ["tier=web"]}, all_=False, limit=1) == ["web"]
    assert ps({"status": ["exited"]}, limit=1) == ["failed"]


@pytest.mark.parametrize("limit", [0, -1])
def test_no_limit(limit: int) -> None:
    assert len(ps(limit=limit)) == len(ALL)


def test_empty() -> None:
    assert ps(containers=()) == []


def test_a_parsed_query_carries_all_and_limit() -> None:
    query = parse_query(Filters(), include_all=True, limit=3)
    assert isinstance(query, ContainerQuery)
    assert names(select(ALL, query)) == ["dead", "backoff", "paused"]


# ---- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["bogus", "label!", "until", "dangling", "reference"])
def test_unknown_keys(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^invalid filter '{key}'$"):
        ps({key: ["x"]})


def test_every_dockerd_key_is_known() -> None:
    assert set(PS_FILTER_KEYS) == {
        "ancestor", "before", "exited", "id", "isolation", "label", "name", "status", "health",
        "since", "volume", "network", "is-task", "publish", "expose",
    }  # fmt: skip


def test_isolation_is_accepted_and_ignored_on_linux() -> None:
    assert ps({"isolation": ["hyperv"]}) == ps()


# ---- id --------------------------------------------------------------------------------------------


def test_id_full_and_prefix() -> None:
    assert ps({"id": [WEB.id]}) == ["web"]
    assert ps({"id": ["c4"]}) == ["web"]
    assert ps({"id": ["c4", "a2"]}) == ["web", "ok"]


def test_id_ambiguous_prefix_selects_nothing() -> None:
    assert ps({"id": ["c"]}) == []  # c4 and c5: dockerd's GetByPrefix fails
    assert ps({"id": ["c", "a1"]}) == ["fresh"]


def test_id_not_found_and_empty() -> None:
    assert ps({"id": ["ffff"]}) == []
    assert ps({"id": [""]}) == []


def test_id_is_not_a_substring_match() -> None:
    assert ps({"id": ["4000"]}) == []


def test_id_filter_honours_all() -> None:
    assert ps({"id": ["a2"]}, all_=False) == []


# ---- name ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web", ["web"]),
        ("/web", ["web"]),
        ("^web$", ["web"]),
        ("^/web$", ["web"]),
        ("e", ["dead", "paused", "web", "failed", "fresh"]),
        ("^f", ["failed", "fresh"]),
        ("d$", ["dead", "paused", "failed"]),
        ("nomatch", []),
        ("[", []),  # invalid expression: no match, no error
    ],
)
def test_name(value: str, expected: list[str]) -> None:
    assert ps({"name": [value]}) == expected


def test_name_several_values_or() -> None:
    assert ps({"name": ["^ok$", "^web$"]}) == ["web", "ok"]


def test_name_and_id_together_and() -> None:
    assert ps({"name": ["web"], "id": ["c4"]}) == ["web"]
    assert ps({"name": ["ok"], "id": ["c4"]}) == []


def test_invalid_expression_still_matches_exactly() -> None:
    odd = make("f8", "a(b", 8)
    assert ps({"name": ["a(b"]}, containers=[odd]) == ["a(b"]


# ---- label ----------------------------------------------------------------------------------------


def test_label() -> None:
    assert ps({"label": ["tier"]}) == ["web", "ok", "fresh"]
    assert ps({"label": ["tier=web"]}) == ["web", "ok"]
    assert ps({"label": ["tier=web", "x=1"]}) == ["ok"]
    assert ps({"label": ["tier=none"]}) == []
    assert ps({"label": ["tier="]}) == []


# ---- status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("created", ["fresh"]),
        ("running", ["web"]),
        ("paused", ["paused"]),
        ("restarting", ["backoff"]),
        ("exited", ["failed", "ok"]),
        ("dead", ["dead"]),
        ("removing", []),
    ],
)
def test_status(status: str, expected: list[str]) -> None:
    assert ps({"status": [status]}) == expected


def test_status_implies_all() -> None:
    assert ps({"status": ["exited"]}, all_=False) == ["failed", "ok"]


def test_several_statuses() -> None:
    assert ps({"status": ["created", "dead"]}, all_=False) == ["dead", "fresh"]


@pytest.mark.parametrize("value", ["bogus", "Running", "run", "exit", ""])
def test_bad_status(value: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ps({"status": [value]})
    assert err.value.message == (
        f"invalid filter 'status={value}': invalid value for state ({value}): "
        "must be one of created, running, paused, restarting, removing, exited, dead"
    )


# ---- exited ------------------------------------------------------------------------------------


def test_exited() -> None:
    assert ps({"exited": ["0"]}) == ["ok"]
    assert ps({"exited": ["3"]}) == ["failed"]
    assert ps({"exited": ["0", "3"]}) == ["failed", "ok"]
    assert ps({"exited": ["137"]}) == ["dead"]  # dead containers are not running either


def test_exited_skips_never_started_and_running() -> None:
    assert ps({"exited": ["1"]}) == []  # backoff restarts: "running" to dockerd
    never = make("f9", "never", 9, ContainerStatus.CREATED, exit_code=127, started=False)
    assert ps({"exited": ["127"]}, containers=[never]) == []


def test_exited_does_not_imply_all() -> None:
    assert ps({"exited": ["0"]}, all_=False) == []


def test_exited_with_sign() -> None:
    assert ps({"exited": ["+3"]}) == ["failed"]
    negative = make("f9", "neg", 9, ContainerStatus.EXITED, exit_code=-1)
    assert ps({"exited": ["-1"]}, containers=[negative]) == ["neg"]


@pytest.mark.parametrize(
    ("value", "why"),
    [("abc", "invalid syntax"), ("1.5", "invalid syntax"), (" 1", "invalid syntax"), ("", "invalid syntax"),
     ("1_000", "invalid syntax"), ("99999999999999999999", "value out of range")],
)  # fmt: skip
def test_bad_exited(value: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ps({"exited": [value]})
    assert err.value.message == f"invalid filter 'exited={value}': strconv.Atoi: parsing \"{value}\": {why}"


# ---- health --------------------------------------------------------------------------------------


def health(c: Container) -> str:
    return {"web": HealthStatus.HEALTHY, "paused": "unhealthy", "backoff": "starting"}.get(c.name, "none")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("healthy", ["web"]), ("unhealthy", ["paused"]), ("starting", ["backoff"]),
     ("none", ["dead", "failed", "ok", "fresh"])],
)  # fmt: skip
def test_health(value: str, expected: list[str]) -> None:
    assert ps({"health": [value]}, health_of=health) == expected


def test_health_default_lookup_is_none() -> None:
    assert ps({"health": ["none"]}) == ps()
    assert ps({"health": ["healthy"]}) == []


@pytest.mark.parametrize("value", ["bogus", "Healthy", ""])
def test_bad_health(value: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ps({"health": [value]})
    assert err.value.message == (
        f"invalid filter 'health={value}': invalid value for health ({value}): "
        "must be one of none, starting, healthy, unhealthy"
    )


# ---- before / since -----------------------------------------------------------------------------


def test_before_and_since_by_name_and_id() -> None:
    assert ps({"before": ["web"]}) == ["failed", "ok", "fresh"]
    assert ps({"before": [WEB.id]}) == ["failed", "ok", "fresh"]
    assert ps({"before": ["/web"]}) == ["failed", "ok", "fresh"]
    assert ps({"since": ["web"]}) == ["dead", "backoff", "paused"]
    assert ps({"since": ["web"], "before": ["dead"]}) == ["backoff", "paused"]


def test_since_without_all() -> None:
    assert ps({"since": ["fresh"]}, all_=False) == ["backoff", "paused", "web"]


def test_before_the_oldest_and_since_the_newest() -> None:
    assert ps({"before": ["fresh"]}) == []
    assert ps({"since": ["dead"]}) == []


@pytest.mark.parametrize("key", ["before", "since"])
@pytest.mark.parametrize("value", ["nosuch", "c4", WEB.id[:12]])
def test_before_since_unknown_or_short_id(key: str, value: str) -> None:
    with pytest.raises(NotFound, match=f"^No such container: {value}$"):
        ps({key: [value]})


def test_before_a_container_the_name_filter_removed_excludes_all() -> None:
    assert ps({"name": ["^ok$"], "before": ["web"]}) == []
    assert ps({"name": ["^ok$"], "since": ["web"]}) == ["ok"]


# ---- ancestor -------------------------------------------------------------------------------------


def family(ref: str) -> frozenset[str]:
    parents = {IMG_A: "", IMG_B: IMG_A, IMG_C: ""}
    ids = {"busybox": IMG_A, "child": IMG_B, "other": IMG_C, IMG_A: IMG_A}
    return image_family(ids[ref], parents) if ref in ids else frozenset()


def test_ancestor_includes_images_built_on_it() -> None:
    assert ps({"ancestor": ["busybox"]}, image_ids=family) == ["dead", "paused", "web", "failed", "ok", "fresh"]
    assert ps({"ancestor": ["child"]}, image_ids=family) == ["web", "failed"]
    assert ps({"ancestor": ["other"]}, image_ids=family) == ["backoff"]
    assert ps({"ancestor": ["child", "other"]}, image_ids=family) == ["backoff", "web", "failed"]


def test_ancestor_unknown_selects_nothing() -> None:
    assert ps({"ancestor": ["nosuch"]}, image_ids=family) == []
    assert ps({"ancestor": ["nosuch", "other"]}, image_ids=family) == ["backoff"]


def test_ancestor_default_lookup_knows_no_image() -> None:
    assert ps({"ancestor": ["busybox"]}) == []


def test_image_family() -> None:
    parents = {"a": "", "b": "a", "c": "b", "d": "a", "e": "", "f": "e"}
    assert image_family("a", parents) == {"a", "b", "c", "d"}
    assert image_family("b", parents) == {"b", "c"}
    assert image_family("c", parents) == {"c"}
    assert image_family("zz", parents) == {"zz"}


def test_image_family_survives_a_cycle() -> None:
    assert image_family("a", {"a": "b", "b": "a"}) == {"a", "b"}


# ---- volume ----------------------------------------------------------------------------------------


def test_volume_by_source_or_destination() -> None:
    assert ps({"volume": ["/data"]}) == ["web"]
    assert ps({"volume": ["/srv/data"]}) == ["web"]
    assert ps({"volume": ["/srv"]}) == []
    assert ps({"volume": ["/nope", "/data"]}) == ["web"]


def test_volume_by_name_from_a_lookup() -> None:
    def mounts(c: Container) -> list[tuple[str, str]]:
        return [("cache", "/var/cache")] if c.name == "ok" else []

    assert ps({"volume": ["cache"]}, mounts_of=mounts) == ["ok"]
    assert ps({"volume": ["/var/cache"]}, mounts_of=mounts) == ["ok"]


def test_spec_mounts_are_binds_only() -> None:
    c = replace(WEB, spec=replace(WEB.spec, host=replace(WEB.spec.host, tmpfs={"/run": ""})))
    assert spec_mounts(c) == (("/srv/data", "/data"),)


# ---- network ------------------------------------------------------------------------------------


def test_network_by_mode() -> None:
    assert ps({"network": ["bridge"]}) == ["dead", "backoff", "web", "failed", "ok", "fresh"]
    assert ps({"network": ["none"]}) == ["paused"]
    assert ps({"network": ["host"]}) == []


def test_network_by_id_prefix() -> None:
    def nets(c: Container) -> Mapping[str, str]:
        return {"bridge": "9f" + "0" * 62} if c.name == "web" else {}

    assert ps({"network": ["9f"]}, networks_of=nets) == ["web"]
    assert ps({"network": ["bridge"]}, networks_of=nets) == ["web"]
    assert ps({"network": ["f0"]}, networks_of=nets) == []


def test_spec_networks() -> None:
    def mode(m: str) -> Container:
        return replace(WEB, spec=replace(WEB.spec, host=replace(WEB.spec.host, network_mode=m)))

    assert spec_networks(mode("default")) == {"bridge": ""}
    assert spec_networks(mode("")) == {"bridge": ""}
    assert spec_networks(mode("host")) == {"host": ""}
    assert spec_networks(mode("none")) == {"none": ""}
    assert spec_networks(mode("container:abc")) == {}
    assert spec_networks(mode("mynet")) == {"mynet": ""}


# ---- is-task ------------------------------------------------------------------------------------


def test_is_task() -> None:
    assert ps({"is-task": ["false"]}) == ps()
    assert ps({"is-task": ["0"]}) == ps()
    assert ps({"is-task": ["true"]}) == []
    assert ps({"is-task": ["1"]}, is_task_of=lambda c: c.name == "ok") == ["ok"]


@pytest.mark.parametrize(
    ("values", "message"),
    [(["maybe"], "invalid filter 'is-task=[maybe]'"), (["true", "false"], "invalid filter 'is-task=[false true]'"),
     ([], "invalid filter 'is-task'")],
)  # fmt: skip
def test_bad_is_task(values: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ps({"is-task": values})
    assert err.value.message == message


# ---- publish / expose --------------------------------------------------------------------------------


def ports(c: Container) -> list[ListedPort]:
    return {
        "web": [ListedPort(80, 8080, "tcp"), ListedPort(53, 0, "udp")],
        "ok": [ListedPort(8000, 0, "tcp")],
    }.get(c.name, [])


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("publish", "8080", ["web"]),
        ("publish", "8080/tcp", ["web"]),
        ("publish", "8080/udp", []),
        ("publish", "80", []),
        ("publish", "8000-8100", ["web"]),
        ("publish", "8080/", ["web"]),
        ("expose", "80", ["web"]),
        ("expose", "53/udp", ["web"]),
        ("expose", "53", []),
        ("expose", "8000", ["ok"]),
        ("expose", "1-65535/tcp", ["web", "ok"]),
        ("publish", "0/udp", ["web"]),  # an exposed, unpublished port has host port 0
    ],
)
def test_ports(key: str, value: str, expected: list[str]) -> None:
    assert ps({key: [value]}, ports_of=ports) == expected


def test_publish_or_expose() -> None:
    assert ps({"publish": ["8080"], "expose": ["8000"]}, ports_of=ports) == ["web", "ok"]


def test_ports_default_lookup_has_none() -> None:
    assert ps({"expose": ["80"]}) == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("publish", "127.0.0.1:80", "filter for 'publish' should not contain ':': 127.0.0.1:80"),
        ("expose", "abc", "error while looking up for expose abc: strconv.ParseUint: parsing \"abc\": invalid syntax"),
        ("publish", "70000", "error while looking up for publish 70000: strconv.ParseUint: parsing \"70000\": value out of range"),
        ("publish", "90-80", "error while looking up for publish 90-80: invalid range specified for port: 90-80"),
        ("publish", "80-", "error while looking up for publish 80-: strconv.ParseUint: parsing \"\": invalid syntax"),
        ("expose", "/tcp", "error while looking up for expose /tcp: empty string specified for ports"),
        ("expose", "", "error while looking up for expose : empty string specified for ports"),
        ("expose", "-1", "error while looking up for expose -1: strconv.ParseUint: parsing \"\": invalid syntax"),
    ],
)  # fmt: skip
def test_bad_ports(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ps({key: [value]})
    assert err.value.message == message


# ---- combinations -----------------------------------------------------------------------------


def test_filters_combine_with_and() -> None:
    assert ps({"label": ["tier=web"], "status": ["running"]}) == ["web"]
    assert ps({"label": ["tier=web"], "exited": ["0"], "name": ["o"]}) == ["ok"]
    assert ps({"status": ["exited"], "ancestor": ["child"]}, image_ids=family) == ["failed"]


def test_validation_happens_before_any_lookup() -> None:
    def boom(c: Container) -> str:
        raise AssertionError("lookup called")

    with pytest.raises(InvalidArgument):
        ps({"health": ["bogus"]}, health_of=boom)


def test_lookups_are_called_only_for_their_filter() -> None:
    def boom(c: Container) -> list[ListedPort]:
        raise AssertionError("lookup called")

    assert ps(ports_of=boom, health_of=boom, mounts_of=boom, networks_of=boom, is_task_of=boom) == ps()
