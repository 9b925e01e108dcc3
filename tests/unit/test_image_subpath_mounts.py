"""model/mounts.py for image mounts, subpaths, tmpfs options and labels; the API's parse of
them (api/schemas/host_config.py) and the per-version refusals, as dockerd 28."""

from __future__ import annotations

import pytest

from dockyard.api.schemas.host_config import (
    check_mounts_for_version,
    mount_request_doc,
    parse_host_config,
)
from dockyard.errors import InvalidArgument
from dockyard.model.mounts import (
    mount_from_api,
    oci_options,
    oci_type,
    parse_bind,
    parse_tmpfs,
    staged_paths,
    tmpfs_size,
)


def test_an_image_mount_is_a_read_only_bind_of_what_is_staged() -> None:
    m = mount_from_api("image", "busybox", "/image/")
    assert (m.type, m.source, m.destination, m.read_only, m.propagation) == ("image", "busybox", "/image", False, "rprivate")
    assert m.staged and not m.subpath and m.image_id == ""
    assert oci_type(m) == "bind"
    assert oci_options(m) == ("rbind", "rprivate", "ro")  # read-only whatever was asked, as dockerd


def test_an_image_mount_needs_a_source() -> None:
    with pytest.raises(InvalidArgument, match='invalid mount config for type "image": field Source must not be empty'):
        mount_from_api("image", "", "/image")


@pytest.mark.parametrize("subpath", ["subdir", "a/b/c", "./x", "a/../b", "bar.txt"])
def test_local_subpaths_are_kept_as_given(subpath: str) -> None:
    assert mount_from_api("image", "img", "/i", subpath=subpath).subpath == subpath
    m = mount_from_api("volume", "data", "/v", subpath=subpath)
    assert m.subpath == subpath and m.staged


@pytest.mark.parametrize("subpath", ["../etc", "/etc", "..", "a/../../b", "x\0y"])
@pytest.mark.parametrize("kind", ["image", "volume"])
def test_subpaths_leading_out_are_refused(kind: str, subpath: str) -> None:
    source = "img" if kind == "image" else "data"
    with pytest.raises(InvalidArgument, match=f'type "{kind}": subpath must be a relative path within the volume'):
        mount_from_api(kind, source, "/p", subpath=subpath)


def test_a_volume_without_subpath_is_not_staged() -> None:
    assert not mount_from_api("volume", "data", "/v").staged
    assert not parse_bind("data:/v").staged


@pytest.mark.parametrize(
    ("size", "text"),
    [(1 << 20, "1m"), (1 << 30, "1g"), (3 << 30, "3g"), (1536 * 1024, "1536k"), (1000, "1000"), (4096, "4k")],
)
def test_tmpfs_size_takes_the_largest_suffix_that_divides(size: int, text: str) -> None:
    assert tmpfs_size(size) == text
    assert f"size={text}" in mount_from_api("tmpfs", "", "/t", size_bytes=size).options


def test_tmpfs_options_exec_and_noexec() -> None:
    m = mount_from_api("tmpfs", "", "/t", tmpfs_flags=[["exec"]])
    assert m.tmpfs_flags == ("exec",)
    assert oci_options(m) == ("nosuid", "nodev", "exec")  # the default noexec gives way
    assert oci_options(mount_from_api("tmpfs", "", "/t", tmpfs_flags=[["noexec"]])) == ("nosuid", "nodev", "noexec")
    assert oci_options(parse_tmpfs("/t", "exec,size=1m")) == ("nosuid", "nodev", "exec", "size=1m")
    assert oci_options(parse_tmpfs("/t", "")) == ("nosuid", "nodev", "noexec")


@pytest.mark.parametrize(
    ("flags", "words"),
    [([["suid"]], "invalid option: suid"), ([[]], "invalid option array length"), ([["exec", "1", "2"]], "invalid option array length")],
)
def test_bad_tmpfs_options(flags: list[list[str]], words: str) -> None:
    with pytest.raises(InvalidArgument, match=f'invalid mount config for type "tmpfs": {words}'):
        mount_from_api("tmpfs", "", "/t", tmpfs_flags=flags)


@pytest.mark.parametrize("mode", ["z", "Z", "ro,z", "Z,rshared"])
def test_selinux_labels_are_accepted(mode: str) -> None:
    m = parse_bind(f"/host:/ctr:{mode}")
    assert m.selinux_label and m.mode == mode
    assert not parse_bind("/host:/ctr:ro").selinux_label


def test_staged_paths_are_under_the_run_dir() -> None:
    p = staged_paths("/run/dy/containers/abc/mounts", 2)
    assert p.base == "/run/dy/containers/abc/mounts/2"
    assert (p.image, p.part) == (p.base + "/image", p.base + "/part")


def test_the_api_parses_image_options_and_subpaths() -> None:
    h = parse_host_config({"Mounts": [
        {"Type": "image", "Source": "img:1", "Target": "/i", "ImageOptions": {"Subpath": "sub"}},
        {"Type": "volume", "Source": "data", "Target": "/v", "VolumeOptions": {"Subpath": "part"}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["exec"]]}},
    ]})  # fmt: skip
    image, volume, tmpfs = h.mounts
    assert (image.type, image.source, image.subpath) == ("image", "img:1", "sub")
    assert (volume.type, volume.subpath) == ("volume", "part")
    assert tmpfs.tmpfs_flags == ("exec",)
    assert [mount_request_doc(m) for m in h.mounts] == [
        {"Type": "image", "Source": "img:1", "Target": "/i", "ImageOptions": {"Subpath": "sub"}},
        {"Type": "volume", "Source": "data", "Target": "/v", "VolumeOptions": {"Subpath": "part"}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["exec"]]}},
    ]


@pytest.mark.parametrize(
    ("mount", "words"),
    [
        ({"Type": "bind", "Source": "/x", "Target": "/i", "ImageOptions": {"Subpath": "a"}}, "field ImageOptions must not be specified"),
        ({"Type": "image", "Source": "img", "Target": "/i", "VolumeOptions": {"NoCopy": True}}, "field VolumeOptions must not be specified"),
        ({"Type": "image", "Source": "img", "Target": "/i", "BindOptions": {"Propagation": "shared"}}, "field BindOptions must not be specified"),
        ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": "exec"}}, "expected an array of arrays"),
    ],
)
def test_the_api_refuses_misplaced_options(mount: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        parse_host_config({"Mounts": [mount]})


def test_versions_below_the_features_are_refused() -> None:
    image = parse_host_config({"Mounts": [{"Type": "image", "Source": "img", "Target": "/i"}]})
    part = parse_host_config({"Mounts": [{"Type": "volume", "Source": "data", "Target": "/v", "VolumeOptions": {"Subpath": "p"}}]})
    check_mounts_for_version(image, "1.48")
    check_mounts_for_version(part, "1.45")
    with pytest.raises(InvalidArgument, match='Mount type "Image" needs API v1.48 or newer'):
        check_mounts_for_version(image, "1.47")
    with pytest.raises(InvalidArgument, match="VolumeOptions.Subpath needs API v1.45 or newer"):
        check_mounts_for_version(part, "1.44")
