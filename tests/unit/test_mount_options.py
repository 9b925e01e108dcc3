"""model/mountoptions.py: fstab options as mount(2) calls, and their failure words, as moby/sys/mount."""

from __future__ import annotations

from dockyard.model.mountoptions import (
    MS_BIND,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MountCall,
    mount_calls,
    split_options,
)


def test_flags_are_split_from_the_filesystems_data() -> None:
    assert split_options("size=10m,uid=1000") == (0, "size=10m,uid=1000")
    assert split_options("nosuid,size=1m,noexec") == (MS_NOSUID | MS_NOEXEC, "size=1m")
    assert split_options("ro,rw") == (0, "")  # the later word clears the flag
    assert split_options("") == (0, "")
    assert split_options("defaults") == (0, "defaults")  # a flag of 0 is passed on, as moby does


def test_tmpfs_is_one_call() -> None:
    assert mount_calls("tmpfs", "/v/_data", "tmpfs", "size=10m") == (
        MountCall("mount", "tmpfs", "/v/_data", "tmpfs", 0, "size=10m"),
    )


def test_a_read_only_private_bind_takes_three_calls() -> None:
    calls = mount_calls("/srv", "/v/_data", "none", "rbind,ro,rprivate")
    assert calls == (
        MountCall("mount", "/srv", "/v/_data", "none", MS_BIND | MS_REC | MS_RDONLY),
        MountCall("remount", "", "/v/_data", "", MS_PRIVATE | MS_REC),
        MountCall("remount-ro", "", "/v/_data", "", MS_BIND | MS_REC | MS_RDONLY | MS_REMOUNT),
    )


def test_a_device_of_none_without_data_only_changes_the_mount() -> None:
    assert [c.op for c in mount_calls("none", "/t", "none", "private")] == ["remount"]
    assert [c.op for c in mount_calls("none", "/t", "tmpfs", "size=1m")] == ["mount"]


def test_failure_words() -> None:
    tmpfs = MountCall("mount", "tmpfs", "/v/_data", "tmpfs", 0, "size=bogus")
    assert tmpfs.failed("invalid argument") == "mount tmpfs:/v/_data, data: size=bogus: invalid argument"
    bind = MountCall("mount", "/nope", "/v/_data", "none", MS_BIND)
    assert bind.failed("no such file or directory") == "mount /nope:/v/_data, flags: 0x1000: no such file or directory"
    assert MountCall("remount", "", "/t", "", MS_PRIVATE).failed("x") == "remount /t, flags: 0x40000: x"
