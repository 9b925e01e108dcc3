"""The daemon's monitor as clients see it: `docker version` lists it with its version, each
running container (and exec session) has one of that kind, found by the container's id, and a
daemon restarted with the other kind adopts the containers the first one's monitors hold."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from dockyard.config import MonitorChoice
from dockyard.runtime.monitor import MonitorKind, choose_monitor, is_monitor_argv
from tests.conftest import Daemon, monitor_under_test


def _monitors_of(container_id: str) -> list[list[bytes]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if is_monitor_argv(argv, container_id):
                found.append(argv)
    return found


def test_version_lists_the_monitor_in_use(daemon: Daemon) -> None:
    monitor = monitor_under_test()
    components = json.loads(daemon.out("version", "--format", "{{json .Server.Components}}"))
    listed = {c["Name"]: c for c in components}
    assert listed[monitor.kind.value]["Details"]["Path"] == monitor.path
    assert listed[monitor.kind.value]["Version"][:1].isdigit()  # it answered --version


def test_a_running_container_and_its_exec_have_a_monitor_of_that_kind(daemon: Daemon, busybox: str) -> None:
    monitor = monitor_under_test()
    cid = daemon.out("run", "-d", busybox, "sleep", "300")
    try:
        found = _monitors_of(cid)
        assert len(found) == 1 and found[0][0].decode() == monitor.path
        assert daemon.out("exec", cid, "sh", "-c", "echo in-exec") == "in-exec"
        assert len(_monitors_of(cid)) == 1  # the exec's monitor has ended with it
    finally:
        daemon.docker("rm", "-f", cid, check=False)
    assert _monitors_of(cid) == []


def _eventually(check, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not settled"
        time.sleep(0.1)


@pytest.mark.skipif(choose_monitor(MonitorChoice.AUTO).kind is not MonitorKind.DOCKYARD, reason="dockyard-monitor is not installed")
def test_after_a_crash_a_daemon_with_the_other_monitor_adopts_the_containers(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory({"monitor": "conmon"})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    cid = d.out("run", "-d", "busybox", "sh", "-c", "trap 'echo bye; exit 3' TERM; echo before; while :; do sleep 0.1; done")
    _eventually(lambda: "before" in d.out("logs", cid))
    assert [a[0] for a in _monitors_of(cid)] == [b"/usr/bin/conmon"]
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    doc = json.loads((d.base / "daemon.json").read_text())
    (d.base / "daemon.json").write_text(json.dumps({**doc, "monitor": "dockyard-monitor"}))
    d.start()
    assert d.out("inspect", "--format", "{{.State.Running}}", cid) == "true"
    assert d.out("exec", cid, "echo", "exec-under-the-new-monitor") == "exec-under-the-new-monitor"
    d.docker("stop", cid)
    assert d.out("inspect", "--format", "{{.State.ExitCode}}", cid) == "3"  # conmon's record, read by the new daemon
    assert d.out("logs", cid).split() == ["before", "bye"]
    assert _monitors_of(cid) == []
    new = d.out("run", "-d", "busybox", "sleep", "300")
    assert [a[0].decode() for a in _monitors_of(new)] == [choose_monitor(MonitorChoice.DOCKYARD).path]
