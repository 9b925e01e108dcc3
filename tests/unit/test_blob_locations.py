"""store/blobs.py: where layers' blobs were seen, newest first, updated and forgotten."""

from __future__ import annotations

from pathlib import Path

from dockyard.store.blobs import BlobLocation, BlobLocations
from dockyard.store.db import Database

DIFF = "sha256:" + "d" * 64
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def test_newest_first_updated_and_removed(tmp_path: Path) -> None:
    repo = BlobLocations(Database(tmp_path / "d.db"))
    assert repo.of(DIFF) == []
    one = BlobLocation(DIFF, A, 10, GZ, "127.0.0.1:5000", "x/one")
    two = BlobLocation(DIFF, B, 12, GZ, "127.0.0.1:5000", "x/two")
    repo.add([one], "2026-12-02T10:00:00.000000000Z")
    repo.add([two], "2026-12-02T11:00:00.000000000Z")
    assert repo.of(DIFF) == [two, one]
    # Seen again: moves to the front, with the size the registry gave this time.
    again = BlobLocation(DIFF, A, 11, GZ, "127.0.0.1:5000", "x/one")
    repo.add([again], "2026-12-02T12:00:00.000000000Z")
    assert repo.of(DIFF) == [again, two]
    repo.remove(two)
    assert repo.of(DIFF) == [again]
    assert repo.of("sha256:" + "e" * 64) == []


def test_kept_across_reopening(tmp_path: Path) -> None:
    loc = BlobLocation(DIFF, A, 10, GZ, "docker.io", "library/busybox")
    db = Database(tmp_path / "d.db")
    BlobLocations(db).add([loc], "2026-12-02T10:00:00.000000000Z")
    db.close()
    assert BlobLocations(Database(tmp_path / "d.db")).of(DIFF) == [loc]
