"""docker pull (and docker run of a missing image, docker login) against Debian's
docker-registry on 127.0.0.1, seeded by the tests' own uploader."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import Daemon, busybox_rootfs_tar
from tests.registry import TestRegistry, layer_tar, sha256, start_registry


@pytest.fixture(scope="module")
def bb_layer() -> bytes:
    return busybox_rootfs_tar()


def _store_files(d: Daemon) -> tuple[set[str], set[str]]:
    """The layer directories and content blobs of a daemon's store."""
    overlay = d.data_root / "overlay"
    blobs = d.data_root / "content" / "blobs" / "sha256"
    dirs = {p.name for p in overlay.iterdir()} if overlay.exists() else set()
    return dirs, {p.name for p in blobs.iterdir()}


def _pull_lines(d: Daemon, repo: str, tag: str, **params: str) -> list[dict[str, object]]:
    api = d.client().api
    return list(api.pull(repo, tag=tag, stream=True, decode=True, **params))


def test_pull_by_tag_then_run_and_up_to_date(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    pushed = registry.push_image("pull/bb", "1", [bb_layer, layer_tar({"hello.txt": b"pulled\n"})],
                                 cmd=["cat", "/hello.txt"])  # fmt: skip
    name = f"{registry.host}/pull/bb:1"
    out = daemon.out("pull", name)
    assert "1: Pulling from pull/bb" in out
    assert "Pull complete" in out
    assert f"Digest: {pushed.digest}" in out
    assert f"Status: Downloaded newer image for {name}" in out
    info = json.loads(daemon.out("image", "inspect", name))[0]
    assert info["Id"] == pushed.config_digest
    assert info["RepoTags"] == [name]
    assert info["RepoDigests"] == [f"{registry.host}/pull/bb@{pushed.digest}"]
    assert len(info["RootFS"]["Layers"]) == 2
    assert daemon.out("run", "--rm", name) == "pulled"
    # Again: nothing downloaded, the image is up to date.
    again = daemon.out("pull", name)
    assert "Already exists" in again and "Pull complete" not in again
    assert f"Status: Image is up to date for {name}" in again
    # The digest reference names the image too.
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", f"{registry.host}/pull/bb@{pushed.digest}") == pushed.config_digest
    listed = daemon.out("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", f"{registry.host}/pull/bb")
    assert listed == f"{registry.host}/pull/bb 1 {pushed.digest}"
    # rmi of its only tag takes the repository digest along and deletes the image.
    removed = daemon.out("rmi", name).splitlines()
    assert removed[:2] == [f"Untagged: {name}", f"Untagged: {registry.host}/pull/bb@{pushed.digest}"]
    assert removed[2] == f"Deleted: {pushed.config_digest}"


def test_progress_stream_shape(daemon: Daemon, registry: TestRegistry) -> None:
    big = layer_tar({"big.bin": bytes(range(256)) * 12000})  # ~3 MB, several Downloading lines
    layers = [layer_tar({f"f{i}": f"layer {i}\n".encode()}) for i in range(4)] + [big]
    pushed = registry.push_image("pull/many", "v", layers)
    lines = _pull_lines(daemon, f"{registry.host}/pull/many", "v")
    assert lines[0] == {"status": "Pulling from pull/many", "id": "v"}
    ids = {d[7:19] for d in pushed.layer_digests}
    by_status: dict[str, set[str]] = {}
    for line in lines:
        if "id" in line and line["id"] in ids:
            by_status.setdefault(str(line["status"]), set()).add(str(line["id"]))
            assert line["progressDetail"] is not None
    for status in ("Pulling fs layer", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"):
        assert by_status[status] == ids, status
    # Five layers, three downloads at once: two wait.
    assert len(by_status["Waiting"]) == 2
    downloading = [line for line in lines if line.get("status") == "Downloading"]
    assert downloading and all(line["progressDetail"]["total"] > 0 for line in downloading)  # type: ignore[index]
    assert all("[" in str(line["progress"]) and "/" in str(line["progress"]) for line in downloading)
    assert lines[-2] == {"status": f"Digest: {pushed.digest}"}
    assert lines[-1] == {"status": f"Status: Downloaded newer image for {registry.host}/pull/many:v"}


def test_pull_by_digest_and_shared_layers(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    base = registry.push_image("pull/base", "1", [bb_layer])
    child = registry.push_image("pull/child", "1", [bb_layer, layer_tar({"child": b"c"})])
    daemon.docker("pull", f"{registry.host}/pull/base:1")
    out = daemon.out("pull", f"{registry.host}/pull/child@{child.digest}")
    # The busybox layer was there already: only the child's own layer came down.
    assert f"{base.layer_digests[0][7:19]}: Already exists" in out
    assert f"{child.layer_digests[1][7:19]}: Pull complete" in out
    assert f"Status: Downloaded newer image for {registry.host}/pull/child@{child.digest}" in out
    info = json.loads(daemon.out("image", "inspect", f"{registry.host}/pull/child@{child.digest}"))[0]
    assert info["RepoTags"] == []
    assert info["RepoDigests"] == [f"{registry.host}/pull/child@{child.digest}"]


def test_run_of_a_missing_image_pulls_it(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    registry.push_image("pull/runme", "2", [bb_layer], cmd=["echo", "ran-after-pull"])
    result = daemon.docker("run", "--rm", f"{registry.host}/pull/runme:2")
    assert result.stdout.decode().strip() == "ran-after-pull"
    assert "Unable to find image" in result.stderr.decode()


def test_unknown_tag_and_repository(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    registry.push_image("pull/known", "1", [bb_layer])
    result = daemon.docker("pull", f"{registry.host}/pull/known:nope", check=False)
    assert result.returncode == 1
    assert (f"manifest for {registry.host}/pull/known:nope not found: manifest unknown: manifest unknown"
            in result.stderr.decode())  # fmt: skip
    api = daemon.client().api
    response = api._post(api._url("/images/create"), params={"fromImage": f"{registry.host}/pull/known", "tag": "nope"})
    assert response.status_code == 404
    assert daemon.docker("image", "inspect", f"{registry.host}/pull/known:nope", check=False).returncode == 1


def test_platform_from_an_index(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    amd = registry.push_image("pull/multi", "amd64", [bb_layer], arch="amd64", oci=True, labels={"of": "multi"})
    arm = registry.push_image("pull/multi", "arm64", [layer_tar({"arm": b"64"})], arch="arm64", oci=True)
    index = registry.push_index("pull/multi", "1", [(arm, "linux/arm64/v8"), (amd, "linux/amd64")])
    name = f"{registry.host}/pull/multi:1"
    out = daemon.out("pull", name)
    assert f"Digest: {index}" in out
    assert daemon.out("image", "inspect", "-f", "{{.Id}} {{.Architecture}}", name) == f"{amd.config_digest} amd64"
    assert daemon.out("image", "inspect", "-f", "{{index .RepoDigests 0}}", name) == f"{registry.host}/pull/multi@{index}"
    daemon.out("pull", "--platform", "linux/arm64", name)
    assert daemon.out("image", "inspect", "-f", "{{.Id}} {{.Architecture}}", name) == f"{arm.config_digest} arm64"
    result = daemon.docker("pull", "--platform", "linux/s390x", name, check=False)
    assert result.returncode == 1
    assert "no matching manifest for linux/s390x in the manifest list entries" in result.stderr.decode()


@pytest.mark.parametrize("compress", ["none", "zstd"])
def test_oci_manifest_with_plain_or_zstd_layers(daemon: Daemon, registry: TestRegistry, bb_layer: bytes, compress: str) -> None:
    pushed = registry.push_image("pull/oci", compress, [bb_layer, layer_tar({"plain": b"tar\n"})],
                                 compress=compress, oci=True, cmd=["cat", "/plain"])  # fmt: skip
    name = f"{registry.host}/pull/oci:{compress}"
    daemon.docker("pull", name)
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", name) == pushed.config_digest
    assert daemon.out("run", "--rm", name) == "tar"


def _hostile_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    return buf.getvalue()


@pytest.mark.parametrize("case", ["hostile-tar", "diff-mismatch"])
def test_failed_pull_leaves_nothing(daemon_factory, registry: TestRegistry, case: str) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory()
    good = layer_tar({"good": b"ok"})
    if case == "hostile-tar":
        registry.push_image(f"pull/bad-{case}", "1", [good, _hostile_tar()])
    else:
        pushed = registry.push_image(f"pull/bad-{case}", "1", [good, layer_tar({"x": b"1"})])
        # A config that names other diff ids than the layers hold.
        wrong = json.loads(registry.request("GET", f"/v2/pull/bad-{case}/blobs/{pushed.config_digest}")[2])
        wrong["rootfs"]["diff_ids"][1] = sha256(b"something else")
        raw_config = json.dumps(wrong).encode()
        manifest = json.loads(pushed.manifest)
        manifest["config"] = {**manifest["config"], "digest": registry.put_blob(f"pull/bad-{case}", raw_config),
                              "size": len(raw_config)}  # fmt: skip
        registry.put_manifest(f"pull/bad-{case}", "1", json.dumps(manifest).encode(), manifest["mediaType"])
    before = _store_files(d)
    result = d.docker("pull", f"{registry.host}/pull/bad-{case}:1", check=False)
    assert result.returncode == 1, result.stdout
    assert d.out("images", "-q") == ""
    assert _store_files(d) == before
    assert not any(Path(d.data_root / "downloads").iterdir())
    # The daemon still pulls a good image afterwards.
    registry.push_image("pull/after-bad", "1", [good])
    d.docker("pull", f"{registry.host}/pull/after-bad:1")


def test_docker_py_pull(daemon: Daemon, registry: TestRegistry, bb_layer: bytes) -> None:
    pushed = registry.push_image("pull/dockerpy", "7", [bb_layer], labels={"of": "dockerpy"})
    client = daemon.client()
    image = client.images.pull(f"{registry.host}/pull/dockerpy", tag="7")
    assert image.id == pushed.config_digest
    assert image.tags == [f"{registry.host}/pull/dockerpy:7"]
    assert image.attrs["RepoDigests"] == [f"{registry.host}/pull/dockerpy@{pushed.digest}"]
    import docker.errors

    with pytest.raises(docker.errors.NotFound):
        client.images.pull(f"{registry.host}/pull/dockerpy", tag="missing")


def test_login_and_pull_with_basic_auth(daemon: Daemon, bb_layer: bytes) -> None:
    reg = start_registry(users={"puller": "s3cret"})
    try:
        reg.push_image("auth/bb", "1", [bb_layer])
        name = f"{reg.host}/auth/bb:1"
        # Without credentials: 401 (the CLI would then prompt for a login, as with dockerd).
        import docker.errors

        with pytest.raises(docker.errors.APIError) as denied:
            daemon.client().api.pull(f"{reg.host}/auth/bb", tag="1")
        assert denied.value.status_code == 401
        assert "unauthorized: authentication required" in str(denied.value)
        wrong = daemon.docker("login", "-u", "puller", "--password-stdin", reg.host, input=b"nope\n", check=False)
        assert wrong.returncode == 1
        assert "401 Unauthorized" in wrong.stderr.decode()
        ok = daemon.docker("login", "-u", "puller", "--password-stdin", reg.host, input=b"s3cret\n")
        assert "Login Succeeded" in ok.stdout.decode()
        assert "Downloaded newer image" in daemon.out("pull", name)
        client = daemon.client()
        assert client.login("puller", "s3cret", registry=reg.host)["Status"] == "Login Succeeded"
    finally:
        daemon.docker("logout", reg.host, check=False)
        reg.stop()




def test_pull_all_tags(daemon: Daemon, registry: TestRegistry) -> None:
    one = registry.push_image("pull/alltags", "a", [layer_tar({"a": b"a"})])
    two = registry.push_image("pull/alltags", "b", [layer_tar({"b": b"b"})])
    repo = f"{registry.host}/pull/alltags"
    out = daemon.out("pull", "--all-tags", repo)
    assert "a: Pulling from pull/alltags" in out and "b: Pulling from pull/alltags" in out
    assert f"Digest: {one.digest}" in out and f"Digest: {two.digest}" in out
    assert out.splitlines()[-2] == f"Status: Downloaded newer image for {repo}"
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", f"{repo}:a") == one.config_digest
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", f"{repo}:b") == two.config_digest
    assert f"Status: Image is up to date for {repo}" in daemon.out("pull", "--all-tags", repo)


def test_interrupted_download_resumes_with_range(daemon_factory, registry: TestRegistry) -> None:  # type: ignore[no-untyped-def]
    """A partial blob left by an interrupted pull is continued, not fetched again: a wrong
    prefix therefore fails verification (and is dropped), a right one completes the pull."""
    d = daemon_factory()
    layer = layer_tar({"data.bin": bytes(range(256)) * 4000})
    pushed = registry.push_image("pull/resume", "1", [layer], compress="none")
    downloads = d.data_root / "downloads"
    partial = downloads / f"{pushed.layer_digests[0][7:]}.partial"
    partial.write_bytes(b"\xff" * 1000)  # not the blob's first bytes
    bad = d.docker("pull", f"{registry.host}/pull/resume:1", check=False)
    assert bad.returncode == 1
    assert f"filesystem layer verification failed for digest {pushed.layer_digests[0]}" in bad.stderr.decode()
    assert not partial.exists()
    partial.write_bytes(layer[:5000])  # the first bytes, as an interrupted download leaves them
    d.docker("pull", f"{registry.host}/pull/resume:1")
    assert d.out("image", "inspect", "-f", "{{.Id}}", f"{registry.host}/pull/resume:1") == pushed.config_digest
    assert list(downloads.iterdir()) == []


def test_client_gone_mid_pull_stops_only_that_pull(daemon: Daemon, registry: TestRegistry) -> None:
    import os
    import socket

    registry.push_image("pull/gone", "1", [layer_tar({"big.bin": os.urandom(24 << 20)})])
    name = f"{registry.host}/pull/gone"
    request = (f"POST /v1.41/images/create?fromImage={name}&tag=1 HTTP/1.1\r\nHost: d\r\n"
               "X-Registry-Auth: e30=\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.socket))
        s.sendall(request)
        seen = b""
        while b'"Downloading"' not in seen and b'"Pull complete"' not in seen:
            data = s.recv(65536)
            assert data, seen
            seen += data
    # Gone right after the answer's head, many times over.
    for _ in range(5):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(daemon.socket))
            s.sendall(request)
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
    # The daemon goes on serving, and the next pull completes.
    assert daemon.out("version", "--format", "{{.Server.Os}}") == "linux"
    assert "Status: " in daemon.out("pull", f"{name}:1")
    daemon.docker("rmi", f"{name}:1")
