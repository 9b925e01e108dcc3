"""Resolving a container's User against its own /etc/passwd and /etc/group."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime.spec import ProcessUser
from dockyard.runtime.users import (
    GroupEntry,
    PasswdEntry,
    parse_group,
    parse_passwd,
    resolve_in_rootfs,
    resolve_user,
)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment line:x:1:1:c:/c:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

broken line without fields
short:x:5:5
badnum:x:abc:1::/home/badnum:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000:App User,,,:/home/app:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""

GROUP = """\
root:x:0:
# comment:x:9:app
daemon:x:1:
wheel:x:10:root,app
bad:x:notanumber:app
tty:x:5
www-data:x:33:
audio:x:29:app,www-data
app:x:1000:
docker:x:999:app
nogroup:x:65534:
"""


@pytest.fixture()
def passwd() -> list[PasswdEntry]:
    return parse_passwd(PASSWD)


@pytest.fixture()
def groups() -> list[GroupEntry]:
    return parse_group(GROUP)


# ---- parsing ---------------------------------------------------------------------------


def test_parse_passwd_skips_comments_and_malformed(passwd: list[PasswdEntry]) -> None:
    assert [p.name for p in passwd] == ["root", "daemon", "www-data", "app", "nobody"]
    assert passwd[3] == PasswdEntry("app", 1000, 1000, "/home/app")
    assert passwd[0] == PasswdEntry("root", 0, 0, "/root")


def test_parse_passwd_empty() -> None:
    assert parse_passwd("") == []
    assert parse_passwd("\n\n# only comments\n") == []


def test_parse_passwd_bad_gid() -> None:
    assert parse_passwd("x:x:1:gid:x:/x:/bin/sh\n") == []


def test_parse_group_skips_comments_and_malformed(groups: list[GroupEntry]) -> None:
    assert [g.name for g in groups] == [
        "root", "daemon", "wheel", "www-data", "audio", "app", "docker", "nogroup",
    ]  # fmt: skip
    by_name = {g.name: g for g in groups}
    assert by_name["wheel"] == GroupEntry("wheel", 10, ("root", "app"))
    assert by_name["root"].members == ()
    assert by_name["audio"].members == ("app", "www-data")


def test_parse_group_member_list_with_empty_items() -> None:
    assert parse_group("g:x:7:a,,b,\n") == [GroupEntry("g", 7, ("a", "b"))]


# ---- resolve_user ----------------------------------------------------------------------


def test_empty_spec_is_root(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    # root is listed in wheel, so wheel is a supplementary group
    assert resolve_user("", passwd, groups) == ProcessUser(0, 0, (10,))


def test_empty_spec_without_files() -> None:
    assert resolve_user("", [], []) == ProcessUser(0, 0, ())


def test_by_name(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    assert resolve_user("www-data", passwd, groups) == ProcessUser(33, 33, (29,))


def test_by_name_supplementary_groups_from_membership(
    passwd: list[PasswdEntry], groups: list[GroupEntry]
) -> None:
    user = resolve_user("app", passwd, groups)
    assert (user.uid, user.gid) == (1000, 1000)
    assert user.additional_gids == (10, 29, 999)


def test_by_uid(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    assert resolve_user("1000", passwd, groups) == ProcessUser(1000, 1000, (10, 29, 999))
    assert resolve_user("1", passwd, groups) == ProcessUser(1, 1, ())


def test_unknown_uid_number(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    assert resolve_user("4242", passwd, groups) == ProcessUser(4242, 0, ())


def test_unknown_name(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_user("ghost", passwd, groups)
    assert info.value.message == "unable to find user ghost: no matching entries in passwd file"


def test_unknown_name_with_empty_passwd() -> None:
    with pytest.raises(
        InvalidArgument, match="unable to find user app: no matching entries in passwd file"
    ):
        resolve_user("app", [], [])


def test_name_colon_group(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    user = resolve_user("www-data:docker", passwd, groups)
    assert (user.uid, user.gid) == (33, 999)


def test_name_colon_gid_number(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    user = resolve_user("www-data:10", passwd, groups)
    assert (user.uid, user.gid) == (33, 10)


def test_uid_colon_gid_both_unknown(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    assert resolve_user("5000:6000", passwd, groups) == ProcessUser(5000, 6000, ())


def test_uid_colon_gid_known(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    user = resolve_user("33:65534", passwd, groups)
    assert (user.uid, user.gid) == (33, 65534)


def test_unknown_group_name(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_user("app:ghosts", passwd, groups)
    assert info.value.message == "unable to find group ghosts: no matching entries in group file"


def test_only_group(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    user = resolve_user(":docker", passwd, groups)
    assert (user.uid, user.gid) == (0, 999)


def test_primary_gid_not_repeated_in_supplementary(
    passwd: list[PasswdEntry], groups: list[GroupEntry]
) -> None:
    # app is a member of wheel (10); asking for wheel as the primary group must not list it twice
    user = resolve_user("1000:wheel", passwd, groups)
    assert user.gid == 10
    assert 10 not in user.additional_gids


def test_group_add_by_name_and_number(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    user = resolve_user("daemon", passwd, groups, group_add=["audio", "4321", "docker"])
    assert user == ProcessUser(1, 1, (29, 4321, 999))


def test_group_add_deduplicates_with_membership(
    passwd: list[PasswdEntry], groups: list[GroupEntry]
) -> None:
    user = resolve_user("app", passwd, groups, group_add=["docker", "999", "wheel"])
    assert user.additional_gids == (10, 29, 999)


def test_group_add_unknown_name(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    with pytest.raises(
        InvalidArgument, match="unable to find group nope: no matching entries in group file"
    ):
        resolve_user("app", passwd, groups, group_add=["nope"])


def test_group_add_for_root(passwd: list[PasswdEntry], groups: list[GroupEntry]) -> None:
    assert resolve_user("", passwd, groups, group_add=["docker"]) == ProcessUser(0, 0, (10, 999))


def test_explicit_group_has_no_membership_groups(
    passwd: list[PasswdEntry], groups: list[GroupEntry]
) -> None:
    assert resolve_user("app:daemon", passwd, groups) == ProcessUser(1000, 1, ())


def test_account_files_are_read_inside_the_rootfs_never_through_a_symlink_out(tmp_path: Path) -> None:
    # A container whose /etc points at / must not make the daemon read the host's /etc/passwd
    # (which has `daemon`); inside its root, /etc/passwd is /passwd: the container's own.
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "etc").symlink_to("/")
    with pytest.raises(InvalidArgument):
        resolve_in_rootfs(rootfs, "daemon")
    (rootfs / "passwd").write_text("daemon:x:4242:4242::/:/bin/sh\n")
    assert resolve_in_rootfs(rootfs, "daemon").uid == 4242
