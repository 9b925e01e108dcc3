"""Managing images as dockerd 28 does (compared by hand with a real dockerd): history,
sizes, rmi of images with children, parent pruning, prune, list filters."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.registry import TestRegistry, layer_tar


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _inspect(d: Daemon, ref: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(d.out("image", "inspect", ref))[0]
    return info


def _diff_size(layer: bytes) -> int:
    """dockerd's DiffSize of an unpacked layer: file sizes plus symlink target lengths."""
    total = 0
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        for m in tar:
            total += m.size if m.isreg() else len(m.linkname.encode()) if m.issym() else 0
    return total


@dataclass(frozen=True)
class Family:
    base: str  # tag of an imported image
    base_id: str
    child: str  # tag of a commit on top of it
    child_id: str


@pytest.fixture
def family(daemon_factory: Callable[..., Daemon], busybox_tar: bytes) -> Iterator[tuple[Daemon, Family]]:
    d = daemon_factory()
    u = _uid()
    base, child = f"fam-{u}/base:1", f"fam-{u}/child:1"
    d.docker("import", "-c", "LABEL tier=base", "-", base, input=busybox_tar)
    d.docker("run", "--name", "mk", base, "sh", "-c", "echo hello > /hello.txt")
    d.docker("commit", "-m", "add hello", "-c", "LABEL tier=child", "mk", child)
    d.docker("rm", "mk")
    yield d, Family(base, _inspect(d, base)["Id"], child, _inspect(d, child)["Id"])


def test_history_sizes_ids_and_comments(family: tuple[Daemon, Family], busybox_tar: bytes) -> None:
    d, f = family
    rows = d.out("history", "--no-trunc", "-H=false", "--format", "{{.ID}}|{{.Size}}|{{.CreatedBy}}|{{.Comment}}",
                 f.child).splitlines()  # fmt: skip
    assert rows == [
        f"{f.child_id}|6|sh -c echo hello > /hello.txt|add hello",
        f"{f.base_id}|{_diff_size(busybox_tar)}||Imported from -",
    ]
    assert _inspect(d, f.base)["Size"] == _diff_size(busybox_tar)
    assert _inspect(d, f.child)["Size"] == _diff_size(busybox_tar) + 6
    # dockerd's inspect falls back to the last history entry's comment.
    assert _inspect(d, f.base)["Comment"] == "Imported from -"


def test_rmi_of_an_image_with_children(family: tuple[Daemon, Family]) -> None:
    d, f = family
    for args in (["rmi", f.base_id], ["rmi", "-f", f.base_id]):
        refused = d.docker(*args, check=False)
        assert refused.returncode != 0
        assert (f"conflict: unable to delete {f.base_id[7:19]} (cannot be forced) - image has dependent "
                "child images") in refused.stderr.decode()  # fmt: skip
    # By tag: untagged only, kept for its child; an intermediate image shows only with -a.
    assert d.out("rmi", f.base) == f"Untagged: {f.base}"
    assert f.base_id not in d.out("images", "-q", "--no-trunc").split()
    assert f.base_id in d.out("images", "-aq", "--no-trunc").split()
    assert f.base_id not in d.out("images", "-q", "--no-trunc", "-f", "dangling=true").split()
    # Deleting the child takes the untagged parent along, and lists the layers freed.
    base_layer = _inspect(d, f.child)["RootFS"]["Layers"][0]  # the bottom layer's chain id is its diff id
    lines = d.out("rmi", f.child).splitlines()
    assert lines[0] == f"Untagged: {f.child}"
    deleted = [line.removeprefix("Deleted: ") for line in lines[1:]]
    assert deleted[0] == f.child_id and f.base_id in deleted
    assert base_layer in deleted and len(deleted) == 4  # two images, two layers
    assert d.out("images", "-aq") == ""


def test_prune_all_untags_a_parent_it_cannot_delete(family: tuple[Daemon, Family]) -> None:
    d, f = family
    out = d.out("image", "prune", "-a", "-f", "--filter", "label!=tier=child")
    assert f"untagged: {f.base}" in out and "deleted:" not in out
    assert d.out("images", "-aq", "--no-trunc").split() == [f.child_id, f.base_id]
    out = d.out("image", "prune", "-a", "-f")
    assert f"untagged: {f.child}" in out and f"deleted: {f.base_id}" in out
    assert d.out("images", "-aq") == ""


def test_list_filters_as_dockerd(family: tuple[Daemon, Family]) -> None:
    d, f = family
    prefix = f.base.split("/")[0]

    def listed(*args: str) -> list[str]:
        return d.out("images", "--format", "{{.Repository}}:{{.Tag}}", *args).splitlines()

    assert sorted(listed("-f", f"reference={prefix}/*")) == sorted([f.base, f.child])
    assert listed("-f", f"reference={prefix}*") == []  # a * never crosses a /
    assert listed("-f", "reference=*/child:1") == [f.child]
    assert listed("-f", "until=2000-01-01") == []  # Go's date-only form
    assert sorted(listed("-f", "until=2100-01-01T10:00")) == sorted([f.base, f.child])
    assert d.out("images", "--format", "{{.Containers}}", f.child) == "N/A"  # only system df counts
    d.docker("create", "--name", "user", f.child)
    usage = json.loads(d.out("system", "df", "-v", "--format", "{{json .Images}}"))
    assert {i["Repository"] + ":" + i["Tag"]: i["Containers"] for i in usage}[f.child] == "1"


def test_save_and_load_keep_the_parent_link(family: tuple[Daemon, Family],
                                            daemon_factory: Callable[..., Daemon]) -> None:  # fmt: skip
    d, f = family
    archive = d.docker("save", f.child, f.base).stdout
    manifest = json.loads(_member(archive, "manifest.json"))
    assert {m["RepoTags"][0]: m.get("Parent") for m in manifest} == {f.child: f.base_id, f.base: None}
    alone = json.loads(_member(d.docker("save", f.child).stdout, "manifest.json"))
    assert "Parent" not in alone[0]  # written only when the parent is in the archive too
    other = daemon_factory()
    other.docker("load", input=archive)
    assert _inspect(other, f.child)["Parent"] == f.base_id
    ids = other.out("history", "--no-trunc", "--format", "{{.ID}}", f.child).splitlines()
    assert ids == [f.child_id, f.base_id]


def _member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_rmi_by_digest_and_a_tag_taking_its_repository_digest(
    daemon_factory: Callable[..., Daemon], registry: TestRegistry
) -> None:
    d = daemon_factory()
    u = _uid()
    pushed = registry.push_image(f"rmi/{u}", "1", [layer_tar({"x": b"x\n"})])
    repo = f"{registry.host}/rmi/{u}"
    d.docker("pull", f"{repo}:1")
    d.docker("tag", f"{repo}:1", f"keep-{u}:1")
    assert d.out("images", "--digests", "--format", "{{.Tag}} {{.Digest}}", repo) == f"1 {pushed.digest}"
    # By digest: that name only.
    assert d.out("rmi", f"{repo}@{pushed.digest}") == f"Untagged: {repo}@{pushed.digest}"
    assert _inspect(d, f"{repo}:1")["RepoDigests"] == []
    d.docker("pull", f"{repo}:1")  # the digest again
    # The repository's last tag takes its digest along; another repository's tag keeps the image.
    assert d.out("rmi", f"{repo}:1").splitlines() == [f"Untagged: {repo}:1", f"Untagged: {repo}@{pushed.digest}"]
    info = _inspect(d, f"keep-{u}:1")
    assert info["Id"] == pushed.config_digest and info["RepoDigests"] == []


def test_inspect_config_is_the_oci_shape_from_api_1_50(family: tuple[Daemon, Family]) -> None:
    d, f = family
    api = d.client().api
    new = api.get(f"{api.base_url}/v1.50/images/{f.child}/json", timeout=30).json()["Config"]
    assert "Hostname" not in new and "AttachStdout" not in new and new["Labels"] == {"tier": "child"}
    old = api.get(f"{api.base_url}/v1.49/images/{f.child}/json", timeout=30).json()["Config"]
    assert old["Hostname"] == "" and old["AttachStdout"] is False and old["Labels"] == {"tier": "child"}
