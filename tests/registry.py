"""A Docker registry for tests: Debian's docker-registry on 127.0.0.1 with its own storage,
and a small stdlib uploader that seeds it (blob upload POST/PUT, manifest PUT)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class TestRegistry:
    base: Path
    port: int
    htpasswd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)

    __test__ = False  # not a test class

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        storage = self.base / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.htpasswd is not None:
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {self.htpasswd}\n"
        (self.base / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n{auth}"
        )
        self.log = (self.base / "registry.log").open("wb")
        self.proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(self.base / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {(self.base / 'registry.log').read_text()}")
            try:
                status, _, _ = self.request("GET", "/v2/")
                if status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("docker-registry did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    # ---- a tiny uploader ---------------------------------------------------------------

    def _auth_header(self) -> dict[str, str]:
        if not self.users:
            return {}
        user, password = next(iter(self.users.items()))
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def request(self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers={**self._auth_header(), **(headers or {})})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert status == 202, (status, body)
        location = headers["location"]
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        status, _, body = self.request("PUT", f"{location}{sep}digest={digest}", data,
                                       {"Content-Type": "application/octet-stream"})  # fmt: skip
        assert status == 201, (status, body)
        return digest

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        status, _, body = self.request("PUT", f"/v2/{repo}/manifests/{reference}", raw, {"Content-Type": media_type})
        assert status == 201, (status, body)
        return sha256(raw)

    def push_image(
        self, repo: str, tag: str, layers: list[bytes], *, compress: str = "gzip", oci: bool = False,
        arch: str = "amd64", cmd: list[str] | None = None, labels: dict[str, str] | None = None,
        env: list[str] | None = None,
    ) -> PushedImage:
        """Upload an image whose layers are these uncompressed tars; returns its digests."""
        diff_ids = [sha256(t) for t in layers]
        config = json.dumps({
            "architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"] if env is None else env, "Labels": labels or None},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"} for i in range(len(layers))],
        }, separators=(",", ":")).encode()  # fmt: skip
        config_digest = self.put_blob(repo, config)
        descs = []
        for tar in layers:
            blob = {"gzip": lambda: gzip.compress(tar, mtime=0), "zstd": lambda: zstandard.ZstdCompressor().compress(tar),
                    "none": lambda: tar}[compress]()  # fmt: skip
            if oci:
                media = "application/vnd.oci.image.layer.v1.tar" + ("" if compress == "none" else f"+{compress}")
            else:
                media = "application/vnd.docker.image.rootfs.diff.tar.gzip"
            descs.append({"mediaType": media, "digest": self.put_blob(repo, blob), "size": len(blob)})
        manifest_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci
                       else "application/vnd.docker.container.image.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": descs,
        }, separators=(",", ":")).encode()  # fmt: skip
        digest = self.put_manifest(repo, tag, manifest, manifest_type)
        return PushedImage(digest, config_digest, manifest, [d["digest"] for d in descs])

    def push_index(self, repo: str, tag: str, entries: list[tuple[PushedImage, str]], *, oci: bool = True) -> str:
        """An index over already pushed manifests, each with its platform ("linux/arm64/v8")."""
        manifests = []
        for image, platform in entries:
            parts = platform.split("/")
            p: dict[str, str] = {"os": parts[0], "architecture": parts[1]}
            if len(parts) > 2:
                p["variant"] = parts[2]
            manifests.append({"mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST, "digest": image.digest,
                              "size": len(image.manifest), "platform": p})  # fmt: skip
        media_type = OCI_INDEX if oci else DOCKER_LIST
        raw = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}).encode()
        return self.put_manifest(repo, tag, raw, media_type)


@dataclass(frozen=True)
class PushedImage:
    digest: str  # the manifest's
    config_digest: str  # the image id
    manifest: bytes
    layer_digests: list[str]


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding these regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def start_registry(users: dict[str, str] | None = None) -> TestRegistry:
    if not Path(REGISTRY_BINARY).exists():
        pytest.skip("docker-registry is not installed (dev/setup test installs it)")
    base = Path(tempfile.mkdtemp(prefix="dy-registry-", dir="/tmp"))
    htpasswd = None
    if users:
        if not shutil.which("htpasswd"):
            pytest.skip("htpasswd (apache2-utils) is not installed")
        htpasswd = base / "htpasswd"
        for i, (user, password) in enumerate(users.items()):
            subprocess.run(["htpasswd", "-B", "-b", *(["-c"] if i == 0 else []), str(htpasswd), user, password],
                           check=True, capture_output=True)  # fmt: skip
    reg = TestRegistry(base, _free_port(), htpasswd, users=dict(users or {}))
    try:
        reg.start()
    except BaseException:
        reg.stop()
        raise
    return reg
