"""A registry that misbehaves on purpose (where docker-registry would not): stdlib http.server
on 127.0.0.1 serving the /v2/ read API from memory, with per-blob and per-manifest faults."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.registry import DOCKER_MANIFEST, sha256


@dataclass
class FakeImage:
    digest: str  # the manifest's
    config_digest: str
    layer_digests: list[str]


@dataclass
class FakeRegistry:
    server: ThreadingHTTPServer | None = None
    manifests: dict[tuple[str, str], tuple[int, str, bytes]] = field(default_factory=dict)  # (repo, ref) -> answer
    blobs: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # digest -> bytes sent before the connection drops (once)
    ranges: list[tuple[str, str]] = field(default_factory=list)  # (digest, Range header) of every blob GET
    slow: set[str] = field(default_factory=set)  # blobs sent 64 KiB at a time, 50 ms apart

    __test__ = False

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def add_image(self, repo: str, tag: str, layers: list[bytes]) -> FakeImage:
        blobs = [gzip.compress(t, mtime=0) for t in layers]
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layers]}}).encode()  # fmt: skip
        self.blobs[sha256(config)] = config
        for blob in blobs:
            self.blobs[sha256(blob)] = blob
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha256(b),
                        "size": len(b)} for b in blobs],
        }).encode()  # fmt: skip
        self.manifests[(repo, tag)] = (200, DOCKER_MANIFEST, manifest)
        self.manifests[(repo, sha256(manifest))] = (200, DOCKER_MANIFEST, manifest)
        return FakeImage(sha256(manifest), sha256(config), [sha256(b) for b in blobs])

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json",
                      extra: dict[str, str] | None = None) -> None:  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                self._send(status, json.dumps({"errors": [{"code": code, "message": message}]}).encode())

            def do_GET(self) -> None:
                if self.path == "/v2/":
                    return self._send(200, b"{}")
                m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", self.path)
                if m is None:
                    return self._error(404, "NOT_FOUND", "not found")
                repo, kind, ref = m.groups()
                if kind == "manifests":
                    answer = owner.manifests.get((repo, ref))
                    if answer is None:
                        return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    status, media, body = answer
                    return self._send(status, body, media)
                blob = owner.blobs.get(ref)
                if blob is None:
                    return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
                wanted = self.headers.get("Range", "")
                owner.ranges.append((ref, wanted))
                if ref in owner.cut_after:
                    cut = owner.cut_after.pop(ref)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(blob)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(blob[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the peer sees the body end early
                    return None
                r = re.fullmatch(r"bytes=(\d+)-", wanted)
                if r is not None and int(r.group(1)) < len(blob):
                    start = int(r.group(1))
                    return self._send(206, blob[start:], "application/octet-stream",
                                      {"Content-Range": f"bytes {start}-{len(blob) - 1}/{len(blob)}"})  # fmt: skip
                if ref in owner.slow:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    for i in range(0, len(blob), 1 << 16):
                        try:
                            self.wfile.write(blob[i : i + (1 << 16)])
                            self.wfile.flush()
                        except OSError:
                            return None  # the client gave up on it
                        time.sleep(0.05)
                    return None
                return self._send(200, blob, "application/octet-stream")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on a misbehaving registry is the point, not news
