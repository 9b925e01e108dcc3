"""model/mounts.py for volumes: `-v name:/dst[:opts]` and `--mount type=volume`, as dockerd parses them."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.mounts import host_source, mount_from_api, oci_options, oci_type, parse_bind, parse_mounts


def test_a_name_is_a_volume() -> None:
    m = parse_bind("data:/var/lib/data")
    assert (m.type, m.source, m.destination, m.read_only, m.no_copy, m.mode) == ("volume", "data", "/var/lib/data", False, False, "")
    assert oci_type(m) == "bind" and oci_options(m) == ("rbind", "rprivate")
    assert host_source(m, "/dr/volumes") == "/dr/volumes/data/_data"


def test_volume_options() -> None:
    m = parse_bind("data:/d:ro,nocopy")
    assert m.read_only and m.no_copy and m.mode == "ro,nocopy"
    assert oci_options(m) == ("rbind", "rprivate", "ro")
    assert not parse_bind("/host:/d:nocopy").no_copy  # a bind has nothing to copy


@pytest.mark.parametrize(("text", "words"), [
    ("a/b:/d", '"a/b" includes invalid characters'),
    ("..:/d", '".." includes invalid characters'),
    ("x:/d", "volume name is too short"),
    ("data:/d:rshared", "invalid mode: rshared"),
    ("data:rel", "mount path must be absolute"),
])  # fmt: skip
def test_bad_volume_binds(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        parse_bind(text)


def test_mount_type_volume() -> None:
    m = mount_from_api("volume", "data", "/d/", read_only=True, no_copy=True)
    assert (m.type, m.source, m.destination, m.read_only, m.no_copy, m.from_api) == ("volume", "data", "/d", True, True, True)
    anonymous = mount_from_api("volume", "", "/d")  # named when the container is made
    assert (anonymous.source, anonymous.anonymous, m.anonymous) == ("", True, False)
    with pytest.raises(InvalidArgument, match="field Target must not be empty"):
        mount_from_api("volume", "data", "")


def test_a_volume_and_a_bind_on_one_path_clash() -> None:
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /d"):
        parse_mounts(["data:/d", "/h:/d"], {})
