"""docker push (and docker-py's push) against Debian's docker-registry on 127.0.0.1: the
progress stream, blobs skipped and mounted, --all-tags, what pulls back, and the failures."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Daemon, busybox_rootfs_tar
from tests.registry import DOCKER_MANIFEST, TestRegistry, layer_tar, sha256, start_registry

_LOADED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _remove_images(daemon: Daemon) -> Iterator[None]:
    """The shared daemon keeps none of this module's images."""
    yield
    for image_id in dict.fromkeys(_LOADED):
        daemon.docker("rmi", "-f", image_id, check=False)


def _archive(repo_tag: str, layers: list[bytes], cmd: list[str] | None = None) -> tuple[bytes, str]:
    """A `docker save` archive of one image with these layer tars; and the image id."""
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2025-01-02T03:04:05Z",
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layers]},
        "history": [{"created": "2025-01-02T03:04:05Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }, separators=(",", ":")).encode()  # fmt: skip
    image_id = sha256(config)
    members: dict[str, bytes] = {f"{image_id[7:]}.json": config}
    names = []
    for tar in layers:
        name = f"{sha256(tar)[7:]}/layer.tar"
        members[name] = tar
        names.append(name)
    members["manifest.json"] = json.dumps([{"Config": f"{image_id[7:]}.json", "RepoTags": [repo_tag], "Layers": names}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return buf.getvalue(), image_id


def _load(d: Daemon, repo_tag: str, layers: list[bytes], cmd: list[str] | None = None) -> str:
    archive, image_id = _archive(repo_tag, layers, cmd)
    d.docker("load", input=archive)
    _LOADED.append(image_id)
    return image_id


def _layers(seed: int) -> list[bytes]:
    """Three layers: busybox, a random megabyte with compressible text, a small file."""
    rng = os.urandom(1 << 20)
    text = b"".join(b"line %d %d\n" % (seed, i) for i in range(200_000))
    return [busybox_rootfs_tar(), layer_tar({f"data{seed}.bin": rng, "text.txt": text}),
            layer_tar({"hello.txt": f"hello {seed}\n".encode()})]  # fmt: skip


def _manifest(reg: TestRegistry, repo: str, ref: str) -> tuple[bytes, str]:
    status, headers, body = reg.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": DOCKER_MANIFEST})
    assert status == 200, body
    return body, headers["content-type"]


def _short(digest: str) -> str:
    return digest[7:19]


def test_push_then_push_again(daemon: Daemon, registry: TestRegistry) -> None:
    layers = _layers(1)
    name = f"{registry.host}/push/one:1"
    image_id = _load(daemon, name, layers, ["cat", "/hello.txt"])
    out = daemon.out("push", name)
    assert out.splitlines()[0] == f"The push refers to repository [{registry.host}/push/one]"
    for tar in layers:
        assert f"{_short(sha256(tar))}: Pushed" in out
    digest_line = out.splitlines()[-1]
    assert digest_line.startswith("1: digest: sha256:")
    digest, size = digest_line.split()[2], int(digest_line.split()[4])
    raw, content_type = _manifest(registry, "push/one", "1")
    assert sha256(raw) == digest and len(raw) == size
    assert content_type == DOCKER_MANIFEST
    assert raw.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",')
    doc = json.loads(raw)
    assert doc["config"] == {"mediaType": "application/vnd.docker.container.image.v1+json",
                             "size": doc["config"]["size"], "digest": image_id}  # fmt: skip
    # Each layer blob is gzip of exactly the layer's tar, in order, bottom first.
    for desc, tar in zip(doc["layers"], layers, strict=True):
        status, _, blob = registry.request("GET", f"/v2/push/one/blobs/{desc['digest']}")
        assert status == 200 and sha256(blob) == desc["digest"] and len(blob) == desc["size"]
        assert desc["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        assert gzip.decompress(blob) == tar
    status, _, config = registry.request("GET", f"/v2/push/one/blobs/{image_id}")
    assert status == 200 and sha256(config) == image_id
    info = json.loads(daemon.out("image", "inspect", name))[0]
    assert f"{registry.host}/push/one@{digest}" in info["RepoDigests"]
    events = daemon.out("events", "--since", "0", "--until", f"{time.time():.9f}", "--filter", "type=image",
                        "--filter", "event=push", "--format", "{{.Actor.ID}}")  # fmt: skip
    assert name in events.splitlines()
    # Again: every layer is already there, and the manifest is the same.
    again = daemon.out("push", name)
    for tar in layers:
        assert f"{_short(sha256(tar))}: Layer already exists" in again
    assert "Pushed" not in again
    assert again.splitlines()[-1] == digest_line


def test_progress_stream_of_docker_py(daemon: Daemon, registry: TestRegistry) -> None:
    layers = [layer_tar({f"f{i}": os.urandom(300_000)}) for i in range(7)]
    name = f"{registry.host}/push/stream"
    _load(daemon, f"{name}:v", layers)
    lines = list(daemon.client().api.push(name, tag="v", stream=True, decode=True))
    assert lines[0] == {"status": f"The push refers to repository [{name}]"}
    ids = [_short(sha256(t)) for t in reversed(layers)]  # top-most first, as dockerd
    preparing = [ln["id"] for ln in lines if ln.get("status") == "Preparing"]
    assert preparing == ids
    assert all(ln["progressDetail"] == {} for ln in lines if ln.get("status") == "Preparing")
    # Five at once: the last two wait.
    assert [ln["id"] for ln in lines if ln.get("status") == "Waiting"] == ids[5:]
    pushing = [ln for ln in lines if ln.get("status") == "Pushing"]
    for short, tar in zip(ids, reversed(layers), strict=True):
        mine = [ln for ln in pushing if ln["id"] == short]
        assert mine and mine[-1]["progressDetail"] == {"current": len(tar), "total": len(tar)}
        assert "progress" in mine[-1]
        assert {"status": "Pushed", "progressDetail": {}, "id": short} in lines
    aux = lines[-1]
    assert set(aux) == {"progressDetail", "aux"} and aux["progressDetail"] == {}
    assert aux["aux"]["Tag"] == "v"
    raw, _ = _manifest(registry, "push/stream", "v")
    assert aux["aux"] == {"Tag": "v", "Digest": sha256(raw), "Size": len(raw)}
    assert lines[-2] == {"status": f"v: digest: {sha256(raw)} size: {len(raw)}"}


def test_mount_from_another_repository(daemon: Daemon, registry: TestRegistry) -> None:
    layers = _layers(2)
    first = f"{registry.host}/push/src:1"
    _load(daemon, first, layers)
    digest = daemon.out("push", first).splitlines()[-1].split()[2]
    second = f"{registry.host}/push/dst:1"
    daemon.docker("tag", first, second)
    out = daemon.out("push", second)
    for tar in layers:
        assert f"{_short(sha256(tar))}: Mounted from push/src" in out
    assert out.splitlines()[-1].split()[2] == digest  # same blobs, same manifest
    raw, _ = _manifest(registry, "push/dst", "1")
    assert sha256(raw) == digest


def test_all_tags(daemon: Daemon, registry: TestRegistry) -> None:
    repo = f"{registry.host}/push/all"
    _load(daemon, f"{repo}:a", [layer_tar({"a": b"a\n"})])
    _load(daemon, f"{repo}:b", [layer_tar({"b": b"b\n"})])
    out = daemon.out("push", "--all-tags", repo)
    assert out.count("The push refers to repository") == 1
    assert [ln.split(":")[0] for ln in out.splitlines() if ": digest: " in ln] == ["a", "b"]
    status, _, body = registry.request("GET", "/v2/push/all/tags/list")
    assert status == 200 and sorted(json.loads(body)["tags"]) == ["a", "b"]


def test_pushed_image_pulls_back_the_same(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], registry: TestRegistry
) -> None:
    layers = _layers(3)
    name = f"{registry.host}/push/back:1"
    image_id = _load(daemon, name, layers, ["cat", "/hello.txt"])
    digest = daemon.out("push", name).splitlines()[-1].split()[2]
    other = daemon_factory()
    out = other.out("pull", name)
    assert f"Digest: {digest}" in out
    assert other.out("image", "inspect", "-f", "{{.Id}}", name) == image_id
    assert other.out("run", "--rm", name) == "hello 3"
    # Pulled there, pushed back from there under a new tag: HEADs only, and the very manifest.
    other.docker("tag", name, f"{registry.host}/push/back:2")
    again = other.out("push", f"{registry.host}/push/back:2")
    assert "Pushed" not in again and again.count("Layer already exists") == 3
    assert again.splitlines()[-1] == f"2: digest: {digest} size: {len(_manifest(registry, 'push/back', '1')[0])}"
    # After rmi here, a pull brings back the same image.
    daemon.docker("rmi", name)
    daemon.out("pull", name)
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", name) == image_id


def test_pulled_image_goes_back_with_its_own_manifest(daemon: Daemon, registry: TestRegistry) -> None:
    """A registry's compact manifest (not dockerd's layout) is pushed back byte for byte."""
    pushed = registry.push_image("push/seed", "1", [layer_tar({"s": b"seed\n"}), layer_tar({"t": os.urandom(2000)})])
    daemon.out("pull", f"{registry.host}/push/seed:1")
    _LOADED.append(pushed.config_digest)
    target = f"{registry.host}/push/copy:1"
    daemon.docker("tag", f"{registry.host}/push/seed:1", target)
    out = daemon.out("push", target)
    assert out.count("Mounted from push/seed") == 2
    assert out.splitlines()[-1] == f"1: digest: {pushed.digest} size: {len(pushed.manifest)}"
    assert _manifest(registry, "push/copy", "1")[0] == pushed.manifest


def test_unknown_image_and_tag(daemon: Daemon, registry: TestRegistry) -> None:
    missing = daemon.docker("push", f"{registry.host}/push/nothere:1", check=False)
    assert missing.returncode == 1
    assert f"The push refers to repository [{registry.host}/push/nothere]" in missing.stdout.decode()
    assert f"An image does not exist locally with the tag: {registry.host}/push/nothere" in missing.stderr.decode()
    _load(daemon, f"{registry.host}/push/sometag:1", [layer_tar({"x": b"x"})])
    wrong_tag = daemon.docker("push", f"{registry.host}/push/sometag:2", check=False)
    assert wrong_tag.returncode == 1
    assert f"tag does not exist: {registry.host}/push/sometag:2" in wrong_tag.stderr.decode()
    # docker-py sees the same error at the end of the stream.
    lines = list(daemon.client().api.push(f"{registry.host}/push/nothere", tag="1", stream=True, decode=True))
    assert lines[-1]["errorDetail"]["message"].startswith("An image does not exist locally with the tag")


def test_unreachable_registry(daemon: Daemon) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"127.0.0.1:{port}/push/away:1"
    _load(daemon, name, [layer_tar({"a": b"away"})])
    failed = daemon.docker("push", name, check=False)
    assert failed.returncode == 1
    assert "connection refused" in failed.stderr.decode()


def test_basic_auth(daemon: Daemon) -> None:
    reg = start_registry(users={"pusher": "s3cret"})
    try:
        name = f"{reg.host}/auth/pushed:1"
        layer = layer_tar({"secret.txt": os.urandom(5000)})
        _load(daemon, name, [layer])
        denied = daemon.docker("push", name, check=False)
        assert denied.returncode == 1
        assert "no basic auth credentials" in denied.stderr.decode()
        lines = list(daemon.client().api.push(name.rsplit(":", 1)[0], tag="1", stream=True, decode=True,
                                              auth_config={"username": "pusher", "password": "wrong"}))  # fmt: skip
        assert lines[-1]["error"] == "unauthorized: authentication required"
        # Nothing was written in the registry.
        assert not (reg.base / "storage/docker/registry/v2/repositories/auth/pushed").exists()
        daemon.docker("login", "-u", "pusher", "--password-stdin", reg.host, input=b"s3cret\n")
        out = daemon.out("push", name)
        assert f"{_short(sha256(layer))}: Pushed" in out
        raw = reg.request("GET", "/v2/auth/pushed/manifests/1", headers={"Accept": DOCKER_MANIFEST})[2]
        assert out.splitlines()[-1].split()[2] == "sha256:" + hashlib.sha256(raw).hexdigest()
    finally:
        daemon.docker("logout", reg.host, check=False)
        reg.stop()


def test_registry_error_5xx(daemon: Daemon) -> None:
    """A registry whose storage fails answers 500: the push stops with its error on the stream."""
    reg = start_registry()
    try:
        (reg.base / "storage" / "docker").write_text("not a directory")  # every write now fails
        name = f"{reg.host}/broken/x:1"
        _load(daemon, name, [layer_tar({"b": b"broken"})])
        failed = daemon.docker("push", name, check=False)
        assert failed.returncode == 1
        assert "Preparing" in failed.stdout.decode()
        err = failed.stderr.decode().strip()
        assert err == "unknown: unknown error"  # distribution's errcode for a storage failure
        assert "Pushed" not in failed.stdout.decode()
        lines = list(daemon.client().api.push(f"{reg.host}/broken/x", tag="1", stream=True, decode=True))
        assert lines[-1] == {"errorDetail": {"message": err}, "error": err}
        assert not any("aux" in ln for ln in lines)
    finally:
        reg.stop()


def test_client_gone_mid_push_cancels_only_that_push(daemon: Daemon, registry: TestRegistry) -> None:
    import socket

    name = f"{registry.host}/push/gone"
    layer = layer_tar({"big.bin": os.urandom(48 << 20)})
    _load(daemon, f"{name}:1", [layer])
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.socket))
        s.sendall(f"POST /v1.41/images/{name}/push?tag=1 HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: e30=\r\n"
                  "Content-Length: 0\r\n\r\n".encode())  # fmt: skip
        seen = b""
        while b'"Pushing"' not in seen:
            data = s.recv(65536)
            assert data, seen
            seen += data
    # The daemon goes on serving, and the next push completes.
    assert daemon.out("version", "--format", "{{.Server.Os}}") == "linux"
    out = daemon.out("push", f"{name}:1")
    assert "Pushed" in out or "Layer already exists" in out
    # Gone right after the first line, while the layers are being looked up.
    for _ in range(5):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(daemon.socket))
            s.sendall(f"POST /v1.41/images/{name}/push?tag=1 HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: e30=\r\n"
                      "Content-Length: 0\r\n\r\n".encode())  # fmt: skip
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
    assert daemon.out("version", "--format", "{{.Server.Os}}") == "linux"


def test_push_with_token_auth(daemon: Daemon) -> None:
    """A Bearer registry: the token asked for push and pull, and for the mount's source too."""
    from tests.registry import TokenAuth, free_port, new_registry_base, start_custom_registry
    from tests.tokenserver import ISSUER, SERVICE, start_token_server

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    base = new_registry_base()
    tokens = start_token_server(base / "signer", {"tok-user": "tok-pass"})
    try:
        def seed(repo: str) -> str:
            return tokens.mint("seeder", [{"type": "repository", "name": repo, "actions": ["pull", "push"]}])

        reg = TestRegistry(base, free_port(), token=TokenAuth(tokens.realm, SERVICE, ISSUER, tokens.signer.cert, seed))
        start_custom_registry(reg)
        try:
            layer = layer_tar({"t": os.urandom(4000)})
            name = f"{reg.host}/private/pushed"
            _load(daemon, f"{name}:1", [layer])
            auth = {"username": "tok-user", "password": "tok-pass"}
            api = daemon.client().api
            lines = list(api.push(name, tag="1", stream=True, decode=True, auth_config=auth))
            assert "aux" in lines[-1], lines[-3:]
            assert {"status": "Pushed", "progressDetail": {}, "id": _short(sha256(layer))} in lines
            scopes = [r.params.get("scope") for r in tokens.requests if r.user == "tok-user"]
            assert ["repository:private/pushed:push,pull"] in scopes
            daemon.docker("tag", f"{name}:1", f"{reg.host}/private/other:1")
            lines = list(api.push(f"{reg.host}/private/other", tag="1", stream=True, decode=True, auth_config=auth))
            assert {"status": "Mounted from private/pushed", "progressDetail": {}, "id": _short(sha256(layer))} in lines
            scopes = [sorted(r.params.get("scope") or []) for r in tokens.requests if r.user == "tok-user"]
            assert ["repository:private/other:push,pull", "repository:private/pushed:pull"] in scopes
            # Without credentials the token grants nothing here: the registry's refusal ends the stream.
            denied = list(api.push(name, tag="1", stream=True, decode=True))
            assert "error" in denied[-1] and "aux" not in denied[-1]
        finally:
            reg.stop()
    finally:
        tokens.stop()
        shutil.rmtree(base, ignore_errors=True)
