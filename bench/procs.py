"""The daemon's process as bench.py and its workloads see it: found by pidfile or by the
socket's listener, its resident memory and CPU time, with or without its descendants, and
container monitors (conmon, containerd-shim) found by the container id on their command line.

Stdlib only; reads /proc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dockercli import Host


def unix_socket_path(url: str) -> str | None:
    return url[len("unix://") :] if url.startswith("unix://") else None


def listening_inodes(path: str) -> set[str]:
    inodes: set[str] = set()
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return inodes
    for line in lines:
        parts = line.split(None, 7)
        # Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 = listening
        if len(parts) == 8 and parts[7] == path and int(parts[3], 16) & 0x10000:
            inodes.add(parts[6])
    return inodes


def pids_holding(inodes: set[str]) -> set[int]:
    wanted = {f"socket:[{i}]" for i in inodes}
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if os.readlink(fd) in wanted:
                        pids.add(int(proc.name))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    return pids


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def find_daemon_pid(host: Host) -> int | None:
    if host.pidfile:
        try:
            return int(Path(host.pidfile).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            print(f"warning: {host.label}: cannot read pid from {host.pidfile}", file=sys.stderr)
            return None
    path = unix_socket_path(host.url)
    if path is None:
        return None
    pids = pids_holding(listening_inodes(os.path.realpath(path)) | listening_inodes(path))
    # A child that inherited the listening fd is not the daemon: keep the topmost holders.
    top = sorted(p for p in pids if parent_of(p) not in pids)
    return top[0] if top else None


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            ppid = parent_of(int(proc.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pid: int | None) -> dict[str, int | None]:
    if pid is None:
        return {"rss_kib": None, "tree_rss_kib": None, "tree_procs": None}
    tree = [(p, rss_kib(p)) for p in descendants(pid)]
    return {
        "rss_kib": rss_kib(pid),
        "tree_rss_kib": sum(r for _, r in tree if r) or None,
        "tree_procs": sum(1 for _, r in tree if r is not None),
    }


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu(pid: int | None) -> dict[str, float | None]:
    if pid is None:
        return {"daemon_s": None, "tree_s": None}
    tree = [cpu_seconds(p) for p in descendants(pid)]
    return {"daemon_s": cpu_seconds(pid), "tree_s": sum(t for t in tree if t is not None)}


def pss_kib(pid: int) -> int | None:
    """Proportional set size: each shared page split among the processes mapping it."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# The flag that names the container on a monitor's command line: conmon `-c ID` / `--cid ID`,
# containerd-shim-runc-v2 (containerd 1.6, one shim per container) `-id ID`.
MONITOR_FLAGS = ("-c", "--cid", "-id", "--id")


def monitors(ids: list[str]) -> dict[str, list[int]]:
    """For each full container id, the pids whose argv carries it right after a monitor flag."""
    wanted = set(ids)
    found: dict[str, list[int]] = {i: [] for i in ids}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg in MONITOR_FLAGS and argv[i + 1] in wanted:
                found[argv[i + 1]].append(int(proc.name))
                break
            flag, eq, value = arg.partition("=")
            if eq and flag in MONITOR_FLAGS and value in wanted:
                found[value].append(int(proc.name))
                break
    return found


def tree_without(pid: int, excluded: set[int]) -> list[int]:
    """The daemon and its descendants, leaving out `excluded` pids and theirs (monitors
    that stayed its children, and the containers under them)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            ppid = parent_of(int(proc.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in excluded:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return out
