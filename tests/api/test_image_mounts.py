"""`--mount type=image` (API 1.48): another image's filesystem, read-only, at a path; with
`image-subpath=`, only a part of it. Driven by the docker CLI and docker-py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import Daemon

# A second layer over busybox (committed): a file, a directory, and symlinks that stay inside
# the image (hack/good) or lead out of it (hack/root -> /, hack/bad -> root).
_SECOND_LAYER = (
    "echo bar > /foo && mkdir /subdir /hack && echo world > /subdir/hello"
    " && ln -s ../subdir /hack/good && ln -s / /hack/root && ln -s root /hack/bad"
)


def _tag(what: str) -> str:
    return f"dyimg-{what}-{os.urandom(3).hex()}"


@pytest.fixture(scope="module")
def layered(daemon: Daemon, busybox: str) -> Iterator[str]:
    """An image of two layers: its mount is an overlay."""
    tag = _tag("layered")
    maker = _tag("maker")
    daemon.docker("run", "--name", maker, busybox, "sh", "-c", _SECOND_LAYER)
    daemon.docker("commit", maker, tag)
    daemon.docker("rm", maker)
    yield tag
    daemon.docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def flat(daemon: Daemon) -> Iterator[str]:
    """An image of one layer: its mount is a read-only bind of that layer."""
    tag = _tag("flat")
    daemon.docker("import", "-", tag, input=_one_file_tar(b"one layer\n"))
    yield tag
    daemon.docker("rmi", "-f", tag, check=False)


def _one_file_tar(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("only.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _staged_under(daemon: Daemon) -> list[str]:
    """Mount points under the daemon's container run dirs (exec root)."""
    prefix = str(daemon.exec_root / "containers") + "/"
    with open("/proc/self/mountinfo") as f:
        return [p for line in f if (p := line.split()[4]).startswith(prefix)]


def _run(daemon: Daemon, *args: str) -> str:
    return daemon.out("run", "--rm", *args)


def test_an_image_of_layers_is_mounted_read_only(daemon: Daemon, busybox: str, layered: str) -> None:
    mount = f"type=image,source={layered},target=/image"
    assert _run(daemon, "--mount", mount, busybox, "cat", "/image/foo", "/image/subdir/hello") == "bar\nworld"
    # Its busybox too: every layer is there, the top one over the lower.
    assert _run(daemon, "--mount", mount, busybox, "ls", "/image/bin/busybox") == "/image/bin/busybox"
    wrote = daemon.docker("run", "--rm", "--mount", mount, busybox, "touch", "/image/new", check=False)
    assert wrote.returncode != 0
    assert "Read-only file system" in wrote.stderr.decode()
    assert _staged_under(daemon) == []


def test_a_one_layer_image_is_mounted_read_only(daemon: Daemon, busybox: str, flat: str) -> None:
    mount = f"type=image,source={flat},target=/image"
    assert _run(daemon, "--mount", mount, busybox, "cat", "/image/only.txt") == "one layer"
    wrote = daemon.docker("run", "--rm", "--mount", mount, busybox, "sh", "-c", "echo x > /image/only.txt", check=False)
    assert wrote.returncode != 0
    assert "Read-only file system" in wrote.stderr.decode()
    assert _staged_under(daemon) == []


@pytest.mark.parametrize(
    ("subpath", "command", "expected"),
    [
        ("subdir", ["ls", "/image"], "hello"),
        ("hack/good", ["ls", "/image"], "hello"),  # a symlink that stays inside the image
        ("subdir/hello", ["cat", "/image"], "world"),  # a file
    ],
)
def test_image_subpath(daemon: Daemon, busybox: str, layered: str, subpath: str, command: list[str], expected: str) -> None:
    mount = f"type=image,source={layered},target=/image,image-subpath={subpath}"
    assert _run(daemon, "--mount", mount, busybox, *command) == expected
    assert _staged_under(daemon) == []


@pytest.mark.parametrize(
    ("subpath", "status", "words"),
    [
        ("hack/bad", 400, "path concatenation escapes the base directory"),
        ("hack/root", 400, "path concatenation escapes the base directory"),
        ("not-existing-path", 404, "cannot access path"),
    ],
)
def test_a_bad_image_subpath_fails_the_start_and_leaves_nothing(
    daemon: Daemon, busybox: str, layered: str, subpath: str, status: int, words: str
) -> None:
    api = daemon.client().api
    host_config = {"Mounts": [{"Type": "image", "Source": layered, "Target": "/image",
                               "ImageOptions": {"Subpath": subpath}}]}  # fmt: skip
    created = api.create_container(busybox, ["ls", "/image"], host_config=host_config)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            api.start(created["Id"])
        assert caught.value.status_code == status
        assert words in caught.value.explanation
        assert _staged_under(daemon) == []
        assert not (daemon.exec_root / "containers" / created["Id"] / "mounts").exists()
    finally:
        api.remove_container(created["Id"], force=True)


def test_a_subpath_climbing_out_is_refused_at_create(daemon: Daemon, busybox: str, layered: str) -> None:
    made = daemon.docker("create", "--mount", f"type=image,source={layered},target=/image,image-subpath=../../etc/passwd",
                         busybox, check=False)  # fmt: skip
    assert made.returncode != 0
    assert "subpath must be a relative path within the volume" in made.stderr.decode()


def test_an_unknown_image_is_dockerds_404(daemon: Daemon, busybox: str) -> None:
    api = daemon.client().api
    before = {c["Id"] for c in api.containers(all=True)}
    with pytest.raises(docker.errors.APIError) as caught:
        api.create_container(busybox, ["true"], host_config={"Mounts": [
            {"Type": "image", "Source": "dy-no-such-image", "Target": "/image"}]})  # fmt: skip
    assert caught.value.status_code == 404
    assert "No such image: dy-no-such-image:latest" in caught.value.explanation
    assert {c["Id"] for c in api.containers(all=True)} == before
    cli = daemon.docker("run", "--rm", "--pull", "never", "--mount", "type=image,source=dy-no-such-image,target=/i",
                        busybox, "true", check=False)  # fmt: skip
    assert cli.returncode != 0
    assert "No such image: dy-no-such-image:latest" in cli.stderr.decode()


def test_below_api_1_48_an_image_mount_is_refused(daemon: Daemon, busybox: str, layered: str) -> None:
    api = docker.APIClient(base_url=daemon.host, version="1.47")
    with pytest.raises(docker.errors.APIError) as caught:
        api.create_container(busybox, ["true"], host_config={"Mounts": [
            {"Type": "image", "Source": layered, "Target": "/image"}]})  # fmt: skip
    assert caught.value.status_code == 400
    assert 'Mount type "Image" needs API v1.48 or newer' in caught.value.explanation


def test_inspect_shows_it_in_dockerds_shape(daemon: Daemon, busybox: str, layered: str) -> None:
    name = _tag("inspect")
    made = daemon.docker("run", "-d", "--name", name, "--mount", f"type=image,source={layered},target=/image",
                         busybox, "sleep", "300")  # fmt: skip
    assert "Image mount is an experimental feature" in made.stderr.decode()
    try:
        (doc,) = json.loads(daemon.out("inspect", name))
        (mount,) = doc["Mounts"]
        assert set(mount) == {"Type", "Name", "Source", "Destination", "Mode", "RW", "Propagation"}
        assert (mount["Type"], mount["Name"], mount["Destination"]) == ("image", layered, "/image")
        assert (mount["Mode"], mount["RW"], mount["Propagation"]) == ("", False, "rprivate")
        # Source: where the image's filesystem is mounted on the host while the container runs.
        assert Path(mount["Source"], "foo").read_text() == "bar\n"
        assert mount["Source"] in _staged_under(daemon)
        assert doc["HostConfig"]["Mounts"] == [{"Type": "image", "Source": layered, "Target": "/image"}]
        # docker cp reads the image where the container sees it, and cannot write there.
        with tarfile.open(fileobj=io.BytesIO(daemon.docker("cp", f"{name}:/image/foo", "-").stdout)) as copied:
            assert copied.extractfile("foo").read() == b"bar\n"  # type: ignore[union-attr]
        refused = daemon.docker("cp", "-", f"{name}:/image/", input=_one_file_tar(b"x"), check=False)
        assert refused.returncode != 0
        assert "mounted volume is marked read-only" in refused.stderr.decode()
        assert not Path(mount["Source"], "only.txt").exists()
        daemon.docker("stop", "-t", "0", name)
        assert _staged_under(daemon) == []
        daemon.docker("start", name)  # mounted again for the next run
        assert daemon.out("exec", name, "cat", "/image/foo") == "bar"
    finally:
        daemon.docker("rm", "-f", name)
    assert _staged_under(daemon) == []


def test_the_mounted_image_is_in_use(daemon: Daemon, busybox: str) -> None:
    tag = _tag("used")
    daemon.docker("import", "--change", f"LABEL dyimg={tag}", "-", tag, input=_one_file_tar(b"used\n"))
    image_id = daemon.out("image", "inspect", "-f", "{{.Id}}", tag)
    name = _tag("user")
    container_id = daemon.out("create", "--name", name, "--mount", f"type=image,source={tag},target=/image",
                              busybox, "true")  # fmt: skip
    try:
        refused = daemon.docker("rmi", tag, check=False)
        assert refused.returncode != 0
        assert f"container {container_id[:12]} is using its referenced image {image_id[7:19]}" in refused.stderr.decode()
        daemon.docker("image", "prune", "-a", "-f", "--filter", f"label=dyimg={tag}")
        assert daemon.out("image", "inspect", "-f", "{{.Id}}", tag) == image_id  # prune leaves it too
    finally:
        daemon.docker("rm", name)
    daemon.docker("rmi", tag)


def test_a_mount_of_a_removed_image_survives_as_dockerd_keeps_it(daemon: Daemon, busybox: str, flat: str) -> None:
    tag = _tag("forced")
    daemon.docker("tag", flat, tag)
    name = _tag("keeps")
    daemon.docker("create", "--name", name, "--mount", f"type=image,source={tag},target=/image", busybox,
                  "cat", "/image/only.txt")  # fmt: skip
    try:
        daemon.docker("rmi", "-f", tag)  # untagged only: the container keeps it
        daemon.docker("start", "-a", name)
        assert daemon.out("logs", name) == "one layer"
    finally:
        daemon.docker("rm", "-f", name)
    assert _staged_under(daemon) == []


def test_what_a_crash_left_staged_is_undone_at_start_up(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    container_id = d.out("create", "--mount", "type=image,source=busybox,target=/image", "busybox", "true")
    d.stop()
    # What a daemon killed mid-start would leave: the image mounted under the run dir.
    leftover = d.exec_root / "containers" / container_id / "mounts" / "0" / "image"
    leftover.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(leftover)], check=True, timeout=30)
    try:
        d.start()
        assert not leftover.exists()
        assert _staged_under(d) == []
    finally:
        subprocess.run(["umount", "-l", str(leftover)], check=False, capture_output=True, timeout=30)
