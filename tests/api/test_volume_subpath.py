"""`--mount type=volume,volume-subpath=` (VolumeOptions.Subpath, API 1.45): one part of a named
volume at the target, resolved inside the volume. Driven by the docker CLI and docker-py."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import Daemon

# The volume's tree (moby's own test of the feature has the same):
#   bar.txt ("foo"), bin/, subdir/hello.txt ("world"),
#   hack/root -> /, hack/good -> ../subdir, hack/bad -> root
_TREE = (
    "echo foo > /volume/bar.txt && mkdir /volume/bin /volume/subdir /volume/hack"
    " && echo world > /volume/subdir/hello.txt && ln -s / /volume/hack/root"
    " && ln -s ../subdir /volume/hack/good && ln -s root /volume/hack/bad"
)


def _name(what: str) -> str:
    return f"dysub-{what}-{os.urandom(3).hex()}"


@pytest.fixture
def volume(daemon: Daemon, busybox: str) -> Iterator[str]:
    name = _name("vol")
    daemon.docker("run", "--rm", "-v", f"{name}:/volume", busybox, "sh", "-c", _TREE)
    yield name
    daemon.docker("volume", "rm", "-f", name, check=False)


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _data(daemon: Daemon, volume: str) -> Path:
    return daemon.data_root / "volumes" / volume / "_data"


def _staged_under(daemon: Daemon) -> list[str]:
    prefix = str(daemon.exec_root / "containers") + "/"
    with open("/proc/self/mountinfo") as f:
        return [p for line in f if (p := line.split()[4]).startswith(prefix)]


@pytest.mark.parametrize(
    ("subpath", "target", "command", "expected"),
    [
        ("subdir", "/volume", ["ls", "/volume"], "hello.txt"),
        ("hack/good", "/volume", ["ls", "/volume"], "hello.txt"),  # a symlink that stays inside
        ("bar.txt", "/volume", ["cat", "/volume"], "foo"),  # a file
        ("bin", "/bin", ["ls", "/bin/busybox"], "/bin/busybox"),  # empty: the image's /bin copied up into it
    ],
)
def test_only_that_part_is_mounted(
    daemon: Daemon, busybox: str, volume: str, subpath: str, target: str, command: list[str], expected: str
) -> None:
    mount = f"type=volume,source={volume},target={target},volume-subpath={subpath}"
    assert daemon.out("run", "--rm", "--mount", mount, busybox, *command) == expected
    assert _staged_under(daemon) == []


def test_writes_land_in_the_part_and_rm_keeps_the_volume(daemon: Daemon, busybox: str, volume: str) -> None:
    name = _name("writer")
    mount = f"type=volume,source={volume},target=/part,volume-subpath=subdir"
    daemon.docker("run", "-d", "--name", name, "--mount", mount, busybox, "sh", "-c", "echo new > /part/new.txt; sleep 300")
    try:
        data = _data(daemon, volume)
        assert daemon.out("exec", name, "cat", "/part/new.txt") == "new"
        assert (data / "subdir" / "new.txt").read_text() == "new\n"
        assert not (data / "new.txt").exists()
        assert any(p.startswith(str(daemon.exec_root / "containers")) for p in _staged_under(daemon))
        # docker cp sees the part where the container does.
        daemon.docker("cp", "-", f"{name}:/part/", input=_tar_of("copied.txt", b"in\n"))
        assert (data / "subdir" / "copied.txt").read_text() == "in\n"
        assert not (data / "copied.txt").exists()
        assert daemon.out("exec", name, "cat", "/part/copied.txt") == "in"
    finally:
        daemon.docker("rm", "-f", name)  # a running container: its part is unmounted before its run dir goes
    assert _staged_under(daemon) == []
    assert (data / "subdir" / "hello.txt").read_text() == "world\n"
    assert (data / "subdir" / "new.txt").read_text() == "new\n"


def test_a_read_only_part_cannot_be_written(daemon: Daemon, busybox: str, volume: str) -> None:
    mount = f"type=volume,source={volume},target=/part,volume-subpath=subdir,readonly"
    wrote = daemon.docker("run", "--rm", "--mount", mount, busybox, "touch", "/part/x", check=False)
    assert wrote.returncode != 0
    assert "Read-only file system" in wrote.stderr.decode()
    assert not (_data(daemon, volume) / "subdir" / "x").exists()


@pytest.mark.parametrize(
    ("subpath", "status", "words"),
    [
        ("hack/root", 400, "path concatenation escapes the base directory"),  # -> / of the host
        ("hack/bad", 400, "path concatenation escapes the base directory"),
        ("not-existing-path", 404, "cannot access path"),
    ],
)
def test_a_bad_part_fails_the_start_and_leaves_nothing(
    daemon: Daemon, busybox: str, volume: str, subpath: str, status: int, words: str
) -> None:
    api = daemon.client().api
    mount = docker.types.Mount("/volume", volume, type="volume", subpath=subpath)
    created = api.create_container(busybox, ["ls", "/volume"], host_config=api.create_host_config(mounts=[mount]))
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            api.start(created["Id"])
        assert caught.value.status_code == status
        assert words in caught.value.explanation
        assert _staged_under(daemon) == []
        assert not (daemon.exec_root / "containers" / created["Id"] / "mounts").exists()
        assert api.inspect_container(created["Id"])["State"]["Running"] is False
    finally:
        api.remove_container(created["Id"], force=True)
    assert not (_data(daemon, volume) / "not-existing-path").exists()


def test_a_part_climbing_out_is_refused_at_create(daemon: Daemon, busybox: str, volume: str) -> None:
    made = daemon.docker("create", "--mount", f"type=volume,source={volume},target=/v,volume-subpath=../../../etc",
                         busybox, check=False)  # fmt: skip
    assert made.returncode != 0
    assert 'invalid mount config for type "volume": subpath must be a relative path within the volume' in made.stderr.decode()


def test_below_api_1_45_a_subpath_is_refused(daemon: Daemon, busybox: str, volume: str) -> None:
    api = docker.APIClient(base_url=daemon.host, version="1.44")
    with pytest.raises(docker.errors.APIError) as caught:
        api.create_container(busybox, ["true"], host_config={"Mounts": [
            {"Type": "volume", "Source": volume, "Target": "/v", "VolumeOptions": {"Subpath": "subdir"}}]})  # fmt: skip
    assert caught.value.status_code == 400
    assert "VolumeOptions.Subpath needs API v1.45 or newer" in caught.value.explanation


def test_inspect_shows_the_volume_and_the_subpath_asked(daemon: Daemon, busybox: str, volume: str) -> None:
    api = daemon.client().api
    mount = docker.types.Mount("/v", volume, type="volume", subpath="subdir")
    created = api.create_container(busybox, ["true"], host_config=api.create_host_config(mounts=[mount]))
    try:
        doc = api.inspect_container(created["Id"])
        (shown,) = doc["Mounts"]
        assert (shown["Type"], shown["Name"], shown["Destination"]) == ("volume", volume, "/v")
        assert shown["Source"] == str(_data(daemon, volume))  # as dockerd: the volume's own path
        assert doc["HostConfig"]["Mounts"] == [
            {"Type": "volume", "Source": volume, "Target": "/v", "VolumeOptions": {"Subpath": "subdir"}}
        ]
    finally:
        api.remove_container(created["Id"], force=True)


def test_a_part_of_a_volume_with_driver_options(daemon: Daemon, busybox: str) -> None:
    """A tmpfs volume is mounted for the container first; its part is found in that mount."""
    name = _name("tmpfsvol")
    daemon.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", name)
    try:
        mount = f"type=volume,source={name},target=/part,volume-subpath=sub"
        worker = _name("tmpfsuser")
        daemon.docker("run", "-d", "--name", worker, "-v", f"{name}:/volume", busybox, "sh", "-c",
                      "mkdir /volume/sub && echo deep > /volume/sub/f && sleep 300")  # fmt: skip
        try:
            daemon.docker("exec", worker, "sh", "-c", "while [ ! -f /volume/sub/f ]; do sleep 0.05; done")
            assert daemon.out("run", "--rm", "--mount", mount, busybox, "cat", "/part/f") == "deep"
        finally:
            daemon.docker("rm", "-f", worker)
    finally:
        daemon.docker("volume", "rm", "-f", name)
    assert _staged_under(daemon) == []
