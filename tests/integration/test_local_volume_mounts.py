"""volumes/local.py on the real kernel: a volume's filesystem mounted on its _data and
unmounted, bad options leaving nothing mounted, and removal that never follows a mount
or leaves half the data under the volume's name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import Internal
from dockyard.linux.mount import is_mounted
from dockyard.model.volumes import LocalOptions
from dockyard.volumes.local import LocalVolumes

TMPFS = LocalOptions("tmpfs", "tmpfs", "size=1m,uid=1000,mode=0750")


def _mounted_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


@pytest.fixture
def local(tmp_path: Path):  # type: ignore[no-untyped-def]
    volumes = LocalVolumes(tmp_path / "volumes")
    yield volumes
    for point in sorted(_mounted_under(tmp_path), key=len, reverse=True):
        os.system(f"umount -l {point}")


def test_tmpfs_is_mounted_with_its_options_and_unmounted(local: LocalVolumes, tmp_path: Path) -> None:
    data = local.make("tv")
    (data / "under").write_text("hidden while mounted")
    local.mount("tv", TMPFS)
    assert local.is_mounted("tv") and is_mounted(str(data))
    st = os.stat(data)
    assert (st.st_uid, st.st_mode & 0o777) == (1000, 0o750)
    assert os.listdir(data) == []
    (data / "gone").write_text("x")
    assert os.statvfs(data).f_blocks * os.statvfs(data).f_frsize == 1 << 20
    local.unmount("tv")
    assert not local.is_mounted("tv")
    assert os.listdir(data) == ["under"]  # the tmpfs's file went with it
    local.unmount("tv")  # not mounted: nothing to do


def test_a_bind_style_volume_shows_the_host_directory(local: LocalVolumes, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "file").write_text("from the host")
    data = local.make("bv")
    local.mount("bv", LocalOptions("none", str(host), "bind"))
    assert (data / "file").read_text() == "from the host"
    local.remove("bv")  # unmounts first: the host's data is never deleted through the bind
    assert (host / "file").read_text() == "from the host"
    assert not (tmp_path / "volumes" / "bv").exists()
    assert _mounted_under(tmp_path) == []


def test_a_read_only_bind_is_read_only(local: LocalVolumes, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    data = local.make("ro")
    local.mount("ro", LocalOptions("none", str(host), "bind,ro"))
    with pytest.raises(OSError, match="Read-only file system"):
        (data / "nope").write_text("x")
    local.unmount("ro")
    assert _mounted_under(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (LocalOptions("tmpfs", "tmpfs", "size=bogus"), "mount tmpfs:{path}, data: size=bogus: invalid argument"),
        (LocalOptions("none", "/nonexistent-dy", "bind"), "mount /nonexistent-dy:{path}, flags: 0x1000: no such file or directory"),
        (LocalOptions("nosuchfs", "x", ""), "mount x:{path}: no such device"),
    ],
)
def test_a_bad_mount_fails_with_dockerds_words_and_leaves_nothing(
    local: LocalVolumes, tmp_path: Path, options: LocalOptions, words: str
) -> None:
    data = local.make("bad")
    with pytest.raises(Internal) as caught:
        local.mount("bad", options)
    path = str(data)
    assert caught.value.message == (
        f"error while mounting volume '{path}': failed to mount local volume: " + words.format(path=path)
    )
    assert _mounted_under(tmp_path) == []


def test_sweep_puts_back_an_unfinished_removal_and_drops_the_rest(local: LocalVolumes, tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    for name in ("kept", "rolled", "orphan", "gone"):
        (local.make(name) / "f").write_text(name)
    rolled = local.set_aside("rolled")  # its row was never deleted: the removal did not happen
    gone = local.set_aside("gone")  # its row went; the data deletion did not finish
    assert rolled is not None and gone is not None and not (root / "rolled").exists()
    local.mount("orphan", TMPFS)  # a half-made volume, mounted even: unmounted, then deleted
    assert local.sweep(["kept", "rolled"]) == 2
    assert sorted(os.listdir(root)) == ["kept", "rolled"]
    assert (root / "rolled" / "_data" / "f").read_text() == "rolled"
    assert _mounted_under(tmp_path) == []


def test_a_directory_without_a_row_is_never_adopted(local: LocalVolumes, tmp_path: Path) -> None:
    (local.make("stale") / "half-removed").write_text("old")
    data = local.make("stale")  # the caller has no row for it: a fresh, empty volume
    assert os.listdir(data) == []


def test_a_data_root_reached_through_a_symlink_is_unmounted_all_the_same(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    local = LocalVolumes(tmp_path / "via" / "volumes")
    try:
        local.make("sv")
        local.mount("sv", TMPFS)
        assert local.is_mounted("sv")
        local.remove("sv")
        assert _mounted_under(tmp_path) == [] and os.listdir(tmp_path / "real" / "volumes") == []
    finally:
        for point in _mounted_under(tmp_path):
            os.system(f"umount -l {point}")
