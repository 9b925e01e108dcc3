"""model/mountpoints.py: --volumes-from parsing and how a create settles a container's mounts."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from dockyard.api.schemas.containers import mounts_doc
from dockyard.api.schemas.host_config import host_config_doc, mount_request_doc, parse_host_config
from dockyard.errors import InvalidArgument
from dockyard.model.containers import Container, ContainerSpec, ContainerState, HostSpec
from dockyard.model.mountpoints import (
    VolumesFrom,
    anonymous_volumes,
    inherited,
    parse_volumes_from,
    settle,
)
from dockyard.model.mounts import MountOrigin, MountSpec, mount_from_api, parse_bind, parse_mounts
from dockyard.store import codec


def _names() -> itertools.count[int]:
    return itertools.count(1)


def _namer():  # type: ignore[no-untyped-def]
    counter = _names()
    return lambda: f"{next(counter):064x}"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("data", VolumesFrom("data")),
        ("data:rw", VolumesFrom("data")),
        ("data:ro", VolumesFrom("data", read_only=True)),
        ("data:ro,z", VolumesFrom("data", read_only=True)),
        ("data:z", VolumesFrom("data")),
        ("0123abcd:rw,Z", VolumesFrom("0123abcd")),
    ],
)
def test_volumes_from_entries(text: str, want: VolumesFrom) -> None:
    assert parse_volumes_from(text) == want


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "volumes-from specification cannot be an empty string"),
        ("data:bogus", "invalid mode: bogus"),
        ("data:ro,rw", "invalid mode: ro,rw"),
        ("data:rshared", "invalid mode: rshared"),  # propagation is the source's
        ("data:nocopy", "invalid mode: nocopy"),  # nothing is copied anyway
        ("data:z,Z", "invalid mode: z,Z"),
    ],
)
def test_bad_volumes_from_entries(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        parse_volumes_from(text)


def test_config_volumes_get_anonymous_volumes_unless_covered() -> None:
    user = parse_mounts(("/host:/bound", "named:/named"), {"/run": "size=1m"})
    points = settle(user, ["/bound", "/named/", "/run", "/data", "/cache/../var/cache", "/data"], [], _namer())
    by_dest = {m.destination: m for m in points}
    assert set(by_dest) == {"/bound", "/named", "/run", "/data", "/var/cache"}
    assert by_dest["/bound"].type == "bind" and by_dest["/named"].source == "named"
    assert by_dest["/named"].anonymous is False
    data, cache = by_dest["/data"], by_dest["/var/cache"]
    assert (data.type, data.anonymous, data.origin, data.read_only, data.no_copy) == ("volume", True, MountOrigin.CONFIG, False, False)
    assert {data.source, cache.source} == {f"{1:064x}", f"{2:064x}"}
    assert anonymous_volumes(points) == sorted([data.source, cache.source], key=[m.source for m in points].index)


def test_a_user_anonymous_volume_is_named_and_keeps_its_options() -> None:
    asked = mount_from_api("volume", "", "/m", read_only=True, no_copy=True, volume_labels=(("a", "b"),))
    lone = parse_bind("/lone")
    assert (asked.anonymous, lone.anonymous, lone.type, lone.source) == (True, True, "volume", "")
    (m, single) = settle([asked, lone], [], [], _namer())
    assert m.source == f"{1:064x}" and single.source == f"{2:064x}"
    assert (m.read_only, m.no_copy, m.volume_labels, m.origin, m.from_api) == (True, True, (("a", "b"),), MountOrigin.USER, True)


def test_volumes_from_gives_binds_and_volumes_not_tmpfs() -> None:
    theirs = (
        MountSpec("volume", "a" * 64, "/shared", anonymous=True, origin=MountOrigin.CONFIG),
        MountSpec("volume", "named", "/named", read_only=True, mode="ro"),
        MountSpec("bind", "/srv", "/srv", propagation="rslave", mode="rw"),
        MountSpec("tmpfs", "tmpfs", "/tmp", from_api=True),
    )
    rw = inherited(theirs, read_only=False)
    assert [m.destination for m in rw] == ["/shared", "/named", "/srv"]
    assert [m.read_only for m in rw] == [False, True, False]  # `rw` keeps their own modes
    assert all(m.origin is MountOrigin.VOLUMES_FROM and m.mode == "" and m.no_copy for m in rw)
    assert rw[0].anonymous and rw[0].source == "a" * 64 and rw[2].propagation == "rslave"
    assert all(m.read_only for m in inherited(theirs, read_only=True))


def test_own_mounts_win_over_volumes_from_and_a_later_source_wins() -> None:
    first = inherited([MountSpec("volume", "one", "/x"), MountSpec("volume", "one-y", "/y")], read_only=False)
    second = inherited([MountSpec("volume", "two", "/x")], read_only=True)
    own = parse_mounts(("mine:/y",), {})
    points = settle(own, ["/x", "/y", "/z"], [first, second], _namer())
    by_dest = {m.destination: m for m in points}
    assert by_dest["/y"].source == "mine" and by_dest["/y"].origin is MountOrigin.USER
    assert by_dest["/x"].source == "two" and by_dest["/x"].read_only
    assert by_dest["/z"].anonymous and by_dest["/z"].source == f"{1:064x}"  # only /z needed a new volume
    assert len(points) == 3


@pytest.mark.parametrize(("path", "words"), [("rel", "mount path must be absolute"), ("/", "destination can't be '/'")])
def test_bad_config_volume_paths(path: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        settle([], [path], [], _namer())


def test_settled_mounts_are_what_a_host_spec_answers_and_survive_the_codec() -> None:
    host = HostSpec(binds=("/data",), volumes_from=("src:ro",))
    assert host.all_mounts[0].source == ""  # not settled: the request as parsed
    points = settle(host.all_mounts, ["/img"], [inherited([MountSpec("volume", "v1", "/from")], True)], _namer())
    settled = replace(host, mount_points=points)
    assert settled.all_mounts == points
    back = codec.loads(HostSpec, codec.dumps(settled))
    assert back.all_mounts == points and back.binds == ("/data",) and back.volumes_from == ("src:ro",)
    assert {m.origin for m in back.all_mounts} == {MountOrigin.USER, MountOrigin.CONFIG, MountOrigin.VOLUMES_FROM}
    # A record made before mount points were kept still reads its mounts from the request.
    old = codec.loads(HostSpec, codec.dumps(HostSpec(binds=("vv:/v",))).replace(',"mount_points":null', ""))
    assert old.mount_points is None and old.all_mounts[0].source == "vv"


def test_inspect_shows_settled_mounts_in_dockerds_shape() -> None:
    host = parse_host_config({"Binds": ["nv:/n", "/lone"], "VolumesFrom": ["src:ro"],
                              "Mounts": [{"Type": "volume", "Target": "/m"}]})  # fmt: skip
    src = [MountSpec("volume", "b" * 64, "/from", anonymous=True, origin=MountOrigin.CONFIG)]
    points = settle(host.all_mounts, ["/cfg"], [inherited(src, True)], _namer())
    spec = ContainerSpec(image="i", hostname="h", host=replace(host, mount_points=points))
    c = Container("c" * 64, "n", "", "sha256:" + "d" * 64, spec, ContainerState(), "runc", "rw")
    docs = {d["Destination"]: d for d in mounts_doc(c, "/v")}
    assert {d: (docs[d]["Name"], docs[d]["Mode"], docs[d]["RW"]) for d in docs} == {
        "/n": ("nv", "z", True),
        "/lone": (f"{1:064x}", "z", True),  # a user mount: dockerd's "z"
        "/m": (f"{2:064x}", "z", True),
        "/from": ("b" * 64, "", False),  # --volumes-from's: no mode
        "/cfg": (f"{3:064x}", "", True),  # Config.Volumes': no mode
    }
    assert docs["/cfg"]["Source"] == f"/v/{3:064x}/_data"
    doc = host_config_doc(spec.host, "runc")
    assert doc["Binds"] == ["nv:/n", "/lone"] and doc["VolumesFrom"] == ["src:ro"]  # as sent
    assert doc["Mounts"] == [{"Type": "volume", "Target": "/m"}] == [mount_request_doc(m) for m in host.mounts]
