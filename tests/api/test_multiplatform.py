"""A multi-platform image as dockerd 28's image store shows it: pulled from an index (one
platform and an attestation), `GET /images/json?manifests=1` and `GET /images/{name}/json`
list its manifests, and `Descriptor` names the index it came by."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest

from tests.conftest import Daemon, busybox_rootfs_tar
from tests.registry import OCI_INDEX, OCI_MANIFEST, TestRegistry, layer_tar, sha256


@pytest.fixture(autouse=True)
def _leave_nothing(daemon: Daemon) -> Iterator[None]:
    """The session's daemon is shared: remove this test's containers and images after it."""
    before = set(daemon.out("images", "-aq", "--no-trunc").split())
    yield
    daemon.docker("rm", "-f", "mp-user", check=False)
    for image in set(daemon.out("images", "-aq", "--no-trunc").split()) - before:
        daemon.docker("rmi", "-f", image, check=False)


def _attestation(registry: TestRegistry, repo: str, subject: str) -> dict[str, object]:
    """A BuildKit-style provenance manifest about `subject`, as its index entry."""
    config = b"{}"
    statement = b'{"_type":"https://in-toto.io/Statement/v0.1"}'
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": registry.put_blob(repo, config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": registry.put_blob(repo, statement),
                    "size": len(statement)}],
    }).encode()  # fmt: skip
    digest = registry.put_manifest(repo, sha256(manifest), manifest, OCI_MANIFEST)
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": subject}}  # fmt: skip


def test_manifests_of_an_image_pulled_from_an_index(daemon: Daemon, registry: TestRegistry) -> None:
    repo = "multi/app"
    # Labels and contents of this test's own: other tests' images must not stand in for these.
    amd = registry.push_image(repo, "amd64", [busybox_rootfs_tar()], arch="amd64", oci=True, labels={"t": "mp1"})
    arm = registry.push_image(repo, "arm64", [layer_tar({"arm": b"mp1"})], arch="arm64", oci=True)
    entries = [
        {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": len(amd.manifest), "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": len(arm.manifest),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        _attestation(registry, repo, amd.digest),
    ]  # fmt: skip
    index_raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    index = registry.put_manifest(repo, "1", index_raw, OCI_INDEX)
    name = f"{registry.host}/{repo}:1"
    daemon.docker("pull", name)
    daemon.docker("create", "--name", "mp-user", name)
    api = daemon.client().api

    [summary] = [s for s in api.get(api._url("/images/json"), params={"manifests": 1}).json() if name in s["RepoTags"]]
    assert summary["Descriptor"] == {"mediaType": OCI_INDEX, "digest": index, "size": len(index_raw)}
    image, other, attestation = summary["Manifests"]
    assert image["ID"] == amd.digest and image["Kind"] == "image" and image["Available"] is True
    assert image["Descriptor"]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert image["ImageData"]["Platform"] == {"architecture": "amd64", "os": "linux"}
    assert image["ImageData"]["Containers"] == [daemon.out("inspect", "-f", "{{.Id}}", "mp-user")]
    inspect = api.inspect_image(name)
    assert image["ImageData"]["Size"]["Unpacked"] == inspect["Size"]
    assert image["Size"]["Total"] == image["Size"]["Content"] + inspect["Size"]
    assert image["Size"]["Content"] >= len(amd.manifest)
    assert other["ID"] == arm.digest and other["Available"] is False and other["Size"] == {"Content": 0, "Total": 0}
    assert other["ImageData"]["Platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert attestation["Kind"] == "attestation" and attestation["AttestationData"] == {"For": amd.digest}
    assert "ImageData" not in attestation
    # Inspect shows the same (API 1.48), and only when asked for Manifests.
    assert inspect["Descriptor"]["digest"] == index and "Manifests" not in inspect
    inspected = api.get(api._url("/images/{0}/json", name), params={"manifests": 1}).json()
    assert [m["ID"] for m in inspected["Manifests"]] == [amd.digest, arm.digest, attestation["ID"]]

    # The other platform pulled too: its entry is available (as another local image).
    daemon.docker("pull", "--platform", "linux/arm64", name)
    arm_entry = api.get(api._url("/images/{0}/json", name), params={"manifests": 1}).json()["Manifests"][1]
    assert arm_entry["Available"] is True and arm_entry["ImageData"]["Size"]["Unpacked"] > 0


def test_images_without_a_manifest_and_old_clients(daemon: Daemon) -> None:
    daemon.docker("import", "-", "plain:1", input=layer_tar({"x": b"1"}))
    api = daemon.client().api
    [summary] = [s for s in api.get(api._url("/images/json"), params={"manifests": 1}).json() if s["RepoTags"] == ["plain:1"]]
    assert summary["Descriptor"] is None and summary["Manifests"] == []
    assert "Descriptor" not in api.inspect_image("plain:1")
    old = docker.APIClient(base_url=daemon.host, version="1.46")
    [summary] = [s for s in old.get(old._url("/images/json"), params={"manifests": 1}).json() if s["RepoTags"] == ["plain:1"]]
    assert "Manifests" not in summary and "Descriptor" not in summary


def test_platform_on_inspect_history_and_rmi(daemon: Daemon, registry: TestRegistry) -> None:
    repo = "multi/pick"
    amd = registry.push_image(repo, "amd64", [busybox_rootfs_tar()], arch="amd64", oci=True, labels={"t": "mp2"})
    arm = registry.push_image(repo, "arm64", [layer_tar({"arm": b"mp2"})], arch="arm64", oci=True)
    registry.push_index(repo, "1", [(amd, "linux/amd64"), (arm, "linux/arm64/v8")])
    name = f"{registry.host}/{repo}:1"
    daemon.docker("pull", "--platform", "linux/arm64", name)
    daemon.docker("pull", name)  # the tag moves to amd64; the arm64 image stays, untagged
    fmt = ["-f", "{{.Id}} {{.Architecture}}"]
    assert daemon.out("image", "inspect", *fmt, name) == f"{amd.config_digest} amd64"
    assert daemon.out("image", "inspect", "--platform", "linux/arm64", *fmt, name) == f"{arm.config_digest} arm64"
    assert daemon.out("image", "inspect", "--platform", "linux/amd64", *fmt, name) == f"{amd.config_digest} amd64"
    history = daemon.out("history", "--platform", "linux/arm64", "--no-trunc", "-q", name).splitlines()
    assert history[0] == arm.config_digest

    missing = daemon.docker("image", "inspect", "--platform", "linux/s390x", name, check=False)
    assert missing.returncode == 1
    assert (f"image with reference {name} was found but its platform (linux/amd64) does not match "
            "the specified platform (linux/s390x)") in missing.stderr.decode()  # fmt: skip

    api = daemon.client().api
    bad = api.get(api._url("/images/{0}/json", name), params={"platform": '{"os":"linux"}'})
    assert bad.status_code == 400 and "both OS and Architecture must be provided" in bad.json()["message"]
    both = api.get(api._url("/images/{0}/json", name), params={"platform": '{"os":"linux","architecture":"arm64"}', "manifests": 1})
    assert both.status_code == 400 and "conflicting options" in both.json()["message"]
    two = api.delete(api._url("/images/{0}", name), params={"platforms": ['{"os":"linux","architecture":"arm64"}',
                                                                         '{"os":"linux","architecture":"amd64"}']})
    assert two.status_code == 400 and two.json()["message"] == "multiple platforms are not supported"

    # rmi --platform removes that platform's image and leaves the tagged one.
    out = daemon.out("rmi", "--platform", "linux/arm64", name)
    assert f"Deleted: {arm.config_digest}" in out
    assert daemon.docker("image", "inspect", arm.config_digest, check=False).returncode == 1
    assert daemon.out("image", "inspect", *fmt, name) == f"{amd.config_digest} amd64"
    assert api.get(api._url("/images/{0}/json", name), params={"manifests": 1}).json()["Manifests"][1]["Available"] is False
