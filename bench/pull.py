#!/usr/bin/env python3
"""Issue 9's pull and load figures, for one or more daemons side by side (root; stdlib only).

    python3 bench/pull.py [--runs 7] [--registry HOST:PORT] [--only pull,load] [--json FILE]
                          [label=]HOST [[label=]HOST2 ...]

The image: five layers, 107 MB of uncompressed tar (56 MB of random bytes in two layers, 40 MB
of compressible text in two, 11 MB half and half in one), gzip'd (level 6) as registries hold
them: 64 MB of blobs. Pushed once to `--registry` (default: a Debian `docker-registry` the bench
starts on 127.0.0.1 and stops at the end).

Workloads (each host in turn, `--runs` rounds after one warm-up; the image is removed before
each round, untimed, so every round starts from an empty store):
- `pull`: `docker pull 127.0.0.1:PORT/dybench/pull:1`, wall time of the CLI.
- `load`: `docker load -i FILE`, FILE the image as a `docker save` archive (dockerd's layout,
  uncompressed layers, written once by the bench), wall time of the CLI.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sidebyside import Host, main

REPO, TAG = "dybench/pull", "1"
_STATE: dict[str, object] = {}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _text(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layers() -> list[bytes]:
    if "layers" not in _STATE:
        mb = 1 << 20
        _STATE["layers"] = [
            _layer({f"rand{i}/blob{j}": os.urandom(4 * mb) for j in range(8)}) for i in range(1)
        ] + [
            _layer({f"rand1/blob{j}": os.urandom(4 * mb) for j in range(6)}),
            _layer({f"text0/file{j}.txt": _text(2 * mb, j) for j in range(12)}),
            _layer({f"text1/file{j}.txt": _text(mb, 100 + j) for j in range(16)}),
            _layer({"mixed/r": os.urandom(5 * mb + mb // 2), "mixed/t": _text(5 * mb + mb // 2, 7)}),
        ]
    return _STATE["layers"]  # type: ignore[return-value]


def config() -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(t) for t in layers()]},
        "history": [{"created": "2024-01-02T03:04:05Z"} for _ in layers()],
    }, separators=(",", ":")).encode()  # fmt: skip


# ---- the registry --------------------------------------------------------------------------


def _request(addr: str, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _put_blob(addr: str, data: bytes) -> str:
    digest = _sha(data)
    if _request(addr, "HEAD", f"/v2/{REPO}/blobs/{digest}")[0] == 200:
        return digest
    status, headers, body = _request(addr, "POST", f"/v2/{REPO}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"upload: {status} {body[:200]!r}")
    location = headers["location"]
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    status, _, body = _request(addr, "PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    if status != 201:
        raise RuntimeError(f"upload: {status} {body[:200]!r}")
    return digest


def push(addr: str) -> None:
    if _STATE.get("pushed") == addr:
        return
    raw_config = config()
    descs = []
    for tar in layers():
        blob = gzip.compress(tar, compresslevel=6, mtime=0)
        descs.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": _put_blob(addr, blob), "size": len(blob)})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": _put_blob(addr, raw_config),
                   "size": len(raw_config)},
        "layers": descs,
    }).encode()  # fmt: skip
    status, _, body = _request(addr, "PUT", f"/v2/{REPO}/manifests/{TAG}", manifest,
                               {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})  # fmt: skip
    if status != 201:
        raise RuntimeError(f"manifest: {status} {body[:200]!r}")
    _STATE["pushed"] = addr
    _STATE["blob_bytes"] = sum(d["size"] for d in descs)  # type: ignore[misc]


def start_registry() -> tuple[str, subprocess.Popen[bytes], Path]:
    base = Path(tempfile.mkdtemp(prefix="dybench-registry-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (base / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {base / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(base / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    for _ in range(400):
        try:
            if _request(addr, "GET", "/v2/")[0] == 200:
                return addr, proc, base
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("docker-registry did not come up")


# ---- the archive ---------------------------------------------------------------------------


def archive() -> Path:
    if "archive" not in _STATE:
        raw_config = config()
        path = Path(tempfile.mkdtemp(prefix="dybench-archive-")) / "image.tar"
        name = _sha(raw_config)[7:]
        with tarfile.open(path, mode="w") as tar:
            entries = {f"{name}.json": raw_config}
            entries |= {f"{i}/layer.tar": t for i, t in enumerate(layers())}
            entries["manifest.json"] = json.dumps(
                [{"Config": f"{name}.json", "RepoTags": ["dybench-load:1"], "Layers": [f"{i}/layer.tar" for i in range(len(layers()))]}]
            ).encode()
            for member, data in entries.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        _STATE["archive"] = path
    return _STATE["archive"]  # type: ignore[return-value]


# ---- the workloads -------------------------------------------------------------------------


def _rounds(h: Host, args: argparse.Namespace, ref: str, timed: list[str]) -> list[float]:
    out = []
    for i in range(args.runs + 1):
        h.docker("rmi", "-f", ref, check=False)
        t = h.timed(*timed)
        if i:
            out.append(t)
    h.docker("rmi", "-f", ref, check=False)
    return out


def pull(h: Host, args: argparse.Namespace) -> dict[str, object]:
    push(args.registry)
    ref = f"{args.registry}/{REPO}:{TAG}"
    return {"pull (ms)": _rounds(h, args, ref, ["pull", "-q", ref]), "blob MB": round(int(_STATE["blob_bytes"]) / 1e6, 1)}  # type: ignore[call-overload]


def load(h: Host, args: argparse.Namespace) -> dict[str, object]:
    path = archive()
    return {"load (ms)": _rounds(h, args, "dybench-load:1", ["load", "-q", "-i", str(path)]),
            "archive MB": round(path.stat().st_size / 1e6, 1)}  # fmt: skip


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--registry", default="")


if __name__ == "__main__":
    started = None
    if "--registry" not in sys.argv:
        addr, proc, base = start_registry()
        started = (proc, base)
        sys.argv += ["--registry", addr]
    try:
        main(__doc__ or "", {"pull": pull, "load": load}, _arguments)
    finally:
        if "archive" in _STATE:
            shutil.rmtree(Path(str(_STATE["archive"])).parent, ignore_errors=True)
        if started is not None:
            started[0].terminate()
            started[0].wait(timeout=10)
            shutil.rmtree(started[1], ignore_errors=True)
