"""The exec session's monitor argv (conmon's and dockyard-monitor's) and its file layout (no processes started)."""

from __future__ import annotations

import itertools
from pathlib import Path

from dockyard.linux.capabilities import CAPABILITY_BITS, capabilities_in_mask, parse_bounding_set
from dockyard.runtime.conmon import CONMON
from dockyard.runtime.monitor import CONMON_MONITOR, Monitor, MonitorKind
from dockyard.runtime.execsession import ExecRequest, exec_argv
from dockyard.runtime.execspec import ExecSpec


def _req(**kw: object) -> ExecRequest:
    spec_kw = {k: kw.pop(k) for k in ("tty",) if k in kw}
    base: dict[str, object] = {
        "container_id": "c" * 64, "exec_id": "e" * 64, "bundle": Path("/run/dy/containers/cid"),
        "directory": Path("/run/dy/containers/cid/exec/eid"), "runtime_path": "/usr/sbin/runc",
        "runtime_args": ("--root", "/run/dy/runc"), "spec": ExecSpec(args=("true",), **spec_kw),  # type: ignore[arg-type]
        "monitor": CONMON_MONITOR,
    }  # fmt: skip
    base.update(kw)
    return ExecRequest(**base)  # type: ignore[arg-type]


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_layout_lives_in_the_session_directory() -> None:
    req = _req()
    d = Path("/run/dy/containers/cid/exec/eid")
    assert req.process_file == d / "process.json" and req.attach_socket == d / "attach"
    assert req.pid_file == d / "pidfile" and req.monitor_pid_file == d / "conmon.pid"
    assert req.exit_dir == d / "exit" and req.exit_file == d / "exit" / ("c" * 64)


def test_argv_names_the_session_files_and_exec_mode() -> None:
    req = _req()
    argv = exec_argv(req)
    assert argv[0] == CONMON and argv[1:3] == ["--api-version", "1"]
    assert _value(argv, "-c") == "c" * 64  # runc exec addresses the container by it
    assert _value(argv, "-u") == "e" * 64
    assert _value(argv, "-r") == "/usr/sbin/runc"
    assert _value(argv, "-b") == str(req.directory)  # attach socket and ctl fifo go here
    assert _value(argv, "--socket-dir-path") == str(req.directory) and "--full-attach" in argv
    assert _value(argv, "-p") == str(req.pid_file) and _value(argv, "-P") == str(req.monitor_pid_file)
    assert _value(argv, "--exit-dir") == str(req.exit_dir)
    assert _value(argv, "-l") == "none"  # exec output is not the container's log
    assert _value(argv, "--exec-process-spec") == str(req.process_file)
    assert "-e" in argv and "--exec-attach" in argv and "--no-sync-log" in argv
    assert "--persist-dir" not in argv


def test_runtime_args_are_passed_one_by_one() -> None:
    argv = exec_argv(_req())
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--runtime-arg"]
    assert pairs == ["--root", "/run/dy/runc"]


def test_tty_and_stdin_flags() -> None:
    for tty, stdin, attach in itertools.product((False, True), repeat=3):
        argv = exec_argv(_req(tty=tty, stdin=stdin, attach=attach))
        assert ("-t" in argv) == tty and ("-i" in argv) == stdin
        assert ("--leave-stdin-open" in argv) == (tty and stdin)
        # Detached or not, conmon waits for our go: the monitor's pid is known before the process runs.
        assert "--exec-attach" in argv


def test_bounding_set_parsing() -> None:
    status = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n"
    caps = parse_bounding_set(status)
    assert "CAP_SYS_RESOURCE" not in caps and "CAP_SYS_ADMIN" in caps and "CAP_CHECKPOINT_RESTORE" in caps
    assert caps == frozenset(CAPABILITY_BITS) - {"CAP_SYS_RESOURCE"}
    assert parse_bounding_set("CapBnd:\tzz\n") == frozenset()
    assert parse_bounding_set("Name: x\n") == frozenset()


def test_capability_bits_are_the_kernels() -> None:
    assert capabilities_in_mask(1) == {"CAP_CHOWN"}
    assert capabilities_in_mask(1 << 21) == {"CAP_SYS_ADMIN"}
    assert capabilities_in_mask(1 << 24) == {"CAP_SYS_RESOURCE"}
    assert capabilities_in_mask(1 << 40) == {"CAP_CHECKPOINT_RESTORE"}
    assert capabilities_in_mask(1 << 63) == frozenset()  # unknown bits are ignored
    assert len(CAPABILITY_BITS) == 41 and len(set(CAPABILITY_BITS)) == 41


def test_capability_table_names_the_same_set_as_the_spec() -> None:
    from dockyard.runtime.spec import ALL_CAPS

    assert set(CAPABILITY_BITS) == set(ALL_CAPS)


OWN = Monitor(MonitorKind.DOCKYARD, "/x/libexec/dockyard/dockyard-monitor")


def test_own_monitor_argv_names_the_session_files() -> None:
    req = _req(monitor=OWN)
    argv = exec_argv(req)
    assert argv[0] == OWN.path
    assert _value(argv, "--id") == "c" * 64 and _value(argv, "--exec-id") == "e" * 64
    assert _value(argv, "--runtime") == "/usr/sbin/runc"
    assert _value(argv, "--exec-process") == str(req.process_file)
    assert _value(argv, "--dir") == str(req.directory)
    assert _value(argv, "--pid-file") == str(req.pid_file)
    assert _value(argv, "--monitor-pid-file") == str(req.monitor_pid_file)
    assert _value(argv, "--exit-dir") == str(req.exit_dir)
    assert "--log" not in argv and "--bundle" not in argv and "--persist-dir" not in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--runtime-arg"] == ["--root", "/run/dy/runc"]


def test_own_monitor_tty_and_stdin_flags() -> None:
    for tty, stdin in itertools.product((False, True), repeat=2):
        argv = exec_argv(_req(tty=tty, stdin=stdin, monitor=OWN))
        assert ("--tty" in argv) == tty and ("--stdin" in argv) == stdin
        assert ("--leave-stdin-open" in argv) == (tty and stdin)
