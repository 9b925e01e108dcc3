"""A pull cut mid-blob resumes where it stopped (HTTP Range); a full disk during pull or load
is a clear error and leaves the store as it was."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Daemon
from tests.registry import TestRegistry, layer_tar


class CuttingProxy:
    """A loopback TCP proxy in front of the registry that, while armed, lets `cut_after`
    bytes of the answer to a blob GET through and then drops the connection. It keeps the
    request heads it forwarded."""

    def __init__(self, upstream: tuple[str, int], cut_after: int, delay: float = 0.0) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.delay = delay  # seconds to wait before each piece of a blob's answer
        self.armed = cut_after > 0
        self.requests: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            self._open += [client, up]
            state = {"blob": False}
            for args in ((client, up, state, True), (up, client, state, False)):
                t = threading.Thread(target=self._pump, args=args, daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict[str, bool], to_upstream: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if to_upstream:
                    text = data.decode("latin-1")
                    for head in re.findall(r"GET [^\r\n]+\r\n(?:[^\r\n]+\r\n)*", text):
                        self.requests.append(head)
                        if "/blobs/" in head:
                            state["blob"] = True
                elif state["blob"] and self.delay:
                    time.sleep(self.delay)
                elif state["blob"] and self.armed:
                    room = self.cut_after - sent
                    if room <= 0 or len(data) > room:
                        dst.sendall(data[: max(room, 0)])
                        self.armed = False
                        break
                    sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._server.close()
        for s in self._open:
            s.close()
        for t in self._threads:
            t.join(timeout=5)


def _store(d: Daemon) -> tuple[set[str], set[str], int, int]:
    dirs = {p.name for p in (d.data_root / "overlay").iterdir()} - {"empty"}
    blobs = {p.name for p in (d.data_root / "content" / "blobs" / "sha256").iterdir()}
    with contextlib.closing(sqlite3.connect(d.data_root / "dockyard.db")) as db:
        layers = db.execute("SELECT count(*) FROM layers").fetchone()[0]
        images = db.execute("SELECT count(*) FROM images").fetchone()[0]
    return dirs, blobs, layers, images


def test_a_pull_cut_mid_blob_resumes_with_range(daemon_factory: Callable[..., Daemon], registry: TestRegistry) -> None:
    layer = layer_tar({"data.bin": os.urandom(3 << 20)})
    pushed = registry.push_image("cut/blob", "1", [layer], compress="none")  # blob digest = diff id
    host, port = registry.host.split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=(1 << 20) + 300)
    try:
        d = daemon_factory()
        name = f"127.0.0.1:{proxy.port}/cut/blob:1"
        cut = d.docker("pull", name, check=False)
        assert cut.returncode == 1, cut.stdout
        partial = d.data_root / "downloads" / f"{pushed.layer_digests[0][7:]}.partial"
        have = partial.stat().st_size
        assert 0 < have <= 1 << 20  # what came before the cut, kept for the next pull
        assert _store(d)[2:] == (0, 0) and _store(d)[0] == set()  # no half layer, no image
        proxy.requests.clear()
        d.docker("pull", name)
        blob_gets = [r for r in proxy.requests if "/blobs/" + pushed.layer_digests[0] in r]
        assert len(blob_gets) == 1 and f"Range: bytes={have}-" in blob_gets[0]
        assert d.out("image", "inspect", "-f", "{{.Id}}", name) == pushed.config_digest
        with tarfile.open(fileobj=io.BytesIO(d.docker("save", name).stdout)) as saved:
            member = saved.extractfile(f"blobs/sha256/{pushed.layer_digests[0][7:]}")
            assert member is not None and member.read() == layer
        assert list((d.data_root / "downloads").iterdir()) == []
    finally:
        proxy.stop()


def test_a_pull_resumes_after_the_daemon_is_killed_mid_blob(
    daemon_factory: Callable[..., Daemon], registry: TestRegistry
) -> None:
    layer = layer_tar({"data.bin": os.urandom(3 << 20)})
    pushed = registry.push_image("kill/blob", "1", [layer], compress="none")
    host, port = registry.host.split(":")
    proxy = CuttingProxy((host, int(port)), cut_after=0, delay=0.02)  # ~1 MB/s
    try:
        d = daemon_factory()
        name = f"127.0.0.1:{proxy.port}/kill/blob:1"
        partial = d.data_root / "downloads" / f"{pushed.layer_digests[0][7:]}.partial"
        pulling = subprocess.Popen(["docker", "pull", name], env=d.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size > 256 << 10):
            assert time.monotonic() < deadline, "the download did not start"
            time.sleep(0.02)
        assert d.proc is not None
        d.proc.kill()  # SIGKILL: no clean-up of its own
        d.proc.wait()
        pulling.wait(timeout=30)
        have = partial.stat().st_size
        assert 0 < have < len(layer)
        d.start()  # start-up removes the half-unpacked layer directory
        assert _store(d)[0] == set() and _store(d)[2:] == (0, 0)
        proxy.delay = 0
        proxy.requests.clear()
        d.docker("pull", name)
        blob_gets = [r for r in proxy.requests if "/blobs/" + pushed.layer_digests[0] in r]
        assert len(blob_gets) == 1 and f"Range: bytes={have}-" in blob_gets[0]
        assert d.out("image", "inspect", "-f", "{{.Id}}", name) == pushed.config_digest
        with tarfile.open(fileobj=io.BytesIO(d.docker("save", name).stdout)) as saved:
            member = saved.extractfile(f"blobs/sha256/{pushed.layer_digests[0][7:]}")
            assert member is not None and member.read() == layer
    finally:
        proxy.stop()


@pytest.fixture
def small_disk(daemon_factory: Callable[..., Daemon]) -> Iterator[Daemon]:
    """A daemon whose data root is a 48 MB tmpfs."""
    d = daemon_factory(start=False)
    d.data_root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "dytmpfs", str(d.data_root)], check=True)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        umount = subprocess.run(["umount", str(d.data_root)], capture_output=True, text=True, check=False)
        assert umount.returncode == 0, (umount.stderr, subprocess.run(["fuser", "-vm", str(d.data_root)], capture_output=True, text=True, check=False))


def _consistent(d: Daemon, before: tuple[set[str], set[str], int, int]) -> None:
    assert _store(d) == before
    assert d.out("images", "-q") == ""
    assert list((d.data_root / "tmp").iterdir()) == []


def test_disk_full_during_pull(small_disk: Daemon, registry: TestRegistry) -> None:
    d = small_disk
    layers = [layer_tar({f"r{i}.bin": os.urandom(12 << 20)}) for i in range(3)]  # 36 MB, stored twice meanwhile
    registry.push_image("full/pull", "1", layers)
    before = _store(d)
    result = d.docker("pull", f"{registry.host}/full/pull:1", check=False)
    assert result.returncode == 1
    assert "no space left on device" in result.stderr.decode().lower(), result.stderr
    _consistent(d, before)
    assert list((d.data_root / "downloads").iterdir()) == []  # the space goes back
    # Room again: a small image still pulls.
    registry.push_image("full/small", "1", [layer_tar({"small": b"fits"})])
    d.docker("pull", f"{registry.host}/full/small:1")


def test_disk_full_during_load(small_disk: Daemon) -> None:
    d = small_disk
    big = layer_tar({"zeros.bin": bytes(80 << 20)})  # compresses to almost nothing
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(big).hexdigest()]}}).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    files = {"l/layer.tar": big, config_name: config,
             "manifest.json": json.dumps([{"Config": config_name, "RepoTags": ["full/load:1"], "Layers": ["l/layer.tar"]}]).encode()}  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = gzip.compress(buf.getvalue(), compresslevel=1)
    before = _store(d)
    result = d.docker("load", input=archive, check=False)
    assert result.returncode == 1
    assert "no space left on device" in result.stderr.decode().lower(), result.stderr
    _consistent(d, before)
