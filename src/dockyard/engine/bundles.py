"""A container's files: its data directory (log, host files) and the OCI bundle that
each start writes for the runtime."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dockyard.config import DaemonConfig
from dockyard.errors import InvalidArgument
from dockyard.linux.fs import atomic_write
from dockyard.model.containers import Container
from dockyard.model.mounts import oci_options, parse_mounts
from dockyard.runtime.spec import Mount, Resources, SpecInput, build_spec
from dockyard.runtime.users import resolve_in_rootfs


class ContainerFiles:
    """Where one container's files live."""

    def __init__(self, config: DaemonConfig, container_id: str) -> None:
        self.data = config.data_root / "containers" / container_id
        self.bundle = config.exec_root / "containers" / container_id
        self.exit_dir = config.exec_root / "exits"

    @property
    def log(self) -> Path:
        return self.data / "container.log"

    @property
    def hostname(self) -> Path:
        return self.data / "hostname"

    @property
    def hosts(self) -> Path:
        return self.data / "hosts"

    @property
    def resolv(self) -> Path:
        return self.data / "resolv.conf"

    @property
    def persist(self) -> Path:
        return self.bundle / "persist"

    @property
    def attach_socket(self) -> Path:
        return self.bundle / "attach"

    def write_host_files(self, hostname: str) -> None:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf as the container will see them."""
        self.data.mkdir(parents=True, exist_ok=True)
        atomic_write(self.hostname, (hostname + "\n").encode())
        atomic_write(self.hosts, _hosts_file(hostname))
        atomic_write(self.resolv, _resolv_conf())


def _resolv_conf() -> bytes:
    """The host's resolv.conf without loopback nameservers, which mean nothing in a netns."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return b""
    kept = []
    for line in lines:
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1 and (parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        kept.append(line)
    return ("\n".join(kept) + "\n").encode()


def _hosts_file(hostname: str) -> bytes:
    return (
        b"127.0.0.1\tlocalhost\n"
        b"::1\tlocalhost ip6-localhost ip6-loopback\n"
        b"fe00::0\tip6-localnet\n"
        b"ff00::0\tip6-mcastprefix\n"
        b"ff02::1\tip6-allnodes\n"
        b"ff02::2\tip6-allrouters\n"
    )


def write_bundle(c: Container, files: ContainerFiles, rootfs: Path, netns: str) -> None:
    """The OCI bundle (config.json) for one start of `c`, on its mounted rootfs (blocking)."""
    s = c.spec
    user = resolve_in_rootfs(rootfs, s.user, s.host.group_add)
    cwd = s.working_dir or "/"
    _ensure_dir_in_rootfs(rootfs, cwd, user.uid, user.gid)
    binds = ("rbind", "rprivate")
    user_mounts = parse_mounts(s.host.binds, s.host.tmpfs)
    for m in user_mounts:
        if m.type == "bind" and not os.path.exists(m.source):
            os.makedirs(m.source, exist_ok=True)  # as dockerd does for -v host paths
    mounts = (
        Mount("/etc/resolv.conf", "bind", str(files.resolv), binds),
        Mount("/etc/hostname", "bind", str(files.hostname), binds),
        Mount("/etc/hosts", "bind", str(files.hosts), binds),
        *(Mount(m.destination, m.type, m.source, oci_options(m)) for m in user_mounts),
    )
    h = s.host
    spec = build_spec(
        SpecInput(
            rootfs=str(rootfs),
            args=s.argv,
            env=s.env,
            cwd=cwd,
            hostname=s.hostname,
            cgroups_path=f"/dockyard/{c.id}",
            user=user,
            tty=s.tty,
            console_size=h.console_size,
            mounts=mounts,
            readonly_rootfs=h.readonly_rootfs,
            privileged=h.privileged,
            cap_add=h.cap_add,
            cap_drop=h.cap_drop,
            shm_size=h.shm_size,
            resources=Resources(h.memory, h.memory_swap, h.nano_cpus, h.cpu_shares, h.pids_limit),
            sysctls=tuple(h.sysctls.items()),
            netns_path=netns,
        )
    )
    files.bundle.mkdir(parents=True, exist_ok=True)
    # The previous run's fifos and pid files must not confuse this one.
    for stale in ("ctl", "winsz", "pidfile", "conmon.pid", "attach"):
        (files.bundle / stale).unlink(missing_ok=True)
    atomic_write(files.bundle / "config.json", json.dumps(spec).encode())


def _ensure_dir_in_rootfs(rootfs: Path, path: str, uid: int, gid: int) -> None:
    """mkdir -p a path inside the rootfs without following symlinks out of it."""
    current = rootfs
    for part in [p for p in path.split("/") if p and p != "."]:
        if part == "..":
            raise InvalidArgument(f"invalid working directory {path}")
        nxt = current / part
        if nxt.is_symlink():
            return  # let the runtime resolve it inside the container's root
        if not nxt.exists():
            nxt.mkdir(mode=0o755)
            os.chown(nxt, uid, gid)
        current = nxt

