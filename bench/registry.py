#!/usr/bin/env python3
"""Issue 9's registry figures: push and pull of a ~107 MB image to Debian's docker-registry on
127.0.0.1, for one or two daemons side by side (root; stdlib only).

    python3 bench/registry.py [--rounds 5] [--only push,push.again,pull] [--json FILE]
                              [label=]HOST [[label=]HOST2]

The image: five layers made from a fixed seed, so every host loads the same image (one
`docker load` per host, before the first workload): a busybox-sized 1.5 MB layer of random
bytes and text, 40 MB of random bytes (incompressible), 40 MB of log-like text, 25 MB of the
two mixed in 64 KiB pieces, and a 4 kB one: 106.9 MB of tar.

Workloads, `--rounds` rounds after a warm-up one, each host in turn (a round does all three):
- `push`: `docker push 127.0.0.1:PORT/dybench/big:1` to a registry started for the round
  (empty storage, so every layer is compressed and uploaded; no earlier blob to mount or find).
- `push.again`: the same push once more to that registry: every layer "already exists".
- `pull`: `docker rmi` of the image, then `docker pull` of it from the registry the push filled.

Each registry is started and stopped by PID, with its storage in a temporary directory removed
at the end.
"""

from __future__ import annotations

import argparse
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
import urllib.request
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sidebyside import Host, main

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
REPO = "dybench/big"


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _text(rng: random.Random, n: int) -> bytes:
    words = [rng.randbytes(rng.randint(2, 9)).hex()[:rng.randint(2, 12)] for _ in range(2000)]
    lines = []
    size = 0
    i = 0
    while size < n:
        line = f"2026-12-02T12:00:{i % 60:02d}Z INFO {' '.join(rng.choices(words, k=8))} n={i}\n".encode()
        lines.append(line)
        size += len(line)
        i += 1
    return b"".join(lines)[:n]


def image_archive(tag: str) -> tuple[bytes, int, str]:
    """A `docker save` archive of the bench image: (archive, tar bytes of its layers, image id)."""
    rng = random.Random(9)
    mixed = b"".join(rng.randbytes(1 << 16) if i % 2 else _text(rng, 1 << 16) for i in range(400))
    layers = [
        _layer({"bin/tool": rng.randbytes(1 << 20), "etc/text": _text(rng, 500_000)}),
        _layer({"data/random.bin": rng.randbytes(38 << 20)}),
        _layer({"var/log/app.log": _text(rng, 38 << 20)}),
        _layer({"data/mixed.bin": mixed}),
        _layer({"etc/hello": b"hello\n" * 600}),
    ]
    diff_ids = ["sha256:" + sha256(t).hexdigest() for t in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-12-02T12:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-12-02T12:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }, separators=(",", ":")).encode()  # fmt: skip
    image_id = "sha256:" + sha256(config).hexdigest()
    members = {f"{image_id[7:]}.json": config}
    names = []
    for d, t in zip(diff_ids, layers, strict=True):
        members[f"{d[7:]}/layer.tar"] = t
        names.append(f"{d[7:]}/layer.tar")
    members["manifest.json"] = json.dumps([{"Config": f"{image_id[7:]}.json", "RepoTags": [tag], "Layers": names}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return buf.getvalue(), sum(len(t) for t in layers), image_id


class Registry:
    """docker-registry on a free loopback port, with its own storage."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="dybench-registry-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.base / "config.yml").write_text(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {self.base}/storage\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.log = (self.base / "log").open("wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.base / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("docker-registry did not come up") from None
                time.sleep(0.05)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


_state: dict[str, object] = {}


def _prepared(h: Host) -> str:
    """The bench image on `h`, loaded once; its id."""
    key = f"loaded:{h.label}"
    if key not in _state:
        if "archive" not in _state:
            _state["archive"], _state["tar_bytes"], _state["image_id"] = image_archive(f"dybench-big:{1}")
        h.docker("load", input=_state["archive"], timeout=600)  # type: ignore[arg-type]
        _state[key] = True
    return str(_state["image_id"])


def _timed(h: Host, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = h.docker(*args, timeout=600)
    return time.perf_counter() - t0, out


def _one_round(h: Host) -> dict[str, object]:
    image_id = _prepared(h)
    reg = Registry()
    name = f"{reg.host}/{REPO}:1"
    try:
        h.docker("tag", "dybench-big:1", name)
        push_s, out = _timed(h, "push", name)
        if out.count("Pushed") != 5:
            raise RuntimeError(f"push did not upload the five layers: {out[-500:]}")
        digest = out.splitlines()[-1].split()[2]
        again_s, out = _timed(h, "push", name)
        if out.count("Layer already exists") != 5:
            raise RuntimeError(f"second push uploaded again: {out[-500:]}")
        h.docker("rmi", "-f", "dybench-big:1", name)
        pull_s, out = _timed(h, "pull", name)
        if f"Digest: {digest}" not in out:
            raise RuntimeError(f"pull: {out[-300:]}")
        if h.docker("image", "inspect", "-f", "{{.Id}}", name) != image_id:
            raise RuntimeError("the pulled image is not the pushed one")
        h.docker("tag", name, "dybench-big:1")
        h.docker("rmi", name)
        return {"push": push_s, "push.again": again_s, "pull": pull_s, "digest": digest}
    finally:
        reg.stop()


def _rounds(h: Host, args: argparse.Namespace) -> list[dict[str, object]]:
    key = f"rounds:{h.label}"
    if key not in _state:
        _one_round(h)  # warm-up
        _state[key] = [_one_round(h) for _ in range(args.rounds)]
        _state[f"load:{h.label}"] = round(os.getloadavg()[0], 2)
        h.docker("rmi", "-f", "dybench-big:1", check=False)
    return _state[key]  # type: ignore[return-value]


def _workload(metric: str):  # type: ignore[no-untyped-def]
    def run(h: Host, args: argparse.Namespace) -> dict[str, object]:
        rounds = _rounds(h, args)
        seconds = [float(r[metric]) for r in rounds]  # type: ignore[arg-type]
        mb = int(_state["tar_bytes"]) / 1e6  # type: ignore[call-overload]
        found: dict[str, object] = {f"{metric} (ms)": [round(s * 1e3, 1) for s in seconds],
                                    f"{metric} median (s)": round(sorted(seconds)[len(seconds) // 2], 3)}  # fmt: skip
        if metric != "push.again":
            found[f"{metric} MB/s"] = round(mb / sorted(seconds)[len(seconds) // 2], 1)
        found["manifest digest"] = rounds[0]["digest"]
        found["load average after"] = _state[f"load:{h.label}"]
        found["image MB"] = round(mb, 1)
        return found

    return run


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=int, default=5)


if __name__ == "__main__":
    main(__doc__ or "", {"push": _workload("push"), "push.again": _workload("push.again"), "pull": _workload("pull")}, _add)
