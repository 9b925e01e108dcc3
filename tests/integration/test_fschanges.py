"""docker diff from a real overlayfs upper dir: the kernel makes the whiteouts and opaque dirs."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.layers.changes import container_changes
from dockyard.linux import mount as linux_mount
from dockyard.linux.fs import remove_tree

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlayfs)"),
]


@dataclass
class Overlay:
    lowers: list[Path]  # top first
    upper: Path
    merged: Path

    def changes(self) -> list[tuple[str, str]]:
        return [(c.kind.letter, c.path) for c in container_changes(self.upper, self.lowers)]


def _write(path: Path, data: bytes = b"", mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Overlay]:
    bottom, top = tmp_path / "l1", tmp_path / "l2"
    for name in ("etc/passwd", "etc/group", "bin/sh", "usr/lib/a", "usr/lib/b", "opt/x/y",
                 "keepdir/k", "chmodme", "gone"):  # fmt: skip
        _write(bottom / name, name.encode())
    (bottom / "dirmode").mkdir(mode=0o755)
    top.mkdir()
    os.mknod(top / "gone", stat.S_IFCHR, 0)  # the image's top layer deleted /gone
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    options = f"lowerdir={top}:{bottom},upperdir={upper},workdir={work}"
    linux_mount.mount("overlay", str(merged), "overlay", 0, options)
    try:
        yield Overlay([top, bottom], upper, merged)
    finally:
        linux_mount.unmount(str(merged))


def test_nothing_changed(overlay: Overlay) -> None:
    assert overlay.changes() == []


def test_changes_as_dockerd_reports_them(overlay: Overlay) -> None:
    m = overlay.merged
    (m / "tmp").mkdir()
    (m / "tmp" / "new").write_bytes(b"n")
    with open(m / "etc" / "passwd", "ab") as f:
        f.write(b"more")
    (m / "usr" / "lib" / "a").unlink()
    (m / "opt" / "x" / "y").unlink()
    (m / "opt" / "x").rmdir()
    (m / "opt" / "x").mkdir()  # re-created: the kernel marks it opaque
    (m / "opt" / "x" / "z").write_bytes(b"z")
    os.chmod(m / "chmodme", 0o600)
    os.chmod(m / "dirmode", 0o700)
    os.close(os.open(m / "keepdir" / "k", os.O_RDWR))  # copied up, unchanged: not a change
    (m / "etc" / "group").unlink()
    (m / "etc" / "group").mkdir()
    (m / "etc" / "group" / "inner").write_bytes(b"")
    (m / "gone").write_bytes(b"back")  # the image had deleted it: added
    (m / "proc").mkdir()  # what runc makes: in dockerd's init layer, not a change
    (m / "etc" / "hostname").write_bytes(b"")
    assert (overlay.upper / "keepdir" / "k").exists(), "the copy-up this test relies on"
    assert os.getxattr(overlay.upper / "opt" / "x", "trusted.overlay.opaque") == b"y"
    assert overlay.changes() == [
        ("C", "/chmodme"),
        ("C", "/dirmode"),
        ("C", "/etc"),
        ("C", "/etc/group"),
        ("A", "/etc/group/inner"),
        ("C", "/etc/passwd"),
        ("A", "/gone"),
        ("C", "/opt"),
        ("C", "/opt/x"),
        ("D", "/opt/x/y"),
        ("A", "/opt/x/z"),
        ("A", "/tmp"),
        ("A", "/tmp/new"),
        ("C", "/usr"),
        ("C", "/usr/lib"),
        ("D", "/usr/lib/a"),
    ]


def test_a_deleted_directory_is_one_deletion(overlay: Overlay) -> None:
    for name in ("a", "b"):
        (overlay.merged / "usr" / "lib" / name).unlink()
    (overlay.merged / "usr" / "lib").rmdir()
    assert overlay.changes() == [("C", "/usr"), ("D", "/usr/lib")]


def test_a_deep_tree_is_listed_without_recursion(overlay: Overlay) -> None:
    fd = os.open(overlay.merged / "opt", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1200):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    changes = overlay.changes()
    assert changes[0] == ("C", "/opt") and len(changes) == 1201
    assert all(kind == "A" for kind, _ in changes[1:])
    linux_mount.unmount(str(overlay.merged))  # (the fixture's unmount is then a no-op)
    remove_tree(overlay.upper / "opt")  # pytest's own cleanup would recurse
