"""The daemon process itself: flags, config file, locks, sockets, shutdown, restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import DOCKYARDD, Daemon


def _import_busybox(d: Daemon, tar: bytes) -> None:
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=tar)


def test_clean_shutdown_removes_socket_and_pidfile(daemon_factory, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory()
    assert int(d.pidfile.read_text()) == d.proc.pid
    assert d.stop() == 0
    assert not d.socket.exists()
    assert not d.pidfile.exists()


def test_state_survives_restart(daemon_factory, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory()
    _import_busybox(d, busybox_tar)
    d.docker("run", "--name", "done", "busybox", "sh", "-c", "echo kept-log; exit 4", check=False)
    d.docker("create", "--name", "fresh", "--label", "k=v", "busybox", "true")
    running = d.out("run", "-d", "--name", "alive", "busybox", "sh", "-c", "echo up; sleep 300")
    image_id = d.out("image", "inspect", "-f", "{{.Id}}", "busybox")
    d.stop()
    d.start()
    assert d.out("image", "inspect", "-f", "{{.Id}}", "busybox") == image_id
    names = set(d.out("ps", "-a", "--format", "{{.Names}}").split())
    assert names == {"done", "fresh", "alive"}
    done = json.loads(d.out("inspect", "done"))[0]
    assert done["State"]["Status"] == "exited" and done["State"]["ExitCode"] == 4
    assert d.out("logs", "done") == "kept-log"
    assert json.loads(d.out("inspect", "fresh"))[0]["Config"]["Labels"] == {"k": "v"}
    # The container kept running while the daemon was away, and is adopted again.
    alive = json.loads(d.out("inspect", "alive"))[0]["State"]
    assert alive["Running"] is True
    d.docker("stop", "-t", "0", "alive")
    assert d.out("inspect", "-f", "{{.State.ExitCode}}", "alive") == "137"
    assert running[:12] in d.out("ps", "-aq")
    d.docker("run", "--rm", "busybox", "true")


def test_exit_while_daemon_is_down_is_noticed(daemon_factory, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory()
    _import_busybox(d, busybox_tar)
    d.docker("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 7")
    d.stop()
    time.sleep(1.5)
    d.start()
    assert d.out("wait", "short") == "7"
    state = json.loads(d.out("inspect", "short"))[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 7


def test_second_daemon_on_same_data_root_is_refused(daemon_factory) -> None:
    d: Daemon = daemon_factory()
    other_socket = d.base / "other.sock"
    result = subprocess.run(
        [str(DOCKYARDD), "-H", f"unix://{other_socket}", "--data-root", str(d.data_root),
         "--exec-root", str(d.base / "exec2"), "--pidfile", str(d.base / "other.pid"),
         "--config-file", str(d.base / "daemon.json")],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert b"in use by another dockyard daemon" in result.stderr
    assert not other_socket.exists()


def test_refuses_a_socket_another_daemon_answers_on(daemon_factory) -> None:
    d: Daemon = daemon_factory()
    base = d.base
    result = subprocess.run(
        [str(DOCKYARDD), "-H", d.host, "--data-root", str(base / "data2"),
         "--exec-root", str(base / "exec2"), "--pidfile", str(base / "other.pid"),
         "--config-file", str(base / "daemon.json")],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert b"another daemon is already listening" in result.stderr
    d.docker("version")  # the first daemon still serves its socket


def test_stale_socket_file_is_replaced(daemon_factory) -> None:
    d: Daemon = daemon_factory(start=False)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(d.socket))
    stale.close()  # a socket file nobody listens on, as after a crash
    d.start()
    d.docker("version")


def test_config_file_and_flag_conflict(daemon_factory) -> None:
    d: Daemon = daemon_factory({"data-root": "/tmp/somewhere"}, start=False)
    result = subprocess.run(
        [str(DOCKYARDD), "-H", d.host, "--data-root", str(d.data_root), "--exec-root", str(d.exec_root),
         "--pidfile", str(d.pidfile), "--config-file", str(d.base / "daemon.json")],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert b"specified both as a flag and in the configuration file: data-root" in result.stderr


def test_config_file_sets_roots_and_default_runtime(daemon_factory, busybox_tar: bytes, tmp_path: Path) -> None:
    d: Daemon = daemon_factory(start=False)
    config = {
        "hosts": [d.host],
        "data-root": str(d.data_root),
        "exec-root": str(d.exec_root),
        "pidfile": str(d.pidfile),
        "default-runtime": "myrunc",
        "runtimes": {"myrunc": {"path": "/usr/sbin/runc"}},
        "bridge": "none",
        "firewall-table": d.table,  # never the default table: a real dockyard's on this host
        "dns": ["127.0.0.1"],
    }
    (d.base / "daemon.json").write_text(json.dumps(config))
    d.proc = subprocess.Popen(
        [str(DOCKYARDD), "--config-file", str(d.base / "daemon.json")],
        stdout=d.log.open("ab"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while not d.socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    info = json.loads(d.out("info", "--format", "{{json .}}"))
    assert info["DefaultRuntime"] == "myrunc"
    assert info["DockerRootDir"] == str(d.data_root)
    _import_busybox(d, busybox_tar)
    d.docker("run", "--name", "rt", "busybox", "true")
    assert d.out("inspect", "-f", "{{.HostConfig.Runtime}}", "rt") == "myrunc"
    assert (d.exec_root / "runtime").is_dir()


def test_version_and_ping(daemon: Daemon) -> None:
    version = json.loads(daemon.out("version", "--format", "{{json .Server}}"))
    assert version["ApiVersion"] == "1.50"
    assert version["MinAPIVersion"] == "1.24"
    client_line = daemon.out("version", "--format", "{{.Client.APIVersion}}")
    assert client_line == "1.50"  # no "downgraded from" negotiation
    assert os.path.exists(daemon.socket)
