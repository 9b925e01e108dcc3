"""`docker update` on a real daemon with runc: the new limits are in force in the container's
cgroup (read from inside the container and from the host), shown by inspect, kept for the
next start of a stopped container and across a daemon restart; bad values get dockerd's
status and words and change nothing; docker-py's `container.update`; the `update` event."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Daemon

MB = 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")
# Each file the test reads, as the container sees it (its own cgroup is at the root there).
FILES = {
    "memory": "memory/memory.limit_in_bytes",
    "memsw": "memory/memory.memsw.limit_in_bytes",
    "shares": "cpu/cpu.shares",
    "quota": "cpu/cpu.cfs_quota_us",
    "period": "cpu/cpu.cfs_period_us",
    "cpus": "cpuset/cpuset.cpus",
    "pids": "pids/pids.max",
}
# The container reports its limits on stdout each time they change.
REPORT = (
    "last=; while :; do cur=$(cd /sys/fs/cgroup && cat " + " ".join(FILES.values()) + " | tr '\\n' ' '); "
    'if [ "$cur" != "$last" ]; then echo "limits: $cur"; last=$cur; fi; sleep 0.1; done'
)


@pytest.fixture
def name() -> Iterator[str]:
    yield f"upd-{uuid.uuid4().hex[:8]}"


def _limits(line: str) -> dict[str, str]:
    return dict(zip(FILES, line.removeprefix("limits: ").split(), strict=True))


def _wait_for(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _reported(d: Daemon, name: str, **expected: str) -> dict[str, str]:
    """The container's latest report once it shows `expected`."""

    def latest() -> dict[str, str] | None:
        lines = [line for line in d.out("logs", name).splitlines() if line.startswith("limits: ")]
        if not lines:
            return None
        got = _limits(lines[-1])
        return got if all(got[k] == v for k, v in expected.items()) else None

    return _wait_for(latest)  # type: ignore[no-any-return]


def _host_cgroup(d: Daemon, name: str) -> dict[str, str]:
    """The same files from the host, in the container's cgroup (dockyard's /dockyard/<id>)."""
    cid = d.out("inspect", "-f", "{{.Id}}", name)
    out = {}
    for key, rel in FILES.items():
        controller, file = rel.split("/")
        out[key] = (CGROUP / controller / "dockyard" / cid / file).read_text().strip()
    return out


def _host_config(d: Daemon, name: str) -> dict[str, Any]:
    return json.loads(d.out("inspect", name))[0]["HostConfig"]  # type: ignore[no-any-return]


def _fails(d: Daemon, *args: str) -> str:
    result = d.docker(*args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr.decode().strip()


def test_update_a_running_container(daemon: Daemon, busybox: str, name: str) -> None:
    daemon.docker("run", "-d", "--name", name, busybox, "sh", "-c", REPORT)
    try:
        before = _reported(daemon, name)
        assert before["pids"] == "max" and before["shares"] == "1024" and before["quota"] == "-1"
        out = daemon.out("update", "--memory", "64m", "--memory-swap", "128m", "--cpu-shares", "512", "--cpus", "0.5",
                         "--cpuset-cpus", "0", "--pids-limit", "50", "--restart", "on-failure:3", name)  # fmt: skip
        assert out == name
        expected = {"memory": str(64 * MB), "memsw": str(128 * MB), "shares": "512", "quota": "50000",
                    "period": "100000", "cpus": "0", "pids": "50"}  # fmt: skip
        assert _reported(daemon, name, **expected) == expected  # as the container sees it
        assert _host_cgroup(daemon, name) == expected
        h = _host_config(daemon, name)
        assert (h["Memory"], h["MemorySwap"], h["CpuShares"], h["NanoCpus"], h["CpusetCpus"], h["PidsLimit"]) == (
            64 * MB, 128 * MB, 512, 500_000_000, "0", 50)  # fmt: skip
        assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        # Lifting the pids limit, raising memory with its swap; the rest stays.
        daemon.docker("update", "--pids-limit", "-1", "--memory", "256m", "--memory-swap", "512m", name)
        got = _reported(daemon, name, pids="max", memory=str(256 * MB))
        assert (got["memsw"], got["shares"], got["quota"], got["cpus"]) == (str(512 * MB), "512", "50000", "0")
        assert _host_config(daemon, name)["PidsLimit"] is None
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_an_updated_restart_policy_is_followed(daemon: Daemon, busybox: str, name: str) -> None:
    """Created without a policy; updated to on-failure:2 while it runs, its failures restart it twice."""
    daemon.docker("run", "-d", "--name", name, busybox, "sh", "-c", "echo run; sleep 1; exit 3")
    try:
        daemon.docker("update", "--restart", "on-failure:2", name)
        state = _wait_for(lambda: _state_if(daemon, name, lambda s: s["RestartCount"] == 2 and s["State"]["Status"] == "exited"))
        assert state["State"]["ExitCode"] == 3
        assert daemon.out("logs", name).split() == ["run", "run", "run"]
        # And back to "no": the next failure stays down.
        daemon.docker("update", "--restart", "no", name)
        daemon.docker("start", name)
        _wait_for(lambda: _state_if(daemon, name, lambda s: s["State"]["Status"] == "exited"))
        time.sleep(0.5)
        assert _state_if(daemon, name, lambda s: s["State"]["Status"] == "exited" and s["RestartCount"] == 0)
    finally:
        daemon.docker("rm", "-f", name, check=False)


def _state_if(d: Daemon, name: str, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    state: dict[str, Any] = json.loads(d.out("inspect", name))[0]
    return state if test(state) else None


def test_a_stopped_container_gets_the_limits_at_its_next_start(daemon: Daemon, busybox: str, name: str) -> None:
    daemon.docker("create", "--name", name, busybox, "sh", "-c", REPORT)
    try:
        daemon.docker("update", "--memory", "32m", "--cpu-shares", "256", "--pids-limit", "20", "--cpuset-cpus", "0", name)
        h = _host_config(daemon, name)
        # --memory alone on a container without a limit: swap twice the memory, as `run --memory`.
        assert (h["Memory"], h["MemorySwap"], h["CpuShares"], h["PidsLimit"]) == (32 * MB, 64 * MB, 256, 20)
        daemon.docker("start", name)
        got = _reported(daemon, name)
        assert (got["memory"], got["memsw"], got["shares"], got["pids"], got["cpus"]) == (
            str(32 * MB), str(64 * MB), "256", "20", "0")  # fmt: skip
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_bad_values_get_dockerds_words_and_change_nothing(daemon: Daemon, busybox: str, name: str) -> None:
    cpus = len(os.sched_getaffinity(0))
    # 24 MB of /dev/shm charged to the container: a limit below that cannot be met (no swap here).
    script = "head -c 24m /dev/zero > /dev/shm/ballast; " + REPORT
    cid = daemon.out("run", "-d", "--name", name, "--memory", "64m", "--cpus", "0.5", busybox, "sh", "-c", script)
    try:
        before_cgroup = _reported(daemon, name, memory=str(64 * MB))
        before = _host_config(daemon, name)
        swap_clash = ("Memory limit should be smaller than already set memoryswap limit, update the memoryswap "
                      "at the same time")  # fmt: skip
        cases = [
            (("--memory", "1m"), "Minimum memory limit allowed is 6MB"),
            (("--memory", "64m", "--memory-swap", "32m"), "Minimum memoryswap limit should be larger than memory limit, see usage"),
            (("--memory", "256m"), f"Cannot update container {cid}: {swap_clash}"),
            (("--memory-swap", "32m"), "Minimum memoryswap limit should be larger than memory limit, see usage"),
            (("--cpus", str(cpus + 1)), f"range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"),
            (("--cpu-period", "100000"),
             f"Cannot update container {cid}: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"),
            (("--cpuset-cpus", str(cpus + 5)), f"Requested CPUs are not available - requested {cpus + 5}, available: "),
            (("--cpu-shares", "-3"), "invalid CPU shares (-3): value must be a positive integer"),
            (("--restart", "bogus"),
             "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
            (("--restart", "always:3"), "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
            (("--kernel-memory", "10m"), "KernelMemory is not supported by this daemon"),
            (("--blkio-weight", "5"), "Range of blkio weight is from 10 to 1000"),
        ]  # fmt: skip
        for args, message in cases:
            assert _fails(daemon, "update", *args, name).startswith("Error response from daemon: " + message), args
        # Below what the container uses: the kernel refuses, dockerd's 500 with runc's words.
        stderr = _fails(daemon, "update", "--memory", "8m", "--memory-swap", "8m", name)
        assert stderr.startswith(f"Error response from daemon: Cannot update container {cid}: ")
        assert "unable to set memory limit to 8388608 (current usage: " in stderr
        assert _host_config(daemon, name) == before
        assert _host_cgroup(daemon, name) == before_cgroup
        assert _fails(daemon, "update", "--memory", "64m", "ghost-" + name) == "Error response from daemon: No such container: ghost-" + name
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_a_rm_container_keeps_no_restart_policy(daemon: Daemon, busybox: str, name: str) -> None:
    cid = daemon.out("run", "-d", "--rm", "--name", name, busybox, "sleep", "60")
    try:
        assert _fails(daemon, "update", "--restart", "always", name) == (
            f"Error response from daemon: Cannot update container {cid}: Restart policy cannot be updated because "
            "AutoRemove is enabled for the container"
        )
        assert _host_config(daemon, name)["RestartPolicy"]["Name"] == "no"
        daemon.docker("update", "--restart", "no", "--cpu-shares", "100", name)  # "no" and limits are fine
        assert _host_config(daemon, name)["CpuShares"] == 100
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_a_paused_container_is_updated(daemon: Daemon, busybox: str, name: str) -> None:
    daemon.docker("run", "-d", "--name", name, busybox, "sh", "-c", REPORT)
    try:
        _reported(daemon, name)
        daemon.docker("pause", name)
        daemon.docker("update", "--cpu-shares", "300", "--pids-limit", "30", name)
        got = _host_cgroup(daemon, name)
        assert (got["shares"], got["pids"]) == ("300", "30")
        daemon.docker("unpause", name)
        _reported(daemon, name, shares="300", pids="30")
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_docker_py_update_and_the_event(daemon: Daemon, busybox: str, name: str) -> None:
    client = daemon.client()
    since = time.time() - 1
    c = client.containers.run(busybox, ["sh", "-c", REPORT], name=name, detach=True, mem_limit="64m", cpu_shares=2)
    try:
        _reported(daemon, name)
        assert client.api.update_container(c.id, mem_limit="128m", memswap_limit="256m", cpu_shares=3) == {"Warnings": None}
        c.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 5}, cpu_quota=20000, cpu_period=50000)
        c.reload()
        h = c.attrs["HostConfig"]
        assert (h["Memory"], h["MemorySwap"], h["CpuShares"], h["CpuQuota"], h["CpuPeriod"]) == (
            128 * MB, 256 * MB, 3, 20000, 50000)  # fmt: skip
        assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
        got = _reported(daemon, name, memory=str(128 * MB), quota="20000")
        assert (got["memsw"], got["shares"], got["period"]) == (str(256 * MB), "3", "50000")
        events = list(client.events(since=since, until=time.time() + 1, decode=True,
                                    filters={"event": "update", "container": c.id}))  # fmt: skip
        assert len(events) == 2
        assert all(e["Action"] == "update" and e["Type"] == "container" for e in events)
        assert events[0]["Actor"]["ID"] == c.id
        assert events[0]["Actor"]["Attributes"]["name"] == name
        assert events[0]["Actor"]["Attributes"]["image"] == busybox
    finally:
        c.remove(force=True)
        client.close()


def test_docker_py_bad_update_is_an_api_error(daemon: Daemon, busybox: str, name: str) -> None:
    import docker.errors

    client = daemon.client()
    c = client.containers.create(busybox, "true", name=name)
    try:
        with pytest.raises(docker.errors.APIError) as info:
            c.update(mem_limit="1m")
        assert info.value.status_code == 400
        assert "Minimum memory limit allowed is 6MB" in str(info.value.explanation)
        with pytest.raises(docker.errors.NotFound):
            client.api.update_container("ghost-" + name, cpu_shares=2)
    finally:
        c.remove(force=True)
        client.close()


def test_the_update_survives_a_daemon_restart(daemon_factory: Any, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    d.docker("create", "--name", "keep", "busybox:latest", "true")
    d.docker("update", "--memory", "48m", "--memory-swap", "96m", "--restart", "unless-stopped", "keep")
    d.stop()
    d.start()
    h = _host_config(d, "keep")
    assert (h["Memory"], h["MemorySwap"], h["RestartPolicy"]["Name"]) == (48 * MB, 96 * MB, "unless-stopped")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def _post(d: Daemon, path: str, body: bytes) -> tuple[int, Any]:
    conn = _UnixHTTPConnection(str(d.socket))
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_raw_bodies(daemon: Daemon, busybox: str, name: str) -> None:
    daemon.docker("create", "--name", name, "--pids-limit", "40", busybox, "true")
    try:
        assert _post(daemon, f"/v1.50/containers/{name}/update", b"") == (200, {"Warnings": None})
        assert _post(daemon, f"/v1.50/containers/{name}/update", b"[]")[0] == 400
        status, doc = _post(daemon, f"/v1.50/containers/{name}/update", b'{"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}]}')
        assert (status, doc["message"]) == (400, "Ulimits cannot be changed by docker update: it is fixed when the container is created")
        status, doc = _post(daemon, f"/v1.50/containers/{name}/update", b'{"Memory": "64m"}')
        assert status == 400 and "invalid Memory" in doc["message"]
        # Before API 1.40 dockerd ignores PidsLimit; from then on 0 lifts the limit.
        assert _post(daemon, f"/v1.39/containers/{name}/update", b'{"PidsLimit": 0}')[0] == 200
        assert _host_config(daemon, name)["PidsLimit"] == 40
        assert _post(daemon, f"/v1.50/containers/{name}/update", b'{"PidsLimit": 0}')[0] == 200
        assert _host_config(daemon, name)["PidsLimit"] is None
        assert _post(daemon, "/v1.50/containers/ghost-x/update", b'{"CpuShares": 2}') == (404, {"message": "No such container: ghost-x"})
    finally:
        daemon.docker("rm", "-f", name, check=False)
