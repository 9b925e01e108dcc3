"""Registries that misbehave (a stdlib fake on 127.0.0.1, tests/fakeregistry.py): each failure is
a clear error with dockerd's words where it has them, and leaves no layer, row or file behind;
a blob cut off mid-body is resumed by the next pull with `Range: bytes=N-`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon
from tests.fakeregistry import FakeRegistry
from tests.registry import DOCKER_MANIFEST, layer_tar


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def _footprint(d: Daemon) -> tuple[object, ...]:
    """Everything a pull could leave: layer dirs, blobs, partial downloads, image/tag/layer rows."""
    def names(path: Path) -> set[str]:
        return {p.name for p in path.iterdir()} if path.exists() else set()

    with contextlib.closing(sqlite3.connect(f"file:{d.data_root / 'dockyard.db'}?mode=ro", uri=True, timeout=5)) as db:
        rows = tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("images", "tags", "layers"))
    return (names(d.data_root / "overlay"), names(d.data_root / "content" / "blobs" / "sha256"),
            names(d.data_root / "downloads"), rows)  # fmt: skip


def _pull_fails(d: Daemon, name: str) -> str:
    before = _footprint(d)
    result = d.docker("pull", name, check=False, timeout=60)
    assert result.returncode == 1, result.stdout
    assert _footprint(d) == before
    return result.stderr.decode()


def test_manifest_answered_with_500(daemon_factory, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    fake.manifests[("hostile/five", "1")] = (500, "text/plain", b"boom")
    d = daemon_factory()
    err = _pull_fails(d, f"{fake.host}/hostile/five:1")
    assert "received unexpected HTTP status: 500 Internal Server Error" in err


def test_unknown_tag_and_unparsable_reference(daemon_factory, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory()
    err = _pull_fails(d, f"{fake.host}/hostile/none:nope")
    assert f"manifest for {fake.host}/hostile/none:nope not found: manifest unknown: manifest unknown" in err
    api = d.client().api
    before = _footprint(d)
    response = api._post(api._url("/images/create"), params={"fromImage": f"{fake.host}/Hostile/UPPER", "tag": "1"})
    assert response.status_code == 400
    assert "invalid reference format" in response.json()["message"]
    assert _footprint(d) == before


def test_manifest_over_the_size_limit(daemon_factory, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    fake.manifests[("hostile/big", "1")] = (200, DOCKER_MANIFEST, b"{" + b" " * (4 << 20) + b"}")
    d = daemon_factory()
    err = _pull_fails(d, f"{fake.host}/hostile/big:1")
    assert "manifest too big" in err and str(4 << 20) in err


def test_blob_whose_digest_does_not_match(daemon_factory, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    import os

    image = fake.add_image("hostile/corrupt", "1", [layer_tar({"ok": os.urandom(1 << 20)}), layer_tar({"bad": b"x" * 5000})])
    # The good layer is still coming when the bad one fails: its partial must go too.
    fake.slow.add(image.layer_digests[0])
    blob = bytearray(fake.blobs[image.layer_digests[1]])
    blob[len(blob) // 2] ^= 0xFF  # same size, other bytes
    fake.blobs[image.layer_digests[1]] = bytes(blob)
    d = daemon_factory()
    err = _pull_fails(d, f"{fake.host}/hostile/corrupt:1")
    assert f"filesystem layer verification failed for digest {image.layer_digests[1]}" in err
    assert d.out("images", "-q") == ""


def test_blob_cut_mid_body_resumes_with_range(daemon_factory, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    # Random bytes do not compress: the gzip blob is about as large as the file.
    import os

    image = fake.add_image("hostile/cut", "1", [layer_tar({"big.bin": os.urandom(3 << 20)})])
    digest = image.layer_digests[0]
    size = len(fake.blobs[digest])
    cut = 1_234_567
    fake.cut_after[digest] = cut
    d = daemon_factory()
    result = d.docker("pull", f"{fake.host}/hostile/cut:1", check=False)
    assert result.returncode == 1
    assert "unexpected EOF" in result.stderr.decode()
    # No image, no layer; only the partial blob, kept to resume from.
    assert d.out("images", "-q") == ""
    partial = d.data_root / "downloads" / f"{digest[7:]}.partial"
    assert partial.stat().st_size == cut
    d.docker("pull", f"{fake.host}/hostile/cut:1")
    assert [r for g, r in fake.ranges if g == digest] == ["", f"bytes={cut}-"]
    assert d.out("image", "inspect", "-f", "{{.Id}}", f"{fake.host}/hostile/cut:1") == image.config_digest
    assert list((d.data_root / "downloads").iterdir()) == []
    assert size > cut
