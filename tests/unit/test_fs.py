"""linux/fs: trees removed and walked without recursion, whatever their depth."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.linux.fs import Trash, remove_tree, walk_files

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY


def _deep_tree(top: Path, depth: int, name: str = "d") -> None:
    """A chain `top/d/d/d/...` `depth` levels deep, made through dir fds (deeper than PATH_MAX)."""
    top.mkdir()
    fd = os.open(top, _DIR_FLAGS)
    try:
        for i in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            if i % 100 == 0:
                with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=child), "wb") as f:
                    f.write(b"x" * 10)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def test_removes_a_tree_deeper_than_the_recursion_limit_and_path_max(tmp_path: Path) -> None:
    top = tmp_path / "deep"
    _deep_tree(top, 2500, name="d" * 20)  # 2500 * 21 bytes: far beyond PATH_MAX (4096)
    remove_tree(top)
    assert not top.exists()


def test_remove_tree_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    top = tmp_path / "tree"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "file").write_text("x")
    (top / "a" / "link").symlink_to(outside)
    (top / "abs").symlink_to("/")
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep").read_text() == "precious"


def test_remove_tree_of_missing_path_or_file(tmp_path: Path) -> None:
    remove_tree(tmp_path / "nothing")
    f = tmp_path / "file"
    f.write_text("x")
    remove_tree(f)
    assert not f.exists()


def test_remove_tree_relative_to_a_dir_fd(tmp_path: Path) -> None:
    (tmp_path / "t" / "x" / "y").mkdir(parents=True)
    fd = os.open(tmp_path, _DIR_FLAGS)
    try:
        remove_tree("t", dir_fd=fd)
    finally:
        os.close(fd)
    assert not (tmp_path / "t").exists()


def test_walk_files_is_iterative_and_skips_directories(tmp_path: Path) -> None:
    _deep_tree(tmp_path / "deep", 2500, name="d" * 20)
    try:
        (tmp_path / "deep" / "link").symlink_to("/")
        sizes = sorted(st.st_size for st in walk_files(tmp_path / "deep"))
        assert sizes == [1] + [10] * 25  # the symlink itself, and every file however deep
    finally:
        remove_tree(tmp_path / "deep")  # pytest's own cleanup would recurse too deep


def test_trash_discards_at_once_and_empties_later(tmp_path: Path) -> None:
    trash = Trash(tmp_path / "trash")
    victim = tmp_path / "victim"
    _deep_tree(victim, 1200)
    trash.discard(victim)
    assert not victim.exists()
    assert len(list(trash.root.iterdir())) == 1
    assert trash.empty() == 0
    assert list(trash.root.iterdir()) == []
