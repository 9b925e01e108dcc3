"""model.pathstat / model.filechanges / api.schemas.archive: the pure parts of docker cp and diff."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from dockyard.api.schemas.archive import changes_json, path_stat_header, query_bool
from dockyard.model.filechanges import ChangeKind, FileChange, sorted_changes
from dockyard.model.pathstat import (
    GoMode,
    PathStat,
    archive_prefix,
    container_abs_path,
    dir_entry_name,
    go_base,
    go_clean,
    go_file_mode,
    go_time,
    preserve_trailing,
)


@pytest.mark.parametrize(
    ("st_mode", "expected"),
    [
        (stat.S_IFDIR | 0o755, 2147484141),  # the wire map's `docker cp file c:/tmp/` capture
        (stat.S_IFREG | 0o644, 0o644),
        (stat.S_IFLNK | 0o777, (1 << 27) | 0o777),
        (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
        (stat.S_IFBLK | 0o660, (1 << 26) | 0o660),
        (stat.S_IFIFO | 0o600, (1 << 25) | 0o600),
        (stat.S_IFSOCK | 0o755, (1 << 24) | 0o755),
        (stat.S_IFREG | stat.S_ISUID | 0o755, (1 << 23) | 0o755),
        (stat.S_IFREG | stat.S_ISGID | 0o755, (1 << 22) | 0o755),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, (1 << 31) | (1 << 20) | 0o777),  # /tmp
        (0o170000 | 0o644, (1 << 19) | 0o644),  # unknown type: ModeIrregular
    ],
)
def test_go_file_mode(st_mode: int, expected: int) -> None:
    assert go_file_mode(st_mode) == expected


def test_go_mode_bits_are_gos() -> None:
    assert GoMode.DIR == 0x80000000 and GoMode.SYMLINK == 0x8000000 and GoMode.STICKY == 0x100000


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_500_000_000, "2023-11-14T22:13:20.5Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_000_001_000, "2023-11-14T22:13:20.000001Z"),
    ],
)
def test_go_time_is_rfc3339nano_trimmed(ns: int, text: str) -> None:
    assert go_time(ns) == text


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("", "."),
        ("/", "/"),
        ("//a//b/", "/a/b"),
        ("/../x", "/x"),
        ("../x", "../x"),
        ("a/../../x", "../x"),
        ("a/./b/..", "a"),
        ("/a/b/../../..", "/"),
        ("./", "."),
        ("..", ".."),
        ("../..", "../.."),
    ],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean


@pytest.mark.parametrize(
    ("path", "base"),
    [("", "."), ("/", "/"), ("///", "/"), ("/etc", "etc"), ("/etc/", "etc"), ("/etc/.", "."),
     ("hostname", "hostname"), ("a/b//", "b")],
)  # fmt: skip
def test_go_base(path: str, base: str) -> None:
    assert go_base(path) == base


@pytest.mark.parametrize(
    ("cleaned", "original", "out"),
    [
        ("/etc", "/etc", "/etc"),
        ("/etc", "/etc/", "/etc/"),
        ("/etc", "/etc/.", "/etc/."),
        ("/etc", "etc/./", "/etc/./"),  # Go's Base ignores the trailing "/": both kept
        ("/", "/", "/"),
        ("/", "/.", "/."),
        ("/", "./", "/./"),
    ],
)
def test_preserve_trailing(cleaned: str, original: str, out: str) -> None:
    assert preserve_trailing(cleaned, original) == out


@pytest.mark.parametrize(
    ("path", "abs_path", "prefix"),
    [
        ("/etc", "/etc", "etc"),
        ("etc", "/etc", "etc"),
        ("/etc/", "/etc/", "etc"),
        ("/etc/.", "/etc/.", "."),
        ("/", "/", ""),
        (".", "/.", "."),
        ("/tmp/../etc", "/etc", "etc"),
        ("../../../etc", "/etc", "etc"),  # `..` never climbs above the container root
    ],
)
def test_archive_names(path: str, abs_path: str, prefix: str) -> None:
    assert container_abs_path(path) == abs_path
    assert archive_prefix(abs_path) == prefix


def test_dir_entry_names_follow_dockerd() -> None:
    # docker cp c:/etc out/ -> out/etc/...; c:/etc/. -> the content; c:/ -> "/", "/etc/"
    assert dir_entry_name("etc", "", True) == "etc/"
    assert dir_entry_name("etc", "passwd", False) == "etc/passwd"
    assert dir_entry_name("etc", "ssl/certs", True) == "etc/ssl/certs/"
    assert dir_entry_name(".", "", True) == "./"
    assert dir_entry_name(".", "passwd", False) == "./passwd"
    assert dir_entry_name("", "", True) == "/"
    assert dir_entry_name("", "etc", True) == "/etc/"


def test_path_stat_header_decodes_to_dockerds_json() -> None:
    st = PathStat("tmp", 4096, go_file_mode(stat.S_IFDIR | 0o1777), 1_700_000_000_250_000_000, "")
    doc = json.loads(base64.b64decode(path_stat_header(st)))
    assert list(doc) == ["name", "size", "mode", "mtime", "linkTarget"]
    assert doc == {
        "name": "tmp",
        "size": 4096,
        "mode": (1 << 31) | (1 << 20) | 0o777,
        "mtime": "2023-11-14T22:13:20.25Z",
        "linkTarget": "",
    }
    assert st.is_dir and not st.is_symlink


def test_changes_json_is_null_when_empty() -> None:
    assert changes_json(()) is None
    assert changes_json([FileChange("/tmp", ChangeKind.MODIFIED), FileChange("/tmp/x", ChangeKind.ADDED)]) == [
        {"Path": "/tmp", "Kind": 0},
        {"Path": "/tmp/x", "Kind": 1},
    ]
    assert [k.letter for k in ChangeKind] == ["C", "A", "D"]


def test_changes_are_in_tree_order() -> None:
    changes = [FileChange(p, ChangeKind.ADDED) for p in ["/a-b", "/a/b", "/b", "/a", "/a/b/c"]]
    assert [c.path for c in sorted_changes(changes)] == ["/a", "/a/b", "/a/b/c", "/a-b", "/b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("False", False), ("no", False),
     ("none", False), ("1", True), ("true", True), ("True", True), ("yes", True), (" 1 ", True)],
)  # fmt: skip
def test_query_bool_as_dockerd(value: str | None, expected: bool) -> None:
    assert query_bool(value) is expected
