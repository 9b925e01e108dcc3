"""registry-mirrors for docker.io, and the offline guard every test daemon runs with."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Daemon
from tests.registry import TestRegistry, free_port, layer_tar, start_registry


@pytest.fixture(scope="module")
def mirror() -> Iterator[TestRegistry]:
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


def test_offline_guard_refuses_docker_hub_fast(daemon: Daemon) -> None:
    before = daemon.out("images", "-q", "--no-trunc")
    started = time.monotonic()
    result = daemon.docker("pull", "busybox", check=False, timeout=30)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "registry-1.docker.io" in err and "DOCKYARD_OFFLINE" in err, err
    assert time.monotonic() - started < 10
    # Any registry past loopback, by name or address; nothing is pulled.
    for name in ("quay.io/x/y:1", "10.11.12.13:5000/x:1"):
        result = daemon.docker("pull", name, check=False, timeout=30)
        assert result.returncode == 1 and "DOCKYARD_OFFLINE" in result.stderr.decode(), name
    assert daemon.out("images", "-q", "--no-trunc") == before


def test_pull_through_a_mirror(daemon_factory, mirror: TestRegistry) -> None:  # type: ignore[no-untyped-def]
    pushed = mirror.push_image("library/mirrored", "latest", [layer_tar({"m": b"from the mirror\n"})],
                               cmd=["cat", "/m"])  # fmt: skip
    other = mirror.push_image("someone/app", "2", [layer_tar({"a": b"app\n"})])
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens: passed over
    d = daemon_factory({"registry-mirrors": [dead, f"http://{mirror.host}"], "insecure-registries": ["10.9.0.0/16", "reg.example:5000"]})
    shown = json.loads(d.out("info", "--format", "{{json .RegistryConfig}}"))
    assert shown["Mirrors"] == [f"{dead}/", f"http://{mirror.host}/"]
    assert shown["IndexConfigs"]["docker.io"]["Mirrors"] == shown["Mirrors"]
    assert shown["InsecureRegistryCIDRs"] == ["10.9.0.0/16", "::1/128", "127.0.0.0/8"]
    assert shown["IndexConfigs"]["reg.example:5000"]["Secure"] is False
    assert f"http://{mirror.host}/" in d.out("info")  # the CLI's "Registry Mirrors:" list
    out = d.out("pull", "mirrored")
    assert "latest: Pulling from library/mirrored" in out
    assert f"Digest: {pushed.digest}" in out
    assert "Status: Downloaded newer image for mirrored:latest" in out
    info = json.loads(d.out("image", "inspect", "mirrored"))[0]
    assert info["Id"] == pushed.config_digest
    # As dockerd shows a docker.io image: familiar names.
    assert info["RepoTags"] == ["mirrored:latest"]
    assert info["RepoDigests"] == [f"mirrored@{pushed.digest}"]
    # The same image by its other spellings.
    assert "Status: Image is up to date for mirrored:latest" in d.out("pull", "library/mirrored")
    assert "Image is up to date" in d.out("pull", "docker.io/library/mirrored:latest")
    assert d.out("image", "inspect", "-f", "{{.Id}}", "docker.io/library/mirrored") == pushed.config_digest
    d.docker("pull", "someone/app:2")
    assert d.out("image", "inspect", "-f", "{{.Id}}", "someone/app:2") == other.config_digest
    # A tag the mirror lacks: on to docker.io, which the offline guard refuses, quickly.
    started = time.monotonic()
    missing = d.docker("pull", "mirrored:nope", check=False, timeout=30)
    assert missing.returncode == 1
    assert "registry-1.docker.io" in missing.stderr.decode()
    assert time.monotonic() - started < 10
    # Mirrors are docker.io's only: a registry named by host is asked directly.
    assert "Downloaded newer image" in d.out("pull", f"{mirror.host}/someone/app:2")


def test_bad_mirror_stops_the_daemon(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory({"registry-mirrors": ["mirror.example"]}, start=False)
    with pytest.raises(AssertionError, match="invalid mirror: unsupported scheme"):
        d.start()
