"""volumes/copyup.py on a real filesystem: attributes kept, links not followed, only into an empty volume."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.volumes.copyup import copy_up


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "sub" / "f").write_text("x")
    os.chown(root / "real" / "sub" / "f", 1234, 5678)
    os.chmod(root / "real" / "sub" / "f", 0o640)
    os.chmod(root / "real", 0o1750)
    os.symlink("/etc/passwd", root / "real" / "link")
    os.mkfifo(root / "real" / "fifo")
    os.symlink("/real", root / "srv")  # absolute: inside the container's root, not the host's
    return root


def test_copy_keeps_owner_mode_and_links(tmp_path: Path) -> None:
    root, data = _rootfs(tmp_path), tmp_path / "_data"
    data.mkdir()
    assert copy_up(root, "/srv", data) is True
    st = os.stat(data / "sub" / "f")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert (data / "sub" / "f").read_text() == "x"
    assert os.stat(data).st_mode & 0o7777 == 0o1750
    assert os.readlink(data / "link") == "/etc/passwd"
    assert (data / "fifo").is_fifo()


def test_nothing_is_copied_into_a_volume_with_content_or_from_a_missing_path(tmp_path: Path) -> None:
    root, data = _rootfs(tmp_path), tmp_path / "_data"
    data.mkdir()
    (data / "mine").write_text("kept")
    assert copy_up(root, "/srv", data) is False
    assert os.listdir(data) == ["mine"]
    (data / "mine").unlink()
    assert copy_up(root, "/nowhere", data) is False
    assert copy_up(root, "/real/sub/f", data) is False  # a file is no directory to copy
    assert os.listdir(data) == []


def test_a_symlink_to_dotdot_stays_in_the_root(tmp_path: Path) -> None:
    root, data = _rootfs(tmp_path), tmp_path / "_data"
    data.mkdir()
    (tmp_path / "host-secret").write_text("no")
    os.symlink("../../..", root / "up")  # climbing stops at the container's /
    assert copy_up(root, "/up", data) is True
    assert sorted(os.listdir(data)) == ["real", "srv", "up"]


def test_hard_links_in_the_tree_stay_one_inode(tmp_path: Path) -> None:
    root, data = _rootfs(tmp_path), tmp_path / "_data"
    data.mkdir()
    os.link(root / "real" / "sub" / "f", root / "real" / "same")
    (root / "real" / "deep" / "er").mkdir(parents=True)
    os.link(root / "real" / "sub" / "f", root / "real" / "deep" / "er" / "again")
    os.link(root / "real" / "link", root / "real" / "link2", follow_symlinks=False)  # a linked symlink
    assert copy_up(root, "/real", data) is True
    first = os.stat(data / "sub" / "f")
    assert first.st_nlink == 3
    assert os.stat(data / "same").st_ino == first.st_ino == os.stat(data / "deep" / "er" / "again").st_ino
    assert os.lstat(data / "link").st_ino == os.lstat(data / "link2").st_ino
    assert os.readlink(data / "link2") == "/etc/passwd"
    assert (data / "same").read_text() == "x"
    assert first.st_uid == 1234  # the one inode keeps the attributes of the image's
