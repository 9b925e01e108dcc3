"""The docker CLI on images: import, list, inspect, tag, rmi, save/load, history, persistence.

Destructive tests work on images imported under unique names (never on the shared
`busybox` tag), or on a private daemon from `daemon_factory`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker.errors
import pytest

from tests.conftest import Daemon


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )


def _import(d: Daemon, tar: bytes, ref: str = "", *changes: str, message: str = "") -> str:
    """`docker import -` the tar (with --change/-m); returns the image id (sha256:...)."""
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    if message:
        args += ["-m", message]
    args.append("-")
    if ref:
        args.append(ref)
    image_id = d.out(*args, input=tar)
    assert image_id.startswith("sha256:") and len(image_id) == 71, image_id
    return image_id


def _inspect(d: Daemon, ref: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(d.out("image", "inspect", ref))[0]
    return info


def _rmi(d: Daemon, *refs: str) -> None:
    d.docker("rmi", "-f", *refs, check=False)


@pytest.fixture
def own_image(daemon: Daemon, busybox_tar: bytes) -> Iterator[tuple[str, str]]:
    """A busybox image of this test's own (unique comment -> unique id), tagged uniquely."""
    ref = f"dy-img-{_uid()}:1"
    image_id = _import(daemon, busybox_tar, ref, 'CMD ["sh"]', message=f"own {ref}")
    try:
        yield ref, image_id
    finally:
        _rmi(daemon, image_id)


# ---------------------------------------------------------------------------------------------
# import


def test_import_with_changes_and_message(daemon: Daemon, busybox_tar: bytes) -> None:
    ref = f"dy-imported-{_uid()}:v1"
    image_id = _import(
        daemon, busybox_tar, ref,
        'CMD ["echo","x"]', "ENV A=1", "WORKDIR /w", "LABEL k=v",
        message="imported for a test",
    )  # fmt: skip
    try:
        info = _inspect(daemon, ref)
        assert info["Id"] == image_id
        assert info["RepoTags"] == [ref]
        assert info["Comment"] == "imported for a test"
        config = info["Config"]
        assert config["Cmd"] == ["echo", "x"]
        assert "A=1" in config["Env"]
        assert config["WorkingDir"] == "/w"
        assert config["Labels"] == {"k": "v"}
        assert daemon.docker("run", "--rm", ref).stdout == b"x\n"
        out = daemon.docker("run", "--rm", ref, "sh", "-c", 'echo "$A $(pwd)"').stdout
        assert out == b"1 /w\n"
    finally:
        _rmi(daemon, image_id)
    assert daemon.docker("image", "inspect", ref, check=False).returncode != 0


def test_import_of_garbage_fails_and_leaves_no_image(daemon: Daemon) -> None:
    ref = f"dy-garbage-{_uid()}:1"
    before = daemon.out("images", "-aq", "--no-trunc").split()
    result = daemon.docker(
        "import", "-", ref, input=b"this is not a tar archive\n" * 100, check=False
    )
    assert result.returncode != 0
    assert b"Error" in result.stderr
    assert daemon.docker("image", "inspect", ref, check=False).returncode != 0
    assert daemon.out("images", "-aq", "--no-trunc").split() == before


def test_import_more_changes_and_compressed_input(daemon: Daemon, busybox_tar: bytes) -> None:
    ref = f"dy-gz-{_uid()}:1"
    image_id = _import(
        daemon, gzip.compress(busybox_tar), ref,
        "EXPOSE 80", 'ENTRYPOINT ["/bin/echo","pre"]', "USER nobody", "VOLUME /data", "STOPSIGNAL SIGINT",
    )  # fmt: skip
    try:
        config = _inspect(daemon, ref)["Config"]
        assert config["ExposedPorts"] == {"80/tcp": {}}
        assert config["Entrypoint"] == ["/bin/echo", "pre"]
        assert config["User"] == "nobody"
        assert config["Volumes"] == {"/data": {}}
        assert config["StopSignal"] == "SIGINT"
        assert _inspect(daemon, ref)["Comment"] == "Imported from -"
        assert daemon.docker("run", "--rm", ref, "post").stdout == b"pre post\n"
    finally:
        _rmi(daemon, image_id)


def test_import_with_an_invalid_change_is_refused(daemon: Daemon, busybox_tar: bytes) -> None:
    ref = f"dy-badchange-{_uid()}:1"
    before = daemon.out("images", "-aq", "--no-trunc").split()
    result = daemon.docker(
        "import", "--change", "FROM scratch", "-", ref, input=busybox_tar, check=False
    )
    assert result.returncode != 0
    assert b"is not a valid change command" in result.stderr
    assert daemon.docker("image", "inspect", ref, check=False).returncode != 0
    assert daemon.out("images", "-aq", "--no-trunc").split() == before


# ---------------------------------------------------------------------------------------------
# images / image inspect


def test_images_lists_repo_tag_and_size(
    daemon: Daemon, busybox: str, own_image: tuple[str, str]
) -> None:
    ref, image_id = own_image
    repo, tag = ref.split(":")
    rows = daemon.out(
        "images", "--format", "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"
    ).splitlines()
    mine = [row.split("\t") for row in rows if row.startswith(repo + "\t")]
    assert len(mine) == 1
    assert mine[0][:3] == [repo, tag, image_id[7:19]]
    assert mine[0][3].endswith("MB") or mine[0][3].endswith("kB")
    # the shared busybox image is listed too
    assert any(row.startswith("busybox\tlatest\t") for row in rows)


def test_images_reference_filter_and_quiet(daemon: Daemon, busybox_tar: bytes) -> None:
    prefix = f"dy-ref-{_uid()}"
    a = _import(daemon, busybox_tar, f"{prefix}-a:1", message="a")
    b = _import(daemon, busybox_tar, f"{prefix}-b:2", message="b")
    try:
        listed = daemon.out(
            "images", "--filter", f"reference={prefix}-*", "--format", "{{.Repository}}:{{.Tag}}"
        )
        assert sorted(listed.splitlines()) == [f"{prefix}-a:1", f"{prefix}-b:2"]
        listed = daemon.out(
            "images", "--filter", f"reference={prefix}-b", "--format", "{{.Repository}}:{{.Tag}}"
        )
        assert listed == f"{prefix}-b:2"
        listed = daemon.out(
            "images", "--filter", f"reference={prefix}-a:1", "--format", "{{.Repository}}:{{.Tag}}"
        )
        assert listed == f"{prefix}-a:1"
        assert daemon.out("images", "-q", "--filter", f"reference={prefix}-a:2") == ""
        quiet = daemon.out("images", "-q", "--filter", f"reference={prefix}-*").split()
        assert sorted(quiet) == sorted([a[7:19], b[7:19]])
        full = daemon.out("images", "-q", "--no-trunc", "--filter", f"reference={prefix}-*").split()
        assert sorted(full) == sorted([a, b])
    finally:
        _rmi(daemon, a, b)


def test_images_dangling_filter(daemon: Daemon, busybox_tar: bytes) -> None:
    dangling = _import(daemon, busybox_tar, message=f"dangling {_uid()}")  # no repository: untagged
    tagged = _import(daemon, busybox_tar, f"dy-notdangling-{_uid()}:1", message="tagged")
    try:
        ids = daemon.out("images", "-q", "--no-trunc", "--filter", "dangling=true").split()
        assert dangling in ids
        assert tagged not in ids
        rows = daemon.out(
            "images",
            "--no-trunc",
            "--filter",
            "dangling=true",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        )
        assert f"<none>:<none> {dangling}" in rows.splitlines()
        not_dangling = daemon.out(
            "images", "-q", "--no-trunc", "--filter", "dangling=false"
        ).split()
        assert tagged in not_dangling
        assert dangling not in not_dangling
        assert _inspect(daemon, dangling)["RepoTags"] == []
    finally:
        _rmi(daemon, dangling, tagged)


def test_images_before_and_since_filters(daemon: Daemon, busybox_tar: bytes) -> None:
    prefix = f"dy-order-{_uid()}"
    first = _import(daemon, busybox_tar, f"{prefix}-1:x", message="1")
    second = _import(daemon, busybox_tar, f"{prefix}-2:x", message="2")
    third = _import(daemon, busybox_tar, f"{prefix}-3:x", message="3")
    try:

        def listed(*filters: str) -> list[str]:
            args = ["images", "--format", "{{.Repository}}", "--filter", f"reference={prefix}-*"]
            for f in filters:
                args += ["--filter", f]
            return daemon.out(*args).split()

        assert listed() == [f"{prefix}-3", f"{prefix}-2", f"{prefix}-1"]  # newest first
        assert listed(f"since={prefix}-1:x") == [f"{prefix}-3", f"{prefix}-2"]
        assert listed(f"before={prefix}-3:x") == [f"{prefix}-2", f"{prefix}-1"]
        assert listed(f"since={prefix}-1:x", f"before={third}") == [f"{prefix}-2"]
    finally:
        _rmi(daemon, first, second, third)


def test_image_inspect_fields(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    info = _inspect(daemon, ref)
    assert info["Id"] == image_id
    assert info["RepoTags"] == [ref]
    assert info["Os"] == "linux"
    assert info["Architecture"] == _arch()
    assert info["Size"] > 1_000_000  # busybox-static alone is over 1 MB
    assert info["RootFS"]["Type"] == "layers"
    layers = info["RootFS"]["Layers"]
    assert len(layers) == 1 and layers[0].startswith("sha256:") and len(layers[0]) == 71
    assert info["Created"].startswith("20")
    # by id, by short id, by full name
    assert _inspect(daemon, image_id)["Id"] == image_id
    assert _inspect(daemon, image_id[7:19])["Id"] == image_id
    assert _inspect(daemon, f"docker.io/library/{ref}")["Id"] == image_id
    assert (
        daemon.out("image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", ref) == f"linux/{_arch()}"
    )


def test_image_inspect_of_missing_image(daemon: Daemon) -> None:
    name = f"dy-missing-{_uid()}:1"
    result = daemon.docker("image", "inspect", name, check=False)
    assert result.returncode != 0
    assert b"No such image" in result.stderr
    assert name.encode() in result.stderr


# ---------------------------------------------------------------------------------------------
# tag / rmi


def test_tag_short_and_fully_qualified(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    u = _uid()
    short, qualified, registry, bare = (
        f"dy-t-{u}:s",
        f"docker.io/library/dy-tq-{u}:q",
        f"localhost:5000/ns/dy-tr-{u}:r",
        f"dy-tb-{u}",
    )
    try:
        for new in (short, qualified, registry, bare):
            daemon.docker("tag", ref, new)
        tags = set(_inspect(daemon, image_id)["RepoTags"])
        assert tags == {ref, short, f"dy-tq-{u}:q", registry, f"{bare}:latest"}
        for name in (short, qualified, f"dy-tq-{u}:q", registry, bare, f"{bare}:latest"):
            assert _inspect(daemon, name)["Id"] == image_id, name
    finally:
        _rmi(daemon, short, f"dy-tq-{u}:q", registry, bare)
    assert _inspect(daemon, image_id)["RepoTags"] == [ref]


def test_reference_filter_shows_only_the_matching_tags(
    daemon: Daemon, own_image: tuple[str, str]
) -> None:
    ref, _ = own_image
    registry = f"localhost:5000/ns/dy-tr-{_uid()}"
    daemon.docker("tag", ref, f"{registry}:r")
    listed = daemon.out(
        "images", "--filter", f"reference={registry}", "--format", "{{.Repository}} {{.Tag}}"
    )
    assert listed == f"{registry} r"  # dockerd keeps only the tags that match in RepoTags
    listed = daemon.out(
        "images", "--filter", f"reference={ref}", "--format", "{{.Repository}}:{{.Tag}}"
    )
    assert listed == ref


def test_tag_of_missing_image(daemon: Daemon) -> None:
    target = f"dy-x-{_uid()}:1"
    result = daemon.docker("tag", f"dy-missing-{_uid()}:1", target, check=False)
    assert result.returncode != 0
    assert b"No such image" in result.stderr
    assert daemon.docker("image", "inspect", target, check=False).returncode != 0


def test_tag_moves_between_images(daemon: Daemon, busybox_tar: bytes) -> None:
    u = _uid()
    a = _import(daemon, busybox_tar, f"dy-move-a-{u}:1", message="a")
    b = _import(daemon, busybox_tar, f"dy-move-b-{u}:1", message="b")
    moving = f"dy-moving-{u}:latest"
    try:
        assert a != b
        daemon.docker("tag", a, moving)
        assert _inspect(daemon, moving)["Id"] == a
        daemon.docker("tag", b, moving)
        assert _inspect(daemon, moving)["Id"] == b
        assert _inspect(daemon, a)["RepoTags"] == [f"dy-move-a-{u}:1"]
        assert sorted(_inspect(daemon, b)["RepoTags"]) == sorted([f"dy-move-b-{u}:1", moving])
    finally:
        _rmi(daemon, a, b)


def test_tag_move_can_leave_an_image_dangling(daemon: Daemon, busybox_tar: bytes) -> None:
    u = _uid()
    moving = f"dy-dangle-{u}:1"
    a = _import(daemon, busybox_tar, moving, message="first")
    b = _import(daemon, busybox_tar, message="second")
    try:
        daemon.docker("tag", b, moving)
        assert _inspect(daemon, moving)["Id"] == b
        assert _inspect(daemon, a)["RepoTags"] == []
        assert a in daemon.out("images", "-q", "--no-trunc", "--filter", "dangling=true").split()
    finally:
        _rmi(daemon, a, b)


def test_rmi_of_one_tag_only_untags(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    other = f"dy-other-{_uid()}:2"
    daemon.docker("tag", ref, other)
    result = daemon.docker("rmi", other)
    assert result.stdout.decode().splitlines() == [f"Untagged: {other}"]
    assert _inspect(daemon, ref)["Id"] == image_id
    assert _inspect(daemon, image_id)["RepoTags"] == [ref]
    assert daemon.docker("image", "inspect", other, check=False).returncode != 0


def test_rmi_of_last_tag_deletes_the_image(daemon: Daemon, busybox_tar: bytes) -> None:
    ref = f"dy-last-{_uid()}:1"
    image_id = _import(daemon, busybox_tar, ref, message="last")
    try:
        lines = daemon.out("rmi", ref).splitlines()
        assert lines[0] == f"Untagged: {ref}"
        assert f"Deleted: {image_id}" in lines
        result = daemon.docker("image", "inspect", image_id, check=False)
        assert result.returncode != 0 and b"No such image" in result.stderr
        again = daemon.docker("rmi", ref, check=False)
        assert again.returncode != 0 and b"No such image" in again.stderr
    finally:
        _rmi(daemon, image_id)


def test_rmi_of_image_used_by_stopped_container(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    name = f"dy-user-{_uid()}"
    cid = daemon.out("create", "--name", name, ref, "echo", "still-here")
    try:
        result = daemon.docker("rmi", ref, check=False)
        assert result.returncode != 0
        err = result.stderr.decode()
        assert "conflict" in err
        assert "(must force)" in err
        assert "is using its referenced image" in err
        assert cid[:12] in err
        assert _inspect(daemon, ref)["Id"] == image_id  # nothing was untagged

        # by id, without force: the stopped container is a (soft) conflict
        result = daemon.docker("rmi", image_id[7:19], check=False)
        assert result.returncode != 0
        assert b"conflict" in result.stderr and b"must be forced" in result.stderr
        assert _inspect(daemon, ref)["Id"] == image_id

        # -f untags; the container keeps its filesystem and still runs
        result = daemon.docker("rmi", "-f", ref)
        assert f"Untagged: {ref}" in result.stdout.decode().splitlines()
        assert daemon.docker("image", "inspect", ref, check=False).returncode != 0
        assert daemon.docker("start", "-a", name).stdout == b"still-here\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_rmi_of_image_used_by_running_container(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    name = f"dy-runner-{_uid()}"
    cid = daemon.out("run", "-d", "--name", name, ref, "sleep", "60")
    try:
        result = daemon.docker("rmi", ref, check=False)
        assert result.returncode != 0
        assert b"(must force)" in result.stderr
        result = daemon.docker("rmi", "-f", image_id, check=False)
        assert result.returncode != 0
        err = result.stderr.decode()
        assert "(cannot be forced)" in err
        assert "image is being used by running container" in err
        assert cid[:12] in err
        assert _inspect(daemon, image_id)["Id"] == image_id
        assert daemon.out("inspect", "-f", "{{.State.Running}}", name) == "true"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_rmi_by_short_id_with_several_tags(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    other = f"dy-second-{_uid()}:1"
    daemon.docker("tag", ref, other)
    result = daemon.docker("rmi", image_id[7:19], check=False)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "conflict" in err
    assert "must be forced" in err
    assert "image is referenced in multiple repositories" in err
    assert sorted(_inspect(daemon, image_id)["RepoTags"]) == sorted([ref, other])
    # with -f every tag goes, then the image
    lines = daemon.out("rmi", "-f", image_id[7:19]).splitlines()
    assert sorted(line for line in lines if line.startswith("Untagged: ")) == sorted(
        [f"Untagged: {ref}", f"Untagged: {other}"]
    )
    assert f"Deleted: {image_id}" in lines
    assert daemon.docker("image", "inspect", image_id, check=False).returncode != 0


def test_rmi_of_missing_image(daemon: Daemon) -> None:
    name = f"dy-nothere-{_uid()}:1"
    result = daemon.docker("rmi", name, check=False)
    assert result.returncode != 0
    assert b"No such image" in result.stderr


# ---------------------------------------------------------------------------------------------
# save / load


def _members(archive: bytes) -> dict[str, bytes]:
    """The regular files of a tar archive, by name."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None:
                out[member.name] = f.read()
    return out


def test_save_writes_a_docker_archive(daemon: Daemon, own_image: tuple[str, str]) -> None:
    ref, image_id = own_image
    archive = daemon.docker("save", ref).stdout
    files = _members(archive)
    assert "manifest.json" in files and "index.json" in files
    manifest = json.loads(files["manifest.json"])
    assert len(manifest) == 1
    assert manifest[0]["RepoTags"] == [ref]
    config_path = manifest[0]["Config"]
    assert config_path == f"blobs/sha256/{image_id[7:]}"
    config = files[config_path]
    assert config is not None and hashlib.sha256(config).hexdigest() == image_id[7:]
    assert json.loads(config)["rootfs"]["diff_ids"] == _inspect(daemon, ref)["RootFS"]["Layers"]
    assert len(manifest[0]["Layers"]) == 1
    layer = files[manifest[0]["Layers"][0]]
    assert layer is not None
    assert any(name.startswith("blobs/sha256/") for name in files)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert "bin/busybox" in tar.getnames()
    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    assert len(index["manifests"]) == 1
    names = index["manifests"][0].get("annotations", {})
    assert names.get("io.containerd.image.name") == f"docker.io/library/{ref}"


def test_save_of_missing_image_fails(daemon: Daemon) -> None:
    result = daemon.docker("save", f"dy-missing-{_uid()}:1", check=False)
    assert result.returncode != 0
    assert b"No such image" in result.stderr


def test_save_two_images_in_one_archive(daemon: Daemon, busybox_tar: bytes) -> None:
    u = _uid()
    a = _import(daemon, busybox_tar, f"dy-save-a-{u}:1", message="a")
    b = _import(daemon, busybox_tar, f"dy-save-b-{u}:2", 'CMD ["echo","from-b"]', message="b")
    try:
        files = _members(daemon.docker("save", f"dy-save-a-{u}:1", f"dy-save-b-{u}:2").stdout)
        manifest = json.loads(files["manifest.json"])
        assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == [
            f"dy-save-a-{u}:1",
            f"dy-save-b-{u}:2",
        ]
        assert sorted(entry["Config"] for entry in manifest) == sorted(
            [f"blobs/sha256/{a[7:]}", f"blobs/sha256/{b[7:]}"]
        )
        # the two share their layer: it is stored once
        assert manifest[0]["Layers"] == manifest[1]["Layers"]
        assert len(json.loads(files["index.json"])["manifests"]) == 2
    finally:
        _rmi(daemon, a, b)


def test_save_by_id_loads_untagged_and_compressed_load(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], own_image: tuple[str, str]
) -> None:
    _, image_id = own_image
    archive = daemon.docker("save", image_id[7:19]).stdout
    manifest = json.loads(_members(archive)["manifest.json"])
    assert len(manifest) == 1 and not manifest[0]["RepoTags"]
    other = daemon_factory()
    result = other.docker("load", input=gzip.compress(archive))
    assert result.stdout.decode().strip() == f"Loaded image ID: {image_id}"
    assert _inspect(other, image_id)["RepoTags"] == []
    assert other.docker("run", "--rm", image_id, "echo", "untagged-ok").stdout == b"untagged-ok\n"


def test_save_load_round_trip_into_another_daemon(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    u = _uid()
    ref, extra = f"dy-trip-{u}:1", f"dy-trip-{u}:extra"
    image_id = _import(
        daemon, busybox_tar, ref, 'CMD ["echo","round-trip"]', "ENV TRIP=1", message="trip"
    )
    try:
        daemon.docker("tag", ref, extra)
        archive = daemon.docker("save", ref, extra).stdout
    finally:
        _rmi(daemon, image_id)
    other = daemon_factory()
    result = other.docker("load", input=archive)
    loaded = sorted(result.stdout.decode().splitlines())
    assert loaded == sorted([f"Loaded image: {ref}", f"Loaded image: {extra}"])
    info = _inspect(other, ref)
    assert info["Id"] == image_id
    assert sorted(info["RepoTags"]) == sorted([ref, extra])
    assert "TRIP=1" in info["Config"]["Env"]
    assert other.docker("run", "--rm", ref).stdout == b"round-trip\n"
    assert other.docker("run", "--rm", extra, "echo", "ok").stdout == b"ok\n"
    # loading the same archive again is idempotent
    other.docker("load", "-q", input=archive)
    rows = other.out(
        "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"
    ).splitlines()
    assert sorted(rows) == sorted([f"{ref} {image_id}", f"{extra} {image_id}"])


def test_load_replaces_a_tag_held_by_another_image(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    d = daemon_factory()
    first = _import(d, busybox_tar, "dy-held:1", message="first")
    second = _import(d, busybox_tar, "dy-src:1", message="second")
    d.docker("tag", second, "dy-held:1")
    archive = d.docker("save", "dy-held:1").stdout
    d.docker("tag", first, "dy-held:1")
    assert _inspect(d, "dy-held:1")["Id"] == first
    d.docker("load", input=archive)
    assert _inspect(d, "dy-held:1")["Id"] == second
    assert _inspect(d, first)["RepoTags"] == []


def test_load_says_when_it_moves_a_tag(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    d = daemon_factory()
    first = _import(d, busybox_tar, "dy-held:1", message="first")
    second = _import(d, busybox_tar, message="second")
    d.docker("tag", second, "dy-held:1")
    archive = d.docker("save", "dy-held:1").stdout
    d.docker("tag", first, "dy-held:1")
    out = d.out("load", input=archive).splitlines()
    assert (
        f"The image dy-held:1 already exists, renaming the old one with ID {first} to empty string"
        in out
    )
    assert "Loaded image: dy-held:1" in out


def _legacy_archive(rootfs: bytes, repo_tag: str) -> tuple[bytes, str]:
    """A docker 20.10-style `docker save` archive: <layerid>/layer.tar, <confighex>.json, manifest.json."""
    diff_id = "sha256:" + hashlib.sha256(rootfs).hexdigest()
    config = json.dumps({
        "architecture": _arch(),
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "comment": "legacy",
        "config": {"Cmd": ["echo", "legacy-ok"], "Env": ["PATH=/bin", "LEGACY=1"], "WorkingDir": "/tmp"},
        "container_config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-02T03:04:05Z", "comment": "legacy"}],
    }, separators=(",", ":")).encode()  # fmt: skip
    config_hex = hashlib.sha256(config).hexdigest()
    layer_id = hashlib.sha256(b"legacy-layer" + rootfs[:64]).hexdigest()
    repo, tag = repo_tag.rsplit(":", 1)
    files = [
        (f"{layer_id}/", None),
        (f"{layer_id}/VERSION", b"1.0"),
        (f"{layer_id}/json", json.dumps({"id": layer_id, "os": "linux"}).encode()),
        (f"{layer_id}/layer.tar", rootfs),
        (f"{config_hex}.json", config),
        (
            "manifest.json",
            json.dumps(
                [
                    {
                        "Config": f"{config_hex}.json",
                        "RepoTags": [repo_tag],
                        "Layers": [f"{layer_id}/layer.tar"],
                    }
                ]
            ).encode(),
        ),
        ("repositories", json.dumps({repo: {tag: layer_id}}).encode()),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name.rstrip("/"))
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), "sha256:" + config_hex


def test_load_legacy_archive(daemon_factory: Callable[..., Daemon], busybox_tar: bytes) -> None:
    d = daemon_factory()
    archive, image_id = _legacy_archive(busybox_tar, "legacy/bb:20.10")
    result = d.docker("load", input=archive)
    assert result.stdout.decode().strip() == "Loaded image: legacy/bb:20.10"
    info = _inspect(d, "legacy/bb:20.10")
    assert info["Id"] == image_id
    assert info["RepoTags"] == ["legacy/bb:20.10"]
    assert info["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(busybox_tar).hexdigest()]
    assert d.docker("run", "--rm", "legacy/bb:20.10").stdout == b"legacy-ok\n"
    out = d.docker("run", "--rm", "legacy/bb:20.10", "sh", "-c", 'echo "$LEGACY $(pwd)"').stdout
    assert out == b"1 /tmp\n"


def test_load_of_garbage_fails_clearly(daemon: Daemon) -> None:
    before = daemon.out("images", "-aq", "--no-trunc").split()
    result = daemon.docker("load", input=b"garbage, not a tar\n" * 200, check=False)
    assert result.returncode != 0
    # the error arrives inside the load stream; the CLI prints its message
    err = result.stderr.decode()
    assert "not a tar archive" in err or "invalid tar header" in err, err
    assert "Traceback" not in err
    # a tar that is an archive but not an image archive
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    result = daemon.docker("load", input=buf.getvalue(), check=False)
    assert result.returncode != 0
    assert (
        b"manifest.json" in result.stderr
        or b"repositories" in result.stderr
        or b"index.json" in result.stderr
    )
    assert daemon.out("images", "-aq", "--no-trunc").split() == before


def test_load_of_archive_with_a_missing_layer_fails(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    d = daemon_factory()
    archive, _ = _legacy_archive(busybox_tar, "broken/bb:1")
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for member in src.getmembers():
            if member.name.endswith("layer.tar"):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    result = d.docker("load", input=out.getvalue(), check=False)
    assert result.returncode != 0
    assert b"layer.tar" in result.stderr and b"not found" in result.stderr
    assert d.out("images", "-aq") == ""


# ---------------------------------------------------------------------------------------------
# history, persistence


def test_history_shows_the_import(daemon: Daemon, busybox_tar: bytes) -> None:
    ref = f"dy-hist-{_uid()}:1"
    image_id = _import(daemon, busybox_tar, ref, message="history comment")
    try:
        rows = daemon.out(
            "history", "--no-trunc", "--format", "{{.ID}}\t{{.Comment}}\t{{.Size}}", ref
        ).splitlines()
        assert len(rows) >= 1
        top_id, comment, size = rows[0].split("\t")
        assert top_id == image_id
        assert comment == "history comment"
        assert size != "0B"
        table = daemon.out("history", ref).splitlines()
        assert table[0].split()[:2] == ["IMAGE", "CREATED"]
        assert len(table) >= 2
        result = daemon.docker("history", f"dy-missing-{_uid()}", check=False)
        assert result.returncode != 0 and b"No such image" in result.stderr
    finally:
        _rmi(daemon, image_id)


def test_images_survive_a_daemon_restart(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    d = daemon_factory()
    image_id = _import(
        d,
        busybox_tar,
        "dy-persist:1",
        'CMD ["echo","persisted"]',
        "LABEL keep=yes",
        message="persist",
    )
    d.docker("tag", "dy-persist:1", "dy-persist:alias")
    dangling = _import(d, busybox_tar, message="persist dangling")
    d.stop()
    d.start()
    listed = d.out("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines()
    assert sorted(listed) == sorted(
        [
            f"dy-persist:1 {image_id[7:19]}",
            f"dy-persist:alias {image_id[7:19]}",
            f"<none>:<none> {dangling[7:19]}",
        ]
    )
    info = _inspect(d, "dy-persist:1")
    assert info["Id"] == image_id
    assert info["Config"]["Labels"] == {"keep": "yes"}
    assert info["Comment"] == "persist"
    assert d.docker("run", "--rm", "dy-persist:alias").stdout == b"persisted\n"


def test_a_tag_naming_a_digest_is_refused(daemon_factory: Callable[..., Daemon], busybox_tar: bytes) -> None:
    """dockerd's 400s: else `run bb@sha256:<any>` would run whatever had been tagged so."""
    d = daemon_factory()
    image_id = _import(d, busybox_tar, "dy-digtag:1")
    digest = "sha256:" + "ab" * 32
    with pytest.raises(docker.errors.APIError) as caught:
        d.client().api.tag(image_id, f"dy-digtag@{digest}")
    assert caught.value.status_code == 400
    assert "refusing to create a tag with a digest reference" in caught.value.explanation
    assert _inspect(d, image_id)["RepoTags"] == ["dy-digtag:1"]
    layers = sorted(os.listdir(d.data_root / "overlay"))
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:  # a layer not stored yet
        info = tarfile.TarInfo("only-here")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"new"))
    archive, _ = _legacy_archive(layer.getvalue(), f"dy-digload@{digest}")
    result = d.docker("load", input=archive, check=False)
    assert result.returncode != 0
    assert f'invalid tag "dy-digload@{digest}"' in result.stderr.decode()
    assert sorted(os.listdir(d.data_root / "overlay")) == layers  # no layer, no image left
    assert d.out("images", "-aq", "--no-trunc").split() == [image_id]


def test_a_bad_archive_is_an_error_in_the_load_stream(daemon: Daemon) -> None:
    """As dockerd: a 200 whose stream carries the error, so docker-py raises ImageLoadError."""
    api = daemon.client().api
    response = api._post(api._url("/images/load"), data=b"abc", params={"quiet": "1"})
    assert response.status_code == 200
    [line] = [json.loads(raw) for raw in response.text.splitlines() if raw.strip()]
    assert "unexpected EOF" in line["error"] and line["errorDetail"]["message"] == line["error"]
    with pytest.raises(docker.errors.ImageLoadError):
        daemon.client().images.load(b"abc")
    # A bad parameter is still an error status.
    bad = api._post(api._url("/images/load"), data=b"abc", params={"platform": "linux"})
    assert bad.status_code == 400 and "failed to parse platform" in bad.json()["message"]
