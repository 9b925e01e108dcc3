"""GET /distribution/{name}/json (docker-py's inspect_distribution) against Debian's
docker-registry on 127.0.0.1: the descriptor and platforms, asked without pulling."""

from __future__ import annotations

import docker
import pytest

from tests.conftest import Daemon
from tests.registry import DOCKER_MANIFEST, OCI_INDEX, TestRegistry, layer_tar


def test_one_manifest_and_an_index(daemon: Daemon, registry: TestRegistry) -> None:
    amd = registry.push_image("dist/x", "amd64", [layer_tar({"a": b"1"})], arch="amd64")
    arm = registry.push_image("dist/x", "arm64", [layer_tar({"b": b"2"})], arch="arm64", oci=True)
    index = registry.push_index("dist/x", "multi", [(arm, "linux/arm64/v8"), (amd, "linux/amd64")])
    api = daemon.client().api

    one = api.inspect_distribution(f"{registry.host}/dist/x:amd64")
    assert one["Descriptor"] == {"mediaType": DOCKER_MANIFEST, "digest": amd.digest, "size": len(amd.manifest)}
    assert one["Platforms"] == [{"architecture": "amd64", "os": "linux"}]

    multi = api.inspect_distribution(f"{registry.host}/dist/x:multi")
    assert multi["Descriptor"]["mediaType"] == OCI_INDEX
    assert multi["Descriptor"]["digest"] == index
    assert multi["Platforms"] == [{"architecture": "arm64", "os": "linux", "variant": "v8"},
                                  {"architecture": "amd64", "os": "linux"}]  # fmt: skip
    # By digest, the same answer; nothing was pulled.
    assert api.inspect_distribution(f"{registry.host}/dist/x@{index}")["Platforms"] == multi["Platforms"]
    assert not [i for i in daemon.client().images.list() if any("dist/x" in t for t in i.tags)]


def test_unknown_tag_and_bad_names(daemon: Daemon, registry: TestRegistry) -> None:
    api = daemon.client().api
    with pytest.raises(docker.errors.NotFound, match="manifest unknown"):
        api.inspect_distribution(f"{registry.host}/dist/none:nope")
    with pytest.raises(docker.errors.APIError, match="invalid reference format") as bad:
        api.inspect_distribution("Busybox")
    assert bad.value.status_code == 400
    with pytest.raises(docker.errors.APIError, match="no manifest found for full image ID"):
        api.inspect_distribution("a" * 64)
