"""docker cp / export on a real directory tree acting as a hostile container rootfs.

The rootfs holds symlinks to `/`, to `../../../etc`, to the host's own paths, and bind mounts
(read-write, read-only, a file); nothing outside the rootfs and the mounts' sources may be
read or written, whatever the path or the tar says.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.errors import Internal, InvalidArgument, NotFound
from dockyard.layers.containerfs import (
    ContainerFS,
    ExtractLimits,
    MountPoint,
    export_rootfs,
    extract_archive,
    open_archive,
    stat_path,
)
from dockyard.linux.fs import remove_tree
from dockyard.linux.rootpath import ContainerRoot
from dockyard.model.pathstat import GoMode

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ownership, devices)"),
]


def _snapshot(top: Path) -> dict[str, tuple[int, int, int, str]]:
    """Everything about a tree that a write through it would change."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            out[os.path.relpath(p, top)] = (st.st_mode, st.st_nlink, st.st_mtime_ns, digest)
    return out


@dataclass
class Box:
    rootfs: Path
    outside: Path  # host directory the container must never reach
    vol: Path  # a rw bind mount's source, at /mnt
    rovol: Path  # a ro bind mount's source, at /ro
    hostfile: Path  # a file bind mount's source, at /etc/hostname

    def fs(self, *, read_only: bool = False) -> ContainerFS:
        mounts = (
            MountPoint("/mnt", str(self.vol)),
            MountPoint("/ro", str(self.rovol), read_only=True),
            MountPoint("/etc/hostname", str(self.hostfile)),
        )
        return ContainerFS(self.rootfs, mounts, read_only=read_only, label="c1")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "passwd").write_bytes(b"HOST-PASSWD")
    (outside / "secret").write_bytes(b"HOST-SECRET")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "hostname").write_bytes(b"")  # the mountpoint runc made
    (rootfs / "tmp").mkdir()
    (rootfs / "mnt").mkdir()
    (rootfs / "ro").mkdir()
    (rootfs / "dir" / "sub").mkdir(parents=True)
    (rootfs / "dir" / "sub" / "file").write_bytes(b"in-container")
    os.symlink("/", rootfs / "to_root")
    os.symlink("../../../etc", rootfs / "tmp" / "up_etc")
    os.symlink("/etc", rootfs / "abs_etc")
    os.symlink(str(outside), rootfs / "host_abs")  # a host path: in the container it is nothing
    os.symlink("../" * 8 + str(outside).lstrip("/"), rootfs / "tmp" / "host_rel")
    os.symlink("loop2", rootfs / "loop1")
    os.symlink("loop1", rootfs / "loop2")
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "data").write_bytes(b"volume-data")
    os.symlink("../../../..", vol / "up")  # leaves the mount: back into the container root
    rovol = tmp_path / "rovol"
    rovol.mkdir()
    (rovol / "keep").write_bytes(b"ro")
    hostfile = tmp_path / "hostname"
    hostfile.write_bytes(b"c1-host\n")
    before = _snapshot(outside)
    ro_before = _snapshot(rovol)
    shadow = os.stat("/etc/shadow") if os.path.exists("/etc/shadow") else None
    yield Box(rootfs, outside, vol, rovol, hostfile)
    assert _snapshot(outside) == before, "the host outside the container changed"
    assert _snapshot(rovol) == ro_before, "a read-only mount was written"
    if shadow is not None:
        after = os.stat("/etc/shadow")
        assert (after.st_nlink, after.st_mtime_ns) == (shadow.st_nlink, shadow.st_mtime_ns)


def raw_names(data: bytes) -> list[str]:
    """Member names exactly as written (Python's reader strips a directory's trailing "/",
    which the docker CLI's rebasing depends on)."""
    names: list[str] = []
    offset, pax_path = 0, None
    while offset + 512 <= len(data) and data[offset : offset + 512].strip(b"\0"):
        block = data[offset : offset + 512]
        size = int(block[124:136].strip(b"\0 ") or b"0", 8)
        kind = block[156:157]
        body = data[offset + 512 : offset + 512 + size]
        if kind == b"x":
            for record in body.decode().split("\n"):
                key, _, value = record.partition(" ")[2].partition("=")
                if key == "path":
                    pax_path = value
        else:
            name = block[0:100].rstrip(b"\0").decode()
            prefix = block[345:500].rstrip(b"\0").decode()
            names.append(pax_path or (f"{prefix}/{name}" if prefix else name))
            pax_path = None
        offset += 512 + (size + 511) // 512 * 512
    return names


def tar_bytes(path: str, fs: ContainerFS) -> bytes:
    out = io.BytesIO()
    with open_archive(fs, path) as source:
        source.write(out)
    return out.getvalue()


def tar_of(path: str, fs: ContainerFS) -> dict[str, tarfile.TarInfo | bytes]:
    """GET archive as {raw name: data for files, TarInfo otherwise}."""
    data = tar_bytes(path, fs)
    found: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for raw, m in zip(raw_names(data), tf.getmembers(), strict=True):
            f = tf.extractfile(m) if m.isreg() else None
            found[raw] = f.read() if f is not None else m
    return found


def make_tar(*entries: tuple[str, bytes | str | None], kind: bytes = tarfile.REGTYPE, uid: int = 0) -> bytes:
    """("name", b"data") files, ("name/", None) dirs, ("name", "target") symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = uid
            info.mtime = 1_600_000_000
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif isinstance(value, str):
                info.type, info.linkname = (kind if kind != tarfile.REGTYPE else tarfile.SYMTYPE), value
                tf.addfile(info)
            else:
                info.size, info.mode = len(value), 0o644
                tf.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def put(fs: ContainerFS, path: str, data: bytes, **kwargs: object) -> int:
    return extract_archive(fs, path, io.BytesIO(data), **kwargs)  # type: ignore[arg-type]


# ---- HEAD: stat ---------------------------------------------------------------------------


def test_stat_describes_the_entry_and_resolves_links_in_the_root(box: Box) -> None:
    fs = box.fs()
    passwd = stat_path(fs, "/etc/passwd")
    assert (passwd.name, passwd.size, passwd.mode) == ("passwd", 30, 0o644)
    tmp = stat_path(fs, "/tmp/")
    assert tmp.name == "tmp" and tmp.mode & GoMode.DIR
    link = stat_path(fs, "/to_root")
    assert link.mode & GoMode.SYMLINK and link.link_target == "/"
    assert stat_path(fs, "/tmp/up_etc").link_target == "/etc"  # ../../../ stops at the root
    assert stat_path(fs, "/host_abs").link_target == str(box.outside)  # dangling in here
    # Through intermediate links: the container's file, never the host's.
    assert stat_path(fs, "/tmp/up_etc/passwd").size == 30
    assert stat_path(fs, "/to_root/etc/passwd").size == 30
    with pytest.raises(NotFound, match=r"^Could not find the file /host_abs/secret in container c1$"):
        stat_path(fs, "/host_abs/secret")
    with pytest.raises(NotFound):
        stat_path(fs, "/tmp/host_rel/secret")
    with pytest.raises(Internal, match="Too many levels of symbolic links"):
        stat_path(fs, "/loop1/x")
    with pytest.raises(InvalidArgument, match="path is required"):
        stat_path(fs, "")


def test_stat_sees_bind_mounts_and_cannot_leave_them(box: Box) -> None:
    fs = box.fs()
    assert stat_path(fs, "/mnt/data").size == len(b"volume-data")
    assert stat_path(fs, "/etc/hostname").size == len(b"c1-host\n")  # the mount, not the mountpoint
    # `..` and symlinks out of a mount's root lead back into the container, not the host.
    assert stat_path(fs, "/mnt/../etc/passwd").size == 30
    assert stat_path(fs, "/mnt/up").link_target == "/"
    assert stat_path(fs, "/mnt/up/etc/passwd").size == 30


# ---- GET: archive -------------------------------------------------------------------------


def test_archive_of_a_directory_is_named_from_its_base(box: Box) -> None:
    fs = box.fs()
    etc = tar_of("/etc", fs)
    assert sorted(etc) == ["etc/", "etc/hostname", "etc/passwd"]
    assert etc["etc/hostname"] == b"c1-host\n"  # from the file bind mount
    assert etc["etc/passwd"] == b"root:x:0:0:root:/root:/bin/sh\n"
    assert sorted(tar_of("/etc/.", fs)) == ["./", "./hostname", "./passwd"]
    assert sorted(tar_of("/dir/", fs)) == ["dir/", "dir/sub/", "dir/sub/file"]
    whole = tar_of("/", fs)
    assert "/" in whole and "/dir/sub/file" in whole and "/mnt/data" in whole
    root_link = whole["/to_root"]
    assert isinstance(root_link, tarfile.TarInfo) and root_link.issym() and root_link.linkname == "/"
    assert not any(v in (b"HOST-PASSWD", b"HOST-SECRET") for v in whole.values())


def test_archive_of_a_file_or_link_is_one_entry(box: Box) -> None:
    fs = box.fs()
    assert tar_of("/etc/passwd", fs) == {"passwd": b"root:x:0:0:root:/root:/bin/sh\n"}
    link = tar_of("/tmp/up_etc", fs)["up_etc"]
    assert isinstance(link, tarfile.TarInfo) and link.linkname == "../../../etc"
    # The parents are followed inside the root; a trailing "/" follows the last link too.
    assert tar_of("/tmp/up_etc/passwd", fs) == {"passwd": b"root:x:0:0:root:/root:/bin/sh\n"}
    followed = tar_of("/to_root/", fs)
    assert "to_root/etc/passwd" in followed and "to_root/dir/sub/file" in followed
    assert tar_of("/mnt/up/etc/passwd", fs) == {"passwd": b"root:x:0:0:root:/root:/bin/sh\n"}
    assert tar_of("/etc/hostname", fs) == {"hostname": b"c1-host\n"}  # a file bind mount
    assert sorted(tar_of("/mnt", fs)) == ["mnt/", "mnt/data", "mnt/up"]


@pytest.mark.parametrize(
    "path",
    ["/host_abs/secret", "/tmp/host_rel/secret", "/tmp/up_etc/shadow", "/../../../../etc/shadow",
     "/to_root/../../../etc/shadow", "/abs_etc/../../../../../etc/shadow"],
)  # fmt: skip
def test_archive_never_reads_the_host(box: Box, path: str) -> None:
    with pytest.raises(NotFound, match=f"Could not find the file {path} in container c1"):
        open_archive(box.fs(), path)


def test_archive_stat_matches_what_is_sent(box: Box) -> None:
    with open_archive(box.fs(), "/tmp/up_etc") as source:
        assert source.stat.name == "up_etc" and source.stat.link_target == "/etc"
    with open_archive(box.fs(), "/etc/.") as source:
        assert source.stat.name == "." and source.stat.is_dir


def test_archive_of_a_tree_deeper_than_the_recursion_limit(box: Box) -> None:
    fd = os.open(box.rootfs / "tmp", os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    try:
        names = tar_of("/tmp/d", box.fs())
        assert len([n for n in names if n.startswith("d/")]) == 1500
    finally:
        remove_tree(box.rootfs / "tmp" / "d")  # pytest's own cleanup would recurse


# ---- PUT: extract -------------------------------------------------------------------------


def test_extract_writes_inside_the_container(box: Box) -> None:
    fs = box.fs()
    assert put(fs, "/tmp", make_tar(("x", b"1"), ("d/", None), ("d/y", b"2"), ("/abs", b"3"))) == 4
    assert (box.rootfs / "tmp" / "x").read_bytes() == b"1"
    assert (box.rootfs / "tmp" / "d" / "y").read_bytes() == b"2"
    assert (box.rootfs / "tmp" / "abs").read_bytes() == b"3"  # an absolute name is inside
    # The extraction point's symlinks are followed inside the root.
    put(fs, "/to_root", make_tar(("tmp/via_root", b"4")))
    put(fs, "/tmp/up_etc", make_tar(("via_up", b"5")))
    put(fs, "/host_abs/..", make_tar(("via_host", b"6")))  # "/host_abs/.." is "/"
    assert (box.rootfs / "tmp" / "via_root").read_bytes() == b"4"
    assert (box.rootfs / "etc" / "via_up").read_bytes() == b"5"
    assert (box.rootfs / "via_host").read_bytes() == b"6"
    gz = gzip.compress(make_tar(("zipped", b"7")))
    put(fs, "/tmp", gz)
    assert (box.rootfs / "tmp" / "zipped").read_bytes() == b"7"


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ((("../x", b"1"),), "points outside the extraction directory"),
        ((("a/../../x", b"1"),), "points outside the extraction directory"),
        ((("s", "/"), ("s/etc/passwd", b"evil")), "not a directory inside"),
        ((("s", "../../../../.."), ("s/x", b"evil")), "invalid symlink"),
        ((("up_etc/evil", b"x"),), "not a directory inside"),  # an existing link as a parent
        ((("host_rel/secret", b"x"),), "not a directory inside"),
    ],
)
def test_extract_refuses_escapes(box: Box, entries: tuple[tuple[str, bytes | str | None], ...], error: str) -> None:
    with pytest.raises(InvalidArgument, match=error):
        put(box.fs(), "/tmp", make_tar(*entries))
    assert (box.rootfs / "etc" / "passwd").read_bytes() == b"root:x:0:0:root:/root:/bin/sh\n"


def test_extract_symlinks_stay_links_and_are_not_written_through(box: Box) -> None:
    fs = box.fs()
    # dockerd takes an absolute link target as inside the extraction directory: allowed.
    put(fs, "/tmp", make_tar(("abs_link", str(box.outside / "secret"))))
    assert os.readlink(box.rootfs / "tmp" / "abs_link") == str(box.outside / "secret")
    with pytest.raises(InvalidArgument, match="not a directory inside"):
        put(fs, "/tmp", make_tar(("hostdir", str(box.outside)), ("hostdir/new", b"evil")))
    # A file member over an existing link replaces the link, never writes through it.
    put(fs, "/tmp", make_tar(("abs_link", b"replaced")))
    assert (box.rootfs / "tmp" / "abs_link").read_bytes() == b"replaced"


def test_extract_hardlinks_stay_in_the_extraction_root(box: Box) -> None:
    fs = box.fs()
    with pytest.raises(InvalidArgument, match="not found"):
        put(fs, "/", make_tar(("h", "/etc/shadow"), kind=tarfile.LNKTYPE))
    with pytest.raises(InvalidArgument, match="outside"):
        put(fs, "/tmp", make_tar(("h", "../../../../etc/shadow"), kind=tarfile.LNKTYPE))
    put(fs, "/tmp", make_tar(("f", b"data"), ("h", "f"), kind=tarfile.LNKTYPE))
    assert os.stat(box.rootfs / "tmp" / "h").st_ino == os.stat(box.rootfs / "tmp" / "f").st_ino


def test_extract_point_errors_are_dockerds(box: Box) -> None:
    fs = box.fs()
    with pytest.raises(NotFound, match="^Could not find the file /nope in container c1$"):
        put(fs, "/nope", make_tar(("x", b"1")))
    with pytest.raises(InvalidArgument, match="^extraction point is not a directory$"):
        put(fs, "/etc/passwd", make_tar(("x", b"1")))
    with pytest.raises(InvalidArgument, match="^container rootfs is marked read-only$"):
        put(box.fs(read_only=True), "/tmp", make_tar(("x", b"1")))
    with pytest.raises(InvalidArgument, match="^mounted volume is marked read-only$"):
        put(fs, "/ro", make_tar(("x", b"1")))
    assert not (box.rootfs / "tmp" / "x").exists()


def test_extract_into_bind_mounts(box: Box) -> None:
    fs = box.fs()
    put(fs, "/mnt", make_tar(("new", b"v")))
    assert (box.vol / "new").read_bytes() == b"v"
    put(fs, "/", make_tar(("mnt/", None), ("mnt/deeper", b"w")))  # crosses into the mount
    assert (box.vol / "deeper").read_bytes() == b"w"
    assert not (box.rootfs / "mnt" / "deeper").exists()
    with pytest.raises(Internal, match="Read-only file system"):
        put(fs, "/", make_tar(("ro/evil", b"x")))
    with pytest.raises(Internal, match="busy"):
        put(fs, "/", make_tar(("etc/hostname", b"replaced")))  # a file bind mount
    assert box.hostfile.read_bytes() == b"c1-host\n"
    # The mount's own escape hatch leads into the container.
    put(fs, "/mnt/up", make_tar(("from_mount", b"z")))
    assert (box.rootfs / "from_mount").read_bytes() == b"z"


def test_no_overwrite_dir_non_dir(box: Box) -> None:
    fs = box.fs()
    (box.rootfs / "tmp" / "d").mkdir()
    (box.rootfs / "tmp" / "f").write_bytes(b"")
    with pytest.raises(Internal, match='cannot overwrite directory "/tmp/d" with non-directory "/tmp"'):
        put(fs, "/tmp", make_tar(("d", b"1")), no_overwrite_dir_non_dir=True)
    with pytest.raises(Internal, match='cannot overwrite non-directory "/tmp/f" with directory'):
        put(fs, "/tmp", make_tar(("f/", None)), no_overwrite_dir_non_dir=True)
    put(fs, "/tmp", make_tar(("d", b"1"), ("f/", None)))  # allowed without the flag
    assert (box.rootfs / "tmp" / "d").read_bytes() == b"1" and (box.rootfs / "tmp" / "f").is_dir()


def test_owners_devices_and_limits(box: Box) -> None:
    fs = box.fs()
    put(fs, "/tmp", make_tar(("mine", b"1"), uid=1234))
    assert os.stat(box.rootfs / "tmp" / "mine").st_uid == 1234  # the tar's owner is kept
    put(fs, "/tmp", make_tar(("theirs", b"1"), ("implied/sub/f", b"2"), uid=1234), owner=(33, 44))
    st = os.stat(box.rootfs / "tmp" / "theirs")
    assert (st.st_uid, st.st_gid) == (33, 44)
    implied = os.stat(box.rootfs / "tmp" / "implied")
    assert (implied.st_uid, stat.S_IMODE(implied.st_mode)) == (0, 0o755)
    device = io.BytesIO()
    with tarfile.open(fileobj=device, mode="w") as tf:
        info = tarfile.TarInfo("null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tf.addfile(info)
    with pytest.raises(InvalidArgument, match="device nodes"):
        put(fs, "/tmp", device.getvalue())
    assert not (box.rootfs / "tmp" / "null").exists()
    with pytest.raises(InvalidArgument, match="more than 2 entries"):
        put(fs, "/tmp", make_tar(("a", b""), ("b", b""), ("c", b"")), limits=ExtractLimits(max_entries=2))
    with pytest.raises(InvalidArgument, match="invalid archive"):
        put(fs, "/tmp", b"this is not a tar" * 64)


# ---- export ---------------------------------------------------------------------------------


def test_export_is_the_rootfs_with_relative_names(box: Box) -> None:
    out = io.BytesIO()
    export_rootfs(box.rootfs, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tf:
        names = dict(zip(raw_names(out.getvalue()), tf.getmembers(), strict=True))
    assert "etc/" in names and "etc/passwd" in names and "dir/sub/file" in names
    assert not any(n.startswith(("/", "./")) for n in names)
    assert names["to_root"].issym() and names["to_root"].linkname == "/"
    assert "mnt/data" not in names  # bind mounts are not part of the container's rootfs


def test_read_file_stays_in_the_root(box: Box) -> None:
    with ContainerRoot(box.rootfs) as root:
        assert root.read_file("/etc/passwd") == b"root:x:0:0:root:/root:/bin/sh\n"
        assert root.read_file("/host_abs/etc/passwd") is None
        assert root.read_file("/tmp/host_rel/etc/passwd") is None
        assert root.read_file("/to_root/etc/passwd", limit=4) == b"root"
