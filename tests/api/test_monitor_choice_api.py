"""The daemon's monitor as clients see it: `docker version` lists it with its version, and
each running container (and exec session) has one of that kind, found by the container's id."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.runtime.monitor import is_monitor_argv
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
