"""docker stats and docker top against a real daemon, with the docker CLI and docker-py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Daemon


@pytest.fixture
def busy(daemon: Daemon, busybox: str) -> Iterator[str]:
    cid = daemon.out("run", "-d", "--memory", "64m", busybox, "sh", "-c", "while :; do :; done")
    yield cid
    daemon.docker("rm", "-f", cid)


def test_stats_no_stream_shows_cpu_and_the_memory_limit(daemon: Daemon, busy: str) -> None:
    line = daemon.out("stats", "--no-stream", "--format", "{{json .}}", busy)
    row = json.loads(line)
    assert row["ID"] == busy[:12]
    cpu = float(row["CPUPerc"].rstrip("%"))
    assert cpu > 10  # a busy loop
    assert row["MemUsage"].endswith("/ 64MiB")
    assert int(row["PIDs"]) >= 1


def test_stats_stream_documents_in_dockerds_shape(daemon: Daemon, busy: str) -> None:
    client = daemon.client()
    stream = client.api.stats(busy, decode=True, stream=True)
    first, second = next(stream), next(stream)
    stream.close()
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert second["preread"] == first["read"]
    assert second["cpu_stats"]["cpu_usage"]["total_usage"] > first["cpu_stats"]["cpu_usage"]["total_usage"]
    assert second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"]
    assert second["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert second["name"] == "/" + client.containers.get(busy).name
    one = client.api.stats(busy, stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z" and one["id"] == busy


def test_stats_of_a_stopped_container_are_zero(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("create", busybox, "true")
    try:
        doc = daemon.client().api.stats(cid, stream=False)
        assert doc["read"] == "0001-01-01T00:00:00Z"
        assert doc["memory_stats"] == {}
    finally:
        daemon.docker("rm", cid)


def test_top_lists_only_the_containers_processes(daemon: Daemon, busy: str) -> None:
    out = daemon.out("top", busy).splitlines()
    assert out[0].split()[:3] == ["UID", "PID", "PPID"]
    assert len(out) == 2 and "while :; do :; done" in out[1]
    out = daemon.out("top", busy, "-o", "pid,comm").splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and out[1].split()[1] == "sh"
    top = daemon.client().api.top(busy, ps_args="-o pid,args")
    assert top["Titles"] == ["PID", "COMMAND"]


def test_top_errors_as_dockerd(daemon: Daemon, busybox: str, busy: str) -> None:
    bad = daemon.docker("top", busy, "-o", "user=PID", check=False)
    assert bad.returncode != 0 and 'specifying "user=PID" is not allowed' in bad.stderr.decode()
    cid = daemon.out("create", busybox, "true")
    try:
        stopped = daemon.docker("top", cid, check=False)
        assert stopped.returncode != 0 and f"container {cid} is not running" in stopped.stderr.decode()
    finally:
        daemon.docker("rm", cid)
