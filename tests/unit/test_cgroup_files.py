"""Finding this process's own cgroup.procs file (linux/cgroups.py own_procs_file)."""

from __future__ import annotations

from pathlib import Path

from dockyard.linux.cgroups import own_procs_file


def _tree(root: Path, *dirs: str) -> None:
    for d in dirs:
        (root / d).mkdir(parents=True)
        (root / d / "cgroup.procs").write_text("")


def test_v1_takes_a_controller_hierarchy(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _tree(root, "pids/system.slice", "memory")
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/x\n8:pids:/system.slice\n4:memory:/\n")
    assert own_procs_file(str(root), str(proc)) == str(root / "pids/system.slice/cgroup.procs")


def test_v2_takes_the_unified_path(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    _tree(root, "a/b")
    (root / "cgroup.controllers").write_text("pids memory\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/a/b\n")
    assert own_procs_file(str(root), str(proc)) == str(root / "a/b/cgroup.procs")


def test_nothing_found_is_none(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n")
    assert own_procs_file(str(tmp_path / "cg"), str(proc)) is None
    assert own_procs_file(str(tmp_path / "cg"), str(tmp_path / "absent")) is None
