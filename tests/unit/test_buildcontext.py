"""COPY's rules on plain directories (layers/buildcontext.py) and the cache's values
(model/builds.py); no mounts: a directory stands for the target rootfs."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.layers.buildcontext import (
    CopyPlan,
    checksum,
    copy_into,
    find_sources,
    is_local_archive,
    make_dir,
    remove_ignored,
    unpack_context,
)
from dockyard.model.buildfile import parse_buildfile
from dockyard.model.builds import (
    cache_config,
    nop_cmd,
    parse_chmod,
    run_cmd,
    same_cache_key,
    step_comment,
    visible_args,
)
from dockyard.model.dockerfile import parse_command, parse_instruction
from dockyard.model.ignorepatterns import parse_ignore_file
from dockyard.model.images import ImageConfig


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "dir" / "sub" / "deep").write_text("deep")
    (root / "link").symlink_to("/etc/passwd")
    return root


@pytest.fixture
def target(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "existing").mkdir(parents=True)
    return root


def _copy(ctx: Path, target: Path, words: list[str], dest: str, **kw: object) -> None:
    found = [s for w in words for s in find_sources(ctx, w, in_context=True, instruction="COPY")]
    plan = CopyPlan(tuple(found), dest, kw.get("owner"), kw.get("chmod"), bool(kw.get("add")))  # type: ignore[arg-type]
    with (target.parent / "spool").open("w+b") as f:
        copy_into(target, plan, f, from_context=True)


def test_a_file_to_a_new_name_and_into_a_directory(ctx: Path, target: Path) -> None:
    _copy(ctx, target, ["a.txt"], "/renamed")
    _copy(ctx, target, ["a.txt"], "/existing")  # an existing directory: into it
    _copy(ctx, target, ["b.txt"], "/new/dir/")  # a trailing slash: into it, made
    assert (target / "renamed").read_text() == "a"
    assert (target / "existing" / "a.txt").read_text() == "a"
    assert (target / "new" / "dir" / "b.txt").read_text() == "b"


def test_a_directory_copies_its_contents(ctx: Path, target: Path) -> None:
    _copy(ctx, target, ["dir"], "/app")
    assert (target / "app" / "sub" / "deep").read_text() == "deep"
    assert not (target / "app" / "dir").exists()


def test_globs_stay_within_one_element(ctx: Path, target: Path) -> None:
    _copy(ctx, target, ["*.txt"], "/t/")
    assert sorted(os.listdir(target / "t")) == ["a.txt", "b.txt"]
    with pytest.raises(InvalidArgument, match="no source files were specified"):
        _copy(ctx, target, ["*.nothing"], "/t/")


def test_a_symlink_is_copied_as_the_link(ctx: Path, target: Path) -> None:
    _copy(ctx, target, ["link"], "/l")
    assert os.readlink(target / "l") == "/etc/passwd"


def test_paths_out_of_the_context(ctx: Path) -> None:
    for word in ("../x", "..", "a/../../x"):
        with pytest.raises(InvalidArgument, match="forbidden path outside the build context"):
            find_sources(ctx, word, in_context=True, instruction="COPY")
    with pytest.raises(NotFound, match="file not found in build context"):
        find_sources(ctx, "missing", in_context=True, instruction="COPY")
    # An absolute source is the context's own path, and a link is resolved inside it.
    (ctx / "up").symlink_to("../../..")
    found = find_sources(ctx, "up/a.txt", in_context=True, instruction="COPY")
    assert found[0].host == ctx / "a.txt"


def test_chown_and_chmod_apply_to_what_is_copied(ctx: Path, target: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    _copy(ctx, target, ["a.txt"], "/owned", owner=(1234, 4321), chmod=0o640)
    st = (target / "owned").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 4321, 0o640)


def test_add_unpacks_a_local_archive(ctx: Path, target: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo("in/file")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (ctx / "x.tar.xz").write_bytes(buf.getvalue())
    assert is_local_archive(find_sources(ctx, "x.tar.xz", in_context=True, instruction="ADD")[0])
    assert not is_local_archive(find_sources(ctx, "a.txt", in_context=True, instruction="ADD")[0])
    _copy(ctx, target, ["x.tar.xz"], "/unpacked/", add=True)
    assert (target / "unpacked" / "in" / "file").read_text() == "hi"


def test_checksum_follows_contents_not_times(ctx: Path) -> None:
    first = checksum(find_sources(ctx, "dir", in_context=True, instruction="COPY"))
    os.utime(ctx / "dir" / "sub" / "deep", (1, 1))
    assert checksum(find_sources(ctx, "dir", in_context=True, instruction="COPY")) == first
    (ctx / "dir" / "sub" / "deep").write_text("changed")
    assert checksum(find_sources(ctx, "dir", in_context=True, instruction="COPY")) != first


def test_make_dir_only_when_missing(target: Path) -> None:
    make_dir(target, "/w/x")
    assert (target / "w" / "x").is_dir()
    before = (target / "existing").stat().st_mtime_ns
    make_dir(target, "/existing")
    assert (target / "existing").stat().st_mtime_ns == before


def test_context_unpack_and_ignore(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM x\n"), ("keep.txt", b"k"), ("drop.log", b"d"), ("logs/x.log", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    # Cut after the last file's data, unpadded, as the CLI's tar for `-f -` is.
    spooled = tmp_path / "ctx.tar"
    spooled.write_bytes(buf.getvalue()[: 512 * 7 + 1])
    root = tmp_path / "root"
    unpack_context(spooled, root)
    remove_ignored(root, parse_ignore_file("*.log\nlogs\n"), frozenset())
    assert sorted(os.listdir(root)) == ["Dockerfile", "keep.txt"]
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a tar" * 100)
    with pytest.raises(InvalidArgument, match="failed to read the build context"):
        unpack_context(bad, tmp_path / "root2")


# --- the cache's values -------------------------------------------------------------------


def test_recorded_commands() -> None:
    assert nop_cmd(None, "ENV A=1", split=True) == ("/bin/sh", "-c", "#(nop) ", "ENV A=1")
    assert nop_cmd(("/bin/ash", "-c"), "COPY file:x in / ") == ("/bin/ash", "-c", "#(nop) COPY file:x in / ")
    assert run_cmd({}, ("/bin/sh", "-c", "x")) == ("/bin/sh", "-c", "x")
    assert run_cmd({"B": "2", "A": "1"}, ("x",)) == ("|2", "A=1", "B=2", "x")


def test_cache_keys_compare_after_json() -> None:
    key = cache_config(ImageConfig(env=("A=1",)), ("sh", "-c", "x"))
    stored = {**key, "Env": ["A=1"], "Cmd": ["sh", "-c", "x"]}
    assert same_cache_key(stored, key)
    assert not same_cache_key({**stored, "Cmd": ["other"]}, key)
    assert not same_cache_key(None, key)


def test_visible_args() -> None:
    declared = {"A": "dflt", "B": None, "C": "c", "D": None}
    given = {"A": "given", "B": "b", "X": "undeclared", "D": None}
    assert visible_args(declared, given, {"C": "env wins"}) == {"A": "given", "B": "b"}


def test_step_comments_as_dockerd_writes_them() -> None:
    def comment(line: str, config: ImageConfig) -> str:
        return step_comment(parse_command(parse_instruction(line)), config)

    assert comment("ENV A=1", ImageConfig(env=("A=1",))) == "ENV A=1"
    assert comment('CMD ["a", "b c"]', ImageConfig(cmd=("a", "b c"))) == 'CMD ["a" "b c"]'
    assert comment("VOLUME /a /b", ImageConfig(volumes=("/a", "/b"))) == "VOLUME [/a /b]"
    assert comment("WORKDIR x", ImageConfig(working_dir="/x")) == "WORKDIR /x"


def test_chmod_values() -> None:
    assert parse_chmod("") is None and parse_chmod("755") == 0o755
    for bad in ("9", "u+x", "77777"):
        with pytest.raises(InvalidArgument):
            parse_chmod(bad)


def test_parse_buildfile_counts_label_steps() -> None:
    assert parse_buildfile("FROM a\nLABEL a=b\n").step_count == 2
