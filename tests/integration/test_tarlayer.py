"""Layer tars into and out of overlayfs layer dirs, on the real filesystem and kernel."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zstandard

from dockyard.errors import InvalidArgument
from dockyard.layers.tarlayer import apply_layer_tar, write_layer_tar

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ownership, devices, xattrs)"),
]

T0 = 1_600_000_000
NOISE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(400))  # incompressible


@dataclass
class E:
    """One tar entry for building test layers."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = T0
    link: str = ""
    dev: tuple[int, int] = (0, 0)
    pax: dict[str, str] = field(default_factory=dict)


def make_tar(entries: list[E], pad: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
            info.linkname = e.link
            info.devmajor, info.devminor = e.dev
            info.pax_headers = dict(e.pax)
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue() + b"\0" * pad


def apply(data: bytes, dest: Path) -> tuple[str, int, int]:
    dest.mkdir(exist_ok=True)
    applied = apply_layer_tar(io.BytesIO(data), dest)
    return applied.diff_id, applied.size, applied.tar_size


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_whiteout(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def d(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = T0) -> E:
    return E(name, tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime)


# ---- applying ---------------------------------------------------------------------------


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    data = make_tar(
        [
            d("etc/"),
            E("etc/.wh.passwd"),
            E(".wh.gone"),
            d("var/"),
            E("var/.wh..wh..opq"),
            E("var/new", data=b"new"),
            E("missing-parent/.wh.x"),
            # `.wh.d` then `d/...` in the same layer: a new d that hides the lower one.
            E(".wh.renewed"),
            E("renewed/file", data=b"r"),
            E(".wh..wh.plnk/123", data=b"aufs"),  # aufs bookkeeping is dropped
        ]
    )
    layer = tmp_path / "layer"
    apply(data, layer)
    assert is_whiteout(layer / "etc/passwd")
    assert is_whiteout(layer / "gone")
    assert is_whiteout(layer / "missing-parent/x")
    assert opaque(layer / "var") and not opaque(layer / "etc")
    assert not (layer / "var/.wh..wh..opq").exists()
    assert (layer / "var/new").read_bytes() == b"new"
    assert (layer / "renewed").is_dir() and opaque(layer / "renewed")
    assert not (layer / ".wh..wh.plnk").exists()
    assert not any(p.name.startswith(".wh.") for p in layer.rglob("*"))


def test_whiteout_for_an_entry_of_the_same_layer_keeps_it(tmp_path: Path) -> None:
    # OCI: a whiteout only hides lower layers; a directory made here must stop merging.
    data = make_tar([d("keep/"), E("keep/f", data=b"1"), E(".wh.keep"), E("file"), E(".wh.file")])
    layer = tmp_path / "layer"
    apply(data, layer)
    assert (layer / "keep/f").read_bytes() == b"1" and opaque(layer / "keep")
    assert (layer / "file").is_file()


def test_later_members_replace_earlier_ones(tmp_path: Path) -> None:
    data = make_tar(
        [
            d("p/q/"),
            E("p/q/f", data=b"f"),
            E("p/q", data=b"dir became a file"),  # its parent's fd is the cached one
            d("top/sub/"),
            E("top/sub/f", data=b"f"),
            E("top", data=b"top became a file"),  # the cached fd lived inside it
            E("next/g", data=b"g"),
            E("c", data=b"file"),
            d("c/", mode=0o700),
            E("c/in", data=b"in"),
            d("m/", mode=0o711),
            E("m/one", data=b"1"),
            d("m/", mode=0o755),  # directories merge
            E("m/two", data=b"2"),
        ]
    )
    layer = tmp_path / "layer"
    apply(data, layer)
    assert (layer / "p/q").read_bytes() == b"dir became a file"
    assert (layer / "top").read_bytes() == b"top became a file"
    assert (layer / "next/g").read_bytes() == b"g"
    assert (layer / "c/in").read_bytes() == b"in"
    assert stat.S_IMODE((layer / "c").lstat().st_mode) == 0o700
    assert sorted(p.name for p in (layer / "m").iterdir()) == ["one", "two"]
    assert stat.S_IMODE((layer / "m").lstat().st_mode) == 0o755


def test_metadata_devices_links_and_xattrs(tmp_path: Path) -> None:
    cap = bytes([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    data = make_tar(
        [
            d("dir/", uid=1000, gid=1001, mtime=T0 + 1),
            E(
                "dir/suid",
                data=b"#!bin",
                mode=0o4755,
                uid=1000,
                gid=1001,
                pax={
                    "mtime": f"{T0 + 5}.123456789",
                    "SCHILY.xattr.user.note": "hello",
                    "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
                    "SCHILY.xattr.trusted.overlay.redirect": "/etc",  # must not be honoured
                },
            ),
            E("dir/hard", tarfile.LNKTYPE, link="dir/suid"),
            E("dir/sym", tarfile.SYMTYPE, link="/etc/passwd", uid=7, gid=8, mtime=T0 + 2),
            E("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
            E("dev/loop0", tarfile.BLKTYPE, mode=0o660, dev=(7, 0), gid=6),
            E("run/fifo", tarfile.FIFOTYPE, mode=0o600),
            d("sticky/", mode=0o1777),
        ]
    )
    layer = tmp_path / "layer"
    diff_id, size, _ = apply(data, layer)
    # dockerd's DiffSize: the file's bytes and the symlink's target length; no hard link twice.
    assert diff_id == sha(data) and size == len(b"#!bin") + len(b"/etc/passwd")

    suid = (layer / "dir/suid").lstat()
    assert stat.S_IMODE(suid.st_mode) == 0o4755  # chown before chmod keeps the setuid bit
    assert (suid.st_uid, suid.st_gid) == (1000, 1001)
    assert suid.st_mtime_ns == (T0 + 5) * 10**9 + 123456789
    assert os.getxattr(layer / "dir/suid", "user.note") == b"hello"
    assert os.getxattr(layer / "dir/suid", "security.capability") == cap
    assert "trusted.overlay.redirect" not in os.listxattr(layer / "dir/suid")
    assert (layer / "dir/hard").lstat().st_ino == suid.st_ino

    sym = (layer / "dir/sym").lstat()
    assert stat.S_ISLNK(sym.st_mode) and os.readlink(layer / "dir/sym") == "/etc/passwd"
    assert (sym.st_uid, sym.st_gid, sym.st_mtime) == (7, 8, T0 + 2)

    null = (layer / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = (layer / "dev/loop0").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6
    assert stat.S_ISFIFO((layer / "run/fifo").lstat().st_mode)
    assert stat.S_IMODE((layer / "sticky").lstat().st_mode) == 0o1777

    # Directory times are set last, after children were created in them.
    dir_st = (layer / "dir").lstat()
    assert dir_st.st_mtime == T0 + 1 and (dir_st.st_uid, dir_st.st_gid) == (1000, 1001)
    # Parents the tar never listed are made 0755 root.
    dev_st = (layer / "dev").lstat()
    assert stat.S_IMODE(dev_st.st_mode) == 0o755 and dev_st.st_uid == 0


def test_diff_id_covers_the_whole_stream_and_gzip_is_undone(tmp_path: Path) -> None:
    data = make_tar([E("a", data=b"x" * 1000), E("b", data=b"y" * 24)], pad=20 * 512)
    diff_id, size, tar_size = apply(data, tmp_path / "plain")
    assert (diff_id, size, tar_size) == (sha(data), 1024, len(data))

    gz_diff, gz_size, gz_tar_size = apply(gzip.compress(data), tmp_path / "gz")
    assert (gz_diff, gz_size, gz_tar_size) == (sha(data), 1024, len(data))
    assert (tmp_path / "gz/a").read_bytes() == b"x" * 1000


def test_empty_stream_is_an_empty_layer(tmp_path: Path) -> None:
    assert apply(b"", tmp_path / "empty") == (sha(b""), 0, 0)
    assert apply(b"\0" * 1024, tmp_path / "zeros") == (sha(b"\0" * 1024), 0, 1024)
    assert list((tmp_path / "zeros").iterdir()) == []


def test_zstd_layers_of_several_frames_apply(tmp_path: Path) -> None:
    tar = make_tar([E("a", data=NOISE), E("b", data=b"b" * 100_000)])
    half = len(tar) // 2
    frames = zstandard.ZstdCompressor().compress(tar[:half]) + zstandard.ZstdCompressor(level=9).compress(tar[half:])
    assert apply(frames, tmp_path / "layer")[0] == sha(tar)
    assert (tmp_path / "layer" / "a").read_bytes() == NOISE


def bad_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize(
    "data, match",
    [
        (b"definitely not a tar archive" * 30, "invalid tar header"),
        (b"\x28\xb5\x2f\xfd" + b"\0" * 100, "unexpected EOF"),
        (zstandard.ZstdCompressor().compress(make_tar([E("a", data=NOISE)]))[:3000], "unexpected EOF"),
        (gzip.compress(make_tar([E("a", data=NOISE)]))[:5000], "unexpected EOF"),
        (bad_crc(gzip.compress(make_tar([E("a", data=NOISE)]))), "corrupt stream: CRC check"),
        # A deflate block of reserved type 3: the inflater's own error (zlib-ng's class).
        (gzip.compress(b"")[:10] + b"\xff" * 100, "corrupt stream: .*invalid block type"),
    ],
    ids=["garbage", "zstd-cut-header", "cut-zstd", "cut-gzip", "gzip-crc", "gzip-bad-block"],
)
def test_bad_streams_are_invalid_arguments(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        apply(data, tmp_path / "layer")


def test_truncated_and_corrupt_tars_are_refused(tmp_path: Path) -> None:
    whole = make_tar([E("a", data=b"a" * 5000), E("b", data=b"b" * 5000)])
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        apply(whole[:3000], tmp_path / "cut")
    # A broken header after the first member: tarfile alone would stop quietly there.
    broken = bytearray(whole)
    second = 512 + 5120  # first header + its data, rounded to blocks
    broken[second : second + 100] = b"\xff" * 100
    with pytest.raises(InvalidArgument, match="invalid tar header"):
        apply(bytes(broken), tmp_path / "broken")


# ---- escapes ----------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "target").write_text("original")
    yield path
    # Whatever the test did, nothing new may appear outside the layer.
    assert sorted(p.name for p in path.iterdir()) == ["target"]
    assert (path / "target").read_text() == "original"


def test_dotdot_is_refused(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="outside the layer"):
        apply(make_tar([E("../outside/evil", data=b"x")]), tmp_path / "layer")
    with pytest.raises(InvalidArgument, match="outside the layer"):
        apply(make_tar([E("a/../../outside/evil", data=b"x")]), tmp_path / "layer2")


def test_absolute_paths_are_made_relative(tmp_path: Path, outside: Path) -> None:
    layer = tmp_path / "layer"
    apply(make_tar([E(f"{outside}/evil", data=b"x"), E("/abs", data=b"y")]), layer)
    assert (layer / str(outside).lstrip("/") / "evil").read_bytes() == b"x"
    assert (layer / "abs").read_bytes() == b"y"


@pytest.mark.parametrize("absolute", [True, False])
def test_writing_through_a_symlink_is_refused(
    tmp_path: Path, outside: Path, absolute: bool
) -> None:
    layer = tmp_path / "layer"
    target = str(outside) if absolute else "../outside"
    for name in ("evil", "target"):
        with pytest.raises(InvalidArgument, match="not a directory inside the layer"):
            apply(
                make_tar(
                    [E("link", tarfile.SYMTYPE, link=target), E(f"link/{name}", data=b"pwned")]
                ),
                layer,
            )
    with pytest.raises(InvalidArgument, match="not a directory inside the layer"):
        apply(make_tar([E("l2", tarfile.SYMTYPE, link=target), d("l2/sub/")]), layer)
    with pytest.raises(InvalidArgument, match="not a directory inside the layer"):
        apply(make_tar([E("l3", tarfile.SYMTYPE, link=target), E("l3/.wh.target")]), layer)


def test_symlinks_already_in_dest_are_not_followed(tmp_path: Path, outside: Path) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "pre").symlink_to(outside)
    (layer / "file").symlink_to(outside / "target")
    with pytest.raises(InvalidArgument, match="not a directory inside the layer"):
        apply(make_tar([E("pre/evil", data=b"pwned")]), layer)
    # A member at a symlink's own path replaces the symlink; it never writes through it.
    apply(make_tar([E("file", data=b"replaced", mode=0o600)]), layer)
    assert not (layer / "file").is_symlink() and (layer / "file").read_bytes() == b"replaced"


def test_hardlinks_must_stay_inside_the_layer(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(InvalidArgument, match="outside the layer"):
        apply(make_tar([E("h", tarfile.LNKTYPE, link="../outside/target")]), tmp_path / "l1")
    with pytest.raises(InvalidArgument, match="not a directory inside the layer"):
        apply(
            make_tar(
                [
                    E("s", tarfile.SYMTYPE, link=str(outside)),
                    E("h", tarfile.LNKTYPE, link="s/target"),
                ]
            ),
            tmp_path / "l2",
        )
    with pytest.raises(InvalidArgument, match="not found"):
        apply(make_tar([E("h", tarfile.LNKTYPE, link="nothing")]), tmp_path / "l3")
    # Linking a symlink links the symlink itself.
    layer = tmp_path / "l4"
    apply(
        make_tar(
            [
                E("s", tarfile.SYMTYPE, link=str(outside / "target")),
                E("h", tarfile.LNKTYPE, link="s"),
            ]
        ),
        layer,
    )
    assert (layer / "h").is_symlink()


# ---- writing ----------------------------------------------------------------------------


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything write_layer_tar promises to keep, per path."""
    out: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        xattrs = {}
        if not stat.S_ISLNK(st.st_mode):
            xattrs = {
                k: os.getxattr(path, k, follow_symlinks=False)
                for k in os.listxattr(path, follow_symlinks=False)
            }
        content: object = None
        if stat.S_ISREG(st.st_mode):
            content = path.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        out[rel] = (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_mtime_ns // 10**9,
            st.st_rdev,
            st.st_nlink,
            content,
            xattrs,
        )
    return out


RICH = [
    d("etc/", mtime=T0 + 3),
    E("etc/passwd", data=b"root:x:0:0\n", mtime=T0 + 4),
    E("etc/.wh.shadow"),
    d("opt/", mode=0o750, uid=5, gid=6),
    E("opt/.wh..wh..opq"),
    E("opt/tool", data=b"tool", mode=0o4711, pax={"SCHILY.xattr.user.k": "v"}),
    E("opt/tool-link", tarfile.LNKTYPE, link="opt/tool"),
    E("opt/sym", tarfile.SYMTYPE, link="../etc/passwd"),
    E("dev/zero", tarfile.CHRTYPE, mode=0o666, dev=(1, 5)),
    E("fifo", tarfile.FIFOTYPE),
    E(".wh.removed"),
    E("a" * 120 + "/long-name", data=b"long"),
]


def test_write_layer_tar_round_trips(tmp_path: Path) -> None:
    first = tmp_path / "first"
    apply(make_tar(RICH), first)

    out = io.BytesIO()
    digest = write_layer_tar(first, out)
    data = out.getvalue()
    assert digest == sha(data)

    # Overlay whiteouts went back to the tar convention, nothing of overlay leaked out.
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        infos = {info.name: info for info in tf}
    assert ".wh.removed" in infos and "etc/.wh.shadow" in infos and "opt/.wh..wh..opq" in infos
    assert infos["etc/.wh.shadow"].isreg() and infos["etc/.wh.shadow"].size == 0
    assert infos["opt/tool-link"].islnk() and infos["opt/tool-link"].linkname == "opt/tool"
    assert not any("trusted.overlay" in k for info in infos.values() for k in info.pax_headers)
    names = list(infos)
    assert names.index("opt") < names.index("opt/.wh..wh..opq") < names.index("opt/sym")

    second = tmp_path / "second"
    assert apply(data, second)[0] == digest
    assert tree(second) == tree(first)

    # The same tree gives the same bytes.
    again = io.BytesIO()
    assert write_layer_tar(second, again) == digest


def test_export_with_parent_dirs_is_the_merged_view(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    apply(
        make_tar(
            [
                E("a", data=b"a"),
                E("b", data=b"b"),
                E("d/x", data=b"x"),
                E("d/y", data=b"y"),
                E("o/p", data=b"p"),
                E("f/inner", data=b"i"),
            ]
        ),
        lower,
    )
    upper = tmp_path / "upper"
    apply(
        make_tar(
            [
                E(".wh.a"),
                E("d/.wh.x"),
                d("o/"),
                E("o/.wh..wh..opq"),
                E("o/q", data=b"q"),
                E("f", data=b"now a file"),
                E("b", data=b"B"),
            ]
        ),
        upper,
    )
    out = io.BytesIO()
    write_layer_tar(upper, out, parent_dirs=[lower])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        files = {i.name: tf.extractfile(i).read() if i.isreg() else None for i in tf}  # type: ignore[union-attr]
    assert files == {"b": b"B", "d": None, "d/y": b"y", "f": b"now a file", "o": None, "o/q": b"q"}


# ---- a real overlayfs mount ----------------------------------------------------------------


def test_overlay_mount_hides_whiteouts(tmp_path: Path) -> None:
    l1, l2, merged = tmp_path / "l1", tmp_path / "l2", tmp_path / "merged"
    apply(
        make_tar(
            [
                E("keep", data=b"k"),
                E("gone", data=b"g"),
                E("d/old", data=b"o"),
                E("e/stay", data=b"s"),
            ]
        ),
        l1,
    )
    apply(
        make_tar(
            [E(".wh.gone"), d("d/"), E("d/.wh..wh..opq"), E("d/new", data=b"n"), E("e/.wh.stay")]
        ),
        l2,
    )
    merged.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={l2}:{l1}", str(merged)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        assert sorted(p.name for p in merged.iterdir()) == ["d", "e", "keep"]
        assert (merged / "keep").read_bytes() == b"k"
        assert not (merged / "gone").exists()
        assert sorted(p.name for p in (merged / "d").iterdir()) == ["new"]
        assert list((merged / "e").iterdir()) == []
    finally:
        subprocess.run(["umount", str(merged)], check=True, capture_output=True, timeout=30)
    assert not os.path.ismount(merged)
