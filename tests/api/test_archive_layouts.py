"""docker save / load against another implementation of the formats: skopeo (Debian) reads
what dockyard saves, as `docker-archive:` and as an OCI layout, and writes `oci-archive:`s
from the test registry that dockyard loads. Plus the `platform` parameter (API 1.48)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon, busybox_rootfs_tar
from tests.registry import TestRegistry, layer_tar, sha256

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (dev/setup test installs it)")


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _skopeo(*args: str) -> str:
    assert SKOPEO is not None
    done = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _inspect(d: Daemon, ref: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(d.out("image", "inspect", ref))[0]
    return info


@pytest.fixture
def two_layer_image(daemon: Daemon, busybox_tar: bytes) -> Iterator[tuple[str, str]]:
    """A tagged image of two layers (busybox, then a file from a commit)."""
    u = _uid()
    base = f"dy-lay-base-{u}:1"
    ref = f"dy-lay-{u}:1"
    daemon.docker("import", "-", base, input=busybox_tar)
    name = f"dy-lay-c-{u}"
    daemon.docker("run", "--name", name, base, "sh", "-c", "echo layered > /hello.txt")
    try:
        daemon.docker("commit", "-c", 'CMD ["cat","/hello.txt"]', name, ref)
    finally:
        daemon.docker("rm", "-f", name, check=False)
    try:
        yield ref, _inspect(daemon, ref)["Id"]
    finally:
        daemon.docker("rmi", "-f", ref, base, check=False)


def _dir_manifest(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return doc


@needs_skopeo
def test_skopeo_reads_our_save_as_docker_archive_and_oci(
    daemon: Daemon, two_layer_image: tuple[str, str], tmp_path: Path
) -> None:
    ref, image_id = two_layer_image
    saved = tmp_path / "saved.tar"
    saved.write_bytes(daemon.docker("save", ref).stdout)
    diff_ids = _inspect(daemon, ref)["RootFS"]["Layers"]
    assert len(diff_ids) == 2

    info = json.loads(_skopeo("inspect", f"docker-archive:{saved}"))
    assert (info["Os"], info["Architecture"]) == ("linux", _inspect(daemon, ref)["Architecture"])
    assert info["Layers"] == diff_ids  # uncompressed layers: blob digest = diff id

    # docker-archive: reads manifest.json; the layers skopeo copies out hash to our diff ids.
    out = tmp_path / "from-docker-archive"
    _skopeo("copy", f"docker-archive:{saved}:{ref}", f"dir:{out}")
    manifest = _dir_manifest(out)
    assert manifest["config"]["digest"] == image_id
    assert [layer["digest"] for layer in manifest["layers"]] == diff_ids
    for digest in diff_ids:
        assert sha256((out / digest[7:]).read_bytes()) == digest

    # The same tar is an OCI image layout: oci-archive: and oci: (unpacked) read index.json.
    tag = ref.rsplit(":", 1)[1]
    for source in (f"oci-archive:{saved}:{tag}", f"oci:{_unpack(saved, tmp_path / 'layout')}:{tag}"):
        got = tmp_path / f"from-{source.split(':', 1)[0]}"
        _skopeo("copy", source, f"dir:{got}")
        m = _dir_manifest(got)
        assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert m["config"]["digest"] == image_id
        assert [layer["digest"] for layer in m["layers"]] == diff_ids
        assert sha256((got / image_id[7:]).read_bytes()) == image_id


def _unpack(tar_path: Path, dest: Path) -> Path:
    dest.mkdir()
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    return dest


@needs_skopeo
@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_load_an_oci_archive_skopeo_wrote_from_the_registry(
    daemon_factory: Callable[..., Daemon], registry: TestRegistry, tmp_path: Path, compress: str
) -> None:
    u = _uid()
    layers = [busybox_rootfs_tar(), layer_tar({"hello.txt": f"from-{compress}\n".encode()})]
    pushed = registry.push_image(f"arch/{u}", "1", layers, compress=compress, oci=True,
                                 cmd=["cat", "/hello.txt"])  # fmt: skip
    archive = tmp_path / "oci.tar"
    _skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/arch/{u}:1",
            f"oci-archive:{archive}:example.org/arch/{u}:1")  # fmt: skip
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "index.json" in names and "manifest.json" not in names
    d = daemon_factory()
    result = d.docker("load", "-i", str(archive))
    assert result.stdout.decode().strip() == f"Loaded image: example.org/arch/{u}:1"
    info = _inspect(d, f"example.org/arch/{u}:1")
    assert info["Id"] == pushed.config_digest
    assert info["RootFS"]["Layers"] == [sha256(t) for t in layers]
    assert d.docker("run", "--rm", f"example.org/arch/{u}:1").stdout == f"from-{compress}\n".encode()


@needs_skopeo
def test_load_an_oci_archive_skopeo_converted_from_our_save(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], two_layer_image: tuple[str, str], tmp_path: Path
) -> None:
    ref, _ = two_layer_image
    saved = tmp_path / "saved.tar"
    saved.write_bytes(daemon.docker("save", ref).stdout)
    converted = tmp_path / "converted.tar"
    # A bare ref name ("latest") names no image: it loads untagged, as dockerd's does.
    _skopeo("copy", f"docker-archive:{saved}:{ref}", f"oci-archive:{converted}:latest")
    layout = _unpack(converted, tmp_path / "converted")
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"][7:]).read_text())
    image_id = manifest["config"]["digest"]  # skopeo rewrites the config as OCI's: a new id
    assert all(layer["mediaType"].endswith("+gzip") for layer in manifest["layers"])
    d = daemon_factory()
    assert d.out("load", "-i", str(converted)) == f"Loaded image ID: {image_id}"
    assert _inspect(d, image_id)["RootFS"]["Layers"] == _inspect(daemon, ref)["RootFS"]["Layers"]
    assert d.docker("run", "--rm", image_id).stdout == b"layered\n"


# ---- the platform parameter -------------------------------------------------------------


def _api(d: Daemon, method: str, path: str, **kw: Any) -> Any:
    api = d.client().api  # a requests session on the daemon's socket
    return api.request(method, api.base_url + path, timeout=60, **kw)


def test_save_and_load_with_a_platform(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], two_layer_image: tuple[str, str]
) -> None:
    ref, image_id = two_layer_image
    arch = _inspect(daemon, ref)["Architecture"]
    ok = daemon.docker("save", "--platform", f"linux/{arch}", ref)
    other = "arm64" if arch != "arm64" else "amd64"
    bad = daemon.docker("save", "--platform", f"linux/{other}", ref, check=False)
    assert bad.returncode != 0
    assert f"no suitable export target found for platform linux/{other}" in bad.stderr.decode()

    d = daemon_factory()
    refused = d.docker("load", "--platform", f"linux/{other}", input=ok.stdout, check=False)
    assert refused.returncode != 0
    assert f"requested platform (linux/{other}) not found" in refused.stderr.decode()
    assert d.out("images", "-q") == ""  # nothing half loaded
    assert d.out("load", "--platform", f"linux/{arch}", input=ok.stdout) == f"Loaded image: {ref}"
    assert _inspect(d, ref)["Id"] == image_id


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ("linux/amd64", "failed to parse platform"),
        ('{"os":"linux"}', "both OS and Architecture must be provided"),
    ],
)
def test_a_bad_platform_parameter_is_400(daemon: Daemon, two_layer_image: tuple[str, str],
                                         platform: str, message: str) -> None:  # fmt: skip
    ref, _ = two_layer_image
    got = _api(daemon, "GET", "/v1.48/images/get", params={"names": ref, "platform": platform})
    assert got.status_code == 400 and message in got.json()["message"]
    got = _api(daemon, "POST", "/v1.48/images/load", params={"platform": platform}, data=b"")
    assert got.status_code == 400 and message in got.json()["message"]
    both = _api(daemon, "GET", "/v1.48/images/get",
                params=[("names", ref), ("platform", '{"os":"linux","architecture":"amd64"}')] * 2)  # fmt: skip
    assert both.status_code == 400 and "multiple platform parameters not supported" in both.json()["message"]
    # Before 1.48 the parameter is not read: an old client's stray value changes nothing.
    old = _api(daemon, "GET", "/v1.47/images/get", params={"names": ref, "platform": platform})
    assert old.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(old.content)) as tar:
        assert "manifest.json" in tar.getnames()


@needs_skopeo
def test_skopeo_reads_what_we_push(
    daemon: Daemon, registry: TestRegistry, two_layer_image: tuple[str, str], tmp_path: Path
) -> None:
    ref, image_id = two_layer_image
    target = f"{registry.host}/arch/pushed-{_uid()}:1"
    daemon.docker("tag", ref, target)
    try:
        daemon.docker("push", target)
        raw = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{target}"))
        assert raw["config"]["digest"] == image_id
        copied = tmp_path / "copied"
        _skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"dir:{copied}")
        manifest = _dir_manifest(copied)
        assert manifest["config"]["digest"] == image_id
        # Each blob skopeo fetched is what the manifest names, and gunzips to the image's diff ids.
        diff_ids = _inspect(daemon, ref)["RootFS"]["Layers"]
        for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            blob = (copied / layer["digest"].removeprefix("sha256:")).read_bytes()
            assert sha256(blob) == layer["digest"]
            assert sha256(gzip.decompress(blob)) == diff_id
    finally:
        daemon.docker("rmi", target, check=False)
