"""Which monitor starts containers (daemon.json `monitor`, --monitor), how one is recognised
by its command line, and dockyard-monitor's argv for a container (no process started)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.config import DaemonConfig, MonitorChoice, parse_daemon_args
from dockyard.errors import InvalidArgument
from dockyard.runtime.monitor import (
    CONMON_MONITOR,
    Monitor,
    MonitorKind,
    MonitorRequest,
    choose_monitor,
    is_monitor_argv,
    monitor_argv,
)

OWN = Monitor(MonitorKind.DOCKYARD, "/x/libexec/dockyard/dockyard-monitor")


def _parse(tmp_path: Path, *argv: str, doc: object) -> DaemonConfig:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(doc))
    return parse_daemon_args([*argv, f"--config-file={path}"])


def test_the_default_is_auto_and_flag_or_file_choose(tmp_path: Path) -> None:
    assert DaemonConfig().monitor is MonitorChoice.AUTO
    assert _parse(tmp_path, doc={}).monitor is MonitorChoice.AUTO
    assert _parse(tmp_path, doc={"monitor": "conmon"}).monitor is MonitorChoice.CONMON
    assert _parse(tmp_path, "--monitor", "dockyard-monitor", doc={}).monitor is MonitorChoice.DOCKYARD
    with pytest.raises(InvalidArgument, match="monitor must be one of"):
        _parse(tmp_path, doc={"monitor": "shim"})
    with pytest.raises(InvalidArgument, match="both as a flag and in the configuration file"):
        _parse(tmp_path, "--monitor", "conmon", doc={"monitor": "conmon"})


def _install(directory: Path, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard-monitor"
    path.write_bytes(b"\x7fELF")
    os.chmod(path, mode)
    return path


def test_auto_takes_the_installed_monitor_else_conmon(tmp_path: Path) -> None:
    installed = _install(tmp_path / "a")
    assert choose_monitor(MonitorChoice.AUTO, (tmp_path / "none", tmp_path / "a")) == Monitor(MonitorKind.DOCKYARD, str(installed))
    assert choose_monitor(MonitorChoice.AUTO, (tmp_path / "none",)) == CONMON_MONITOR
    assert choose_monitor(MonitorChoice.CONMON, (tmp_path / "a",)) == CONMON_MONITOR


def test_asking_for_a_missing_or_untrusted_monitor_fails(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not installed"):
        choose_monitor(MonitorChoice.DOCKYARD, (tmp_path / "none",))
    _install(tmp_path / "w", 0o777)  # others could change it: never run as root
    with pytest.raises(InvalidArgument):
        choose_monitor(MonitorChoice.DOCKYARD, (tmp_path / "w",))
    assert choose_monitor(MonitorChoice.AUTO, (tmp_path / "w",)) == CONMON_MONITOR


def test_either_monitor_is_recognised_by_its_argv() -> None:
    cid = "c" * 64
    assert is_monitor_argv([b"/usr/bin/conmon", b"-c", cid.encode()], cid)
    assert is_monitor_argv([OWN.path.encode(), b"--id", cid.encode()], cid)
    assert not is_monitor_argv([OWN.path.encode(), b"--id", b"other"], cid)
    assert not is_monitor_argv([b"/bin/sleep", cid.encode()], cid)
    assert not is_monitor_argv([], cid)


def _req(**kw: object) -> MonitorRequest:
    base: dict[str, object] = {
        "container_id": "c" * 64, "name": "web", "runtime_path": "/x/dockyard-nounified",
        "runtime_args": ("/usr/bin/crun", "--root", "/run/dy/crun"), "bundle": Path("/run/dy/containers/c"),
        "log_path": Path("/run/dy/containers/c/ctr.log"), "exit_dir": Path("/run/dy/exits"),
        "persist_dir": Path("/run/dy/containers/c/persist"), "tty": False, "stdin": False, "stdin_once": False,
        "monitor": OWN,
    }  # fmt: skip
    base.update(kw)
    return MonitorRequest(**base)  # type: ignore[arg-type]


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_own_argv_names_the_bundle_files() -> None:
    req = _req(log_size_max=1 << 24)
    argv = monitor_argv(req)
    assert argv[0] == OWN.path and _value(argv, "--id") == "c" * 64
    assert _value(argv, "--runtime") == "/x/dockyard-nounified"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--runtime-arg"] == ["/usr/bin/crun", "--root", "/run/dy/crun"]
    assert _value(argv, "--bundle") == _value(argv, "--dir") == str(req.bundle)
    assert _value(argv, "--pid-file") == str(req.bundle / "pidfile")
    assert _value(argv, "--monitor-pid-file") == str(req.bundle / "conmon.pid")
    assert _value(argv, "--exit-dir") == "/run/dy/exits" and _value(argv, "--persist-dir") == str(req.persist_dir)
    assert _value(argv, "--log") == str(req.log_path) and _value(argv, "--log-size-max") == str(1 << 24)
    assert "--exec-process" not in argv


def test_own_argv_without_a_log_or_a_size_limit() -> None:
    assert "--log" not in monitor_argv(_req(log_path=None, log_size_max=100))
    assert "--log-size-max" not in monitor_argv(_req())


@pytest.mark.parametrize(
    ("tty", "stdin", "stdin_once", "leave_open"),
    [(False, False, False, False), (False, True, True, False), (False, True, False, True), (True, True, True, True)],
)
def test_stdin_stays_open_on_a_tty_or_without_stdin_once(tty: bool, stdin: bool, stdin_once: bool, leave_open: bool) -> None:
    for monitor, flags in ((OWN, ("--tty", "--stdin")), (CONMON_MONITOR, ("-t", "-i"))):
        argv = monitor_argv(_req(tty=tty, stdin=stdin, stdin_once=stdin_once, monitor=monitor))
        assert (flags[0] in argv) == tty and (flags[1] in argv) == stdin
        assert ("--leave-stdin-open" in argv) == leave_open
