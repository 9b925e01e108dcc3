"""Container logs: dockerd's json-file at LogPath, rotation, drivers, and no line lost to a
daemon that was away."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from tests.conftest import Daemon

JSON_LINE = re.compile(rb'^\{"log":"(.*)","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"\}$')


def _wait_exit(daemon: Daemon, cid: str) -> None:
    daemon.docker("wait", cid)


def test_logpath_is_dockerds_json_file(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", busybox, "sh", "-c", "echo out; echo err >&2; printf 'no-newline'; echo '<&>'")
    try:
        _wait_exit(daemon, cid)
        path = Path(json.loads(daemon.out("inspect", cid))[0]["LogPath"])
        assert path.name == f"{cid}-json.log"
        lines = path.read_bytes().splitlines()
        assert all(JSON_LINE.match(line) for line in lines), lines
        records = [json.loads(line) for line in lines]
        # stdout and stderr are two pipes: their order between them is not fixed.
        assert [r["log"] for r in records if r["stream"] == "stderr"] == ["err\n"]
        assert "".join(r["log"] for r in records if r["stream"] == "stdout") == "out\nno-newline<&>\n"
        assert b"\\u003c\\u0026\\u003e" in path.read_bytes()  # Go escapes <&> in JSON
        assert daemon.out("logs", cid) == "out\nno-newline<&>"
    finally:
        daemon.docker("rm", "-f", cid)


def test_rotation_keeps_max_file_files_and_logs_reads_across_them(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", busybox,
                     "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done")  # fmt: skip
    try:
        _wait_exit(daemon, cid)
        path = Path(json.loads(daemon.out("inspect", cid))[0]["LogPath"])
        siblings = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
        assert siblings == [path.name, path.name + ".1", path.name + ".2"]
        lines = daemon.out("logs", cid).splitlines()
        assert lines[-1] == "line-399" and len(lines) < 400  # the oldest files were dropped
        numbers = [int(line.split("-")[1]) for line in lines]
        assert numbers == list(range(numbers[0], 400))  # what is kept is whole and in order
        assert daemon.out("logs", "--tail", "3", cid).splitlines() == ["line-397", "line-398", "line-399"]
    finally:
        daemon.docker("rm", "-f", cid)


def test_rotation_is_on_by_default(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("create", busybox, "true")
    try:
        config = json.loads(daemon.out("inspect", cid))[0]["HostConfig"]["LogConfig"]
        assert config["Type"] == "json-file"
    finally:
        daemon.docker("rm", cid)


def test_the_none_and_local_drivers(daemon: Daemon, busybox: str) -> None:
    none = daemon.out("run", "-d", "--log-driver", "none", busybox, "echo", "gone")
    local = daemon.out("run", "-d", "--log-driver", "local", busybox, "echo", "kept")
    try:
        _wait_exit(daemon, none)
        _wait_exit(daemon, local)
        result = daemon.docker("logs", none, check=False)
        assert result.returncode != 0
        assert "configured logging driver does not support reading" in result.stderr.decode()
        assert json.loads(daemon.out("inspect", none))[0]["LogPath"] == ""
        assert daemon.out("logs", local) == "kept"
        bad = daemon.docker("run", "--rm", "--log-opt", "bogus=1", busybox, "true", check=False)
        assert "unknown log opt 'bogus' for json-file log driver" in bad.stderr.decode()
    finally:
        daemon.docker("rm", "-f", none, local)


def test_follow_ends_when_the_container_exits(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=10", busybox,
                     "sh", "-c", "sleep 0.3; i=0; while [ $i -lt 200 ]; do echo f-$i; i=$((i+1)); done")  # fmt: skip
    try:
        followed = daemon.out("logs", "-f", cid, timeout=30).splitlines()
        assert followed == [f"f-{i}" for i in range(200)]  # across rotations, to the end
    finally:
        daemon.docker("rm", "-f", cid)


def test_lines_written_while_the_daemon_was_killed_are_all_there(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    cid = d.out("run", "-d", "busybox", "sh", "-c",
                "i=0; while [ $i -lt 300 ]; do echo n-$i; i=$((i+1)); sleep 0.01; done")  # fmt: skip
    time.sleep(0.5)
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    time.sleep(3)  # the container goes on writing, and ends, while no daemon runs
    d.start()
    d.docker("wait", cid)
    assert d.out("logs", cid).splitlines() == [f"n-{i}" for i in range(300)]


def test_compressed_rotation_is_read_back(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", "--log-opt", "max-size=2k", "--log-opt", "max-file=4", "--log-opt", "compress=true",
                     busybox, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo z-$i; i=$((i+1)); done")  # fmt: skip
    try:
        _wait_exit(daemon, cid)
        path = Path(json.loads(daemon.out("inspect", cid))[0]["LogPath"])
        deadline = time.monotonic() + 10  # rotated files are compressed in the background
        while True:
            names = {p.name for p in path.parent.iterdir() if p.name.startswith(path.name)}
            if {path.name + ".2.gz", path.name + ".3.gz"} <= names or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert {path.name + ".2.gz", path.name + ".3.gz"} <= names
        lines = daemon.out("logs", cid).splitlines()
        numbers = [int(line.split("-")[1]) for line in lines]
        assert numbers == list(range(numbers[0], 300)) and numbers[0] > 0
    finally:
        daemon.docker("rm", "-f", cid)


def test_daemon_json_log_defaults_apply_to_new_containers(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory({"log-driver": "json-file", "log-opts": {"max-size": "1k", "max-file": "2"}})
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    cid = d.out("run", "-d", "busybox", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo d-$i; i=$((i+1)); done")
    d.docker("wait", cid)
    doc = json.loads(d.out("inspect", cid))[0]
    assert doc["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}
    path = Path(doc["LogPath"])
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name)) == [path.name, path.name + ".1"]
    local = d.out("create", "--log-driver", "local", "busybox", "true")  # another driver: the file's opts stay out
    assert json.loads(d.out("inspect", local))[0]["HostConfig"]["LogConfig"]["Config"] == {}


def test_a_bad_daemon_log_option_stops_the_daemon_with_dockerds_words(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory({"log-opts": {"max-size": "lots"}}, start=False)
    try:
        d.start()
    except AssertionError as exc:
        assert "failed to set log opts" in str(exc)
    else:
        raise AssertionError("the daemon started with a bad log-opts")
