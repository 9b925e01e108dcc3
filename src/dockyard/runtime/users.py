"""Resolve a container's `User` ("name", "uid", "name:group", "uid:gid") against its own
/etc/passwd and /etc/group, as dockerd does at start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument
from dockyard.linux.rootpath import ContainerRoot
from dockyard.runtime.spec import ProcessUser


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or line.startswith("#"):
            continue
        try:
            out.append(PasswdEntry(parts[0], int(parts[2]), int(parts[3]), parts[5]))
        except ValueError:
            continue
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or line.startswith("#"):
            continue
        try:
            members = tuple(m for m in parts[3].split(",") if m)
            out.append(GroupEntry(parts[0], int(parts[2]), members))
        except ValueError:
            continue
    return out


def resolve_user(
    spec: str, passwd: Sequence[PasswdEntry], groups: Sequence[GroupEntry], group_add: Sequence[str] = ()
) -> ProcessUser:
    user_part, _, group_part = spec.partition(":")
    uid, gid, name = 0, 0, "root"
    if user_part:
        found = next((p for p in passwd if p.name == user_part or str(p.uid) == user_part), None)
        if found is not None:
            uid, gid, name = found.uid, found.gid, found.name
        elif user_part.isdigit():
            uid, gid, name = int(user_part), 0, ""
        else:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
    else:
        root = next((p for p in passwd if p.uid == 0), None)
        name = root.name if root else "root"
    if group_part:
        found_group = next((g for g in groups if g.name == group_part or str(g.gid) == group_part), None)
        if found_group is not None:
            gid = found_group.gid
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
    # Membership adds groups only when the user named no group (libcontainer's rule).
    extra = [] if group_part else [g.gid for g in groups if name and name in g.members and g.gid != gid]
    for item in group_add:
        found_group = next((g for g in groups if g.name == item or str(g.gid) == item), None)
        if found_group is not None:
            extra.append(found_group.gid)
        elif item.isdigit():
            extra.append(int(item))
        else:
            raise InvalidArgument(f"unable to find group {item}: no matching entries in group file")
    return ProcessUser(uid, gid, tuple(dict.fromkeys(extra)))


def resolve_in_rootfs(rootfs: Path, spec: str, group_add: Sequence[str] = ()) -> ProcessUser:
    """Read the container's own account files, resolved inside its root: an `/etc` that is a
    symlink to `/` must not make the daemon read the host's (linux/rootpath.py)."""
    if not spec and not group_add:
        return ProcessUser()
    with ContainerRoot(rootfs) as root:
        passwd = root.read_file("/etc/passwd") or b""
        group = root.read_file("/etc/group") or b""
    return resolve_user(
        spec,
        parse_passwd(passwd.decode(errors="replace")),
        parse_group(group.decode(errors="replace")),
        group_add,
    )
