"""inspect and ps, field for field as dockerd 28 sends them at API 1.50, held against moby's
swagger (Debian's copy, carried to 1.50 by tests/api/swagger.py) for containers in every
state: created, running, exited, paused, with a healthcheck, mounts, a restart policy, a TTY.

Deviations from dockerd allowed here, each with its reason (the values differ, never the
shape unless listed):
- `GraphDriver` is `{"Name": "overlayfs", "Data": {LowerDir, MergedDir, UpperDir, WorkDir}}`:
  dockerd says "overlay2" with that Data, or "overlayfs" with Data null (containerd store).
- `NetworkSettings` has no endpoints (`Networks: {}`, empty addresses): no networking yet.
- `ImageManifestDescriptor` is never sent: dockerd sends it only with a multi-platform
  (containerd) image store, which this daemon is not.
Keys dockerd 28 sends beyond its own swagger: none for these documents (moby v28.2.2's Go
types carry no field the swagger lacks, except `HostConfig.KernelMemory` and
`Mount.ClusterOptions`, both omitempty and never set on a single host), so any extra key fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.api.swagger import RULES, Shape, check, load_shapes, swagger_path
from tests.conftest import Daemon

PREFIX = "shape-"
# What `docker ps --format "{{json .}}"` prints for each container (docker/cli 28's ContainerContext;
# Platform comes from ImageManifestDescriptor, so it is empty here).
PS_JSON_KEYS = {"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
                "Platform", "Ports", "RunningFor", "Size", "State", "Status"}  # fmt: skip


@pytest.fixture(scope="module")
def shapes() -> dict[str, Shape]:
    return load_shapes(swagger_path())


@pytest.fixture(scope="module")
def containers(daemon: Daemon, busybox: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """name -> id of one container in each state."""
    host_dir = tmp_path_factory.mktemp("shape-binds")
    (host_dir / "f").write_text("x\n")
    names: list[str] = []

    def run(name: str, *args: str, check: bool = True) -> None:
        names.append(PREFIX + name)
        daemon.docker(*args[:1], "--name", PREFIX + name, *args[1:], check=check)

    try:
        run("created", "create", "-e", "A=1", "-l", "shape=1", "-w", "/tmp", busybox, "true")
        run("running", "run", "-d", "-l", "shape=1", busybox, "sleep", "300")
        run("exited", "run", busybox, "sh", "-c", "echo data > /written; exit 3", check=False)
        run("paused", "run", "-d", busybox, "sleep", "300")
        daemon.docker("pause", PREFIX + "paused")
        run("health", "run", "-d", "--health-cmd", "true", "--health-interval", "1s",
            "--health-start-period", "5s", "--health-start-interval", "100ms", busybox, "sleep", "300")  # fmt: skip
        run("mounts", "run", "-d", "-v", f"{host_dir}:/data", "-v", f"{host_dir}:/ro:ro,rslave",
            "--mount", "type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=0700",
            "--mount", f"type=bind,src={host_dir},dst=/b,readonly", "--tmpfs", "/run2:size=1m",
            busybox, "sleep", "300")  # fmt: skip
        run("restart", "run", "-d", "--restart", "on-failure:3", busybox, "sleep", "300")
        run("tty", "run", "-dit", busybox, "sh")
        run("options", "create", "--init", "--sysctl", "net.ipv4.ip_forward=1", "--cap-add", "NET_ADMIN",
            "--cap-drop", "MKNOD", "--dns", "127.0.0.1", "--add-host", "a.example:10.0.0.1",
            "--ulimit", "nofile=512:1024", "--stop-signal", "SIGINT", "--stop-timeout", "0", "--annotation", "a=b",
            "--memory", "64m", "--pids-limit", "50", "--group-add", "10", "--security-opt", "no-new-privileges",
            "--hostname", "opts", "--domainname", "example.org", "-u", "65534", "--entrypoint", "/bin/sh",
            "--expose", "80", "--read-only", "--shm-size", "32m", "--oom-score-adj", "5",
            busybox, "-c", "true")  # fmt: skip
        ids = {n.removeprefix(PREFIX): daemon.out("inspect", "-f", "{{.Id}}", n) for n in names}
        yield ids
    finally:
        if names:
            daemon.docker("rm", "-f", *names, check=False)


def _api(daemon: Daemon) -> Any:
    api = daemon.client().api
    assert api.api_version == "1.50"
    return api


def _get(daemon: Daemon, path: str) -> Any:
    api = _api(daemon)
    response = api.get(f"{api.base_url}/v1.50{path}")
    assert response.status_code == 200, response.text
    return response.json()


def _problems(doc: Any, shape: Shape, root: str, expect: frozenset[str] | set[str] = frozenset()) -> list[str]:
    problems: list[str] = []
    check(doc, shape, replace(RULES, expect=frozenset(expect)), root, problems)
    return problems


# ---- the checker itself: it must see what it is for ----------------------------------


def test_the_checker_sees_extra_missing_and_mistyped_keys(shapes: dict[str, Shape]) -> None:
    good = {"Id": "x", "Names": ["/a"], "Image": "i", "ImageID": "sha256:x", "Command": "c", "Created": 1,
            "Ports": [], "Labels": {}, "State": "created", "Status": "Created", "HostConfig": {"NetworkMode": "none"},
            "NetworkSettings": {"Networks": {}}, "Mounts": []}  # fmt: skip
    assert _problems(good, shapes["Summary"], "Summary") == []
    assert _problems({**good, "Bogus": 1}, shapes["Summary"], "Summary") == ["Summary.Bogus: not in the API 1.50 swagger"]
    missing = dict(good)
    del missing["Ports"]
    assert _problems(missing, shapes["Summary"], "Summary") == ["Summary.Ports: missing (dockerd always sends it)"]
    assert _problems({**good, "Created": "1"}, shapes["Summary"], "Summary")[0].startswith("Summary.Created: str")
    assert _problems({**good, "Created": True}, shapes["Summary"], "Summary")[0].startswith("Summary.Created: bool")
    assert _problems({**good, "Names": None}, shapes["Summary"], "Summary")[0].startswith("Summary.Names: null")
    assert _problems({**good, "SizeRw": 0}, shapes["Summary"], "Summary")[0].startswith("Summary.SizeRw: 0 sent")
    assert _problems({**good, "SizeRw": 10}, shapes["Summary"], "Summary") == []
    assert _problems(good, shapes["Summary"], "Summary", {"Summary.SizeRootFs"}) == ["Summary.SizeRootFs: missing"]
    deep = {**good, "Mounts": [{"Type": "bind", "Source": "/a", "Destination": "/b", "Mode": "", "RW": 1,
                                "Propagation": ""}]}  # fmt: skip
    assert _problems(deep, shapes["Summary"], "Summary") == ["Summary.Mounts[].RW: int 1, the swagger says boolean"]


def test_debian_swagger_is_carried_to_1_50(shapes: dict[str, Shape]) -> None:
    inspect = shapes["Inspect"].describe("Inspect")
    assert "Inspect.HostConfig.KernelMemory" not in inspect  # gone in 1.42
    assert inspect["Inspect.Config.Healthcheck.StartInterval"] == "integer"  # 1.44
    assert inspect["Inspect.HostConfig.Annotations{}"] == "string"  # 1.43
    summary = shapes["Summary"].describe("Summary")
    assert summary["Summary.Mounts[].Destination"] == "string" and "Summary.Mounts[].Target" not in summary
    assert len(inspect) == 329 and len(summary) == 77  # moby v28.2.2's swagger has as many


# ---- GET /containers/{id}/json ---------------------------------------------------------


def test_inspect_matches_the_swagger_in_every_state(daemon: Daemon, containers: dict[str, str],
                                                     shapes: dict[str, Shape]) -> None:  # fmt: skip
    problems = {}
    for name, cid in containers.items():
        doc = _get(daemon, f"/containers/{cid}/json")
        found = _problems(doc, shapes["Inspect"], "Inspect")
        if found:
            problems[name] = found
        assert "SizeRw" not in doc and "SizeRootFs" not in doc
    assert problems == {}


def test_inspect_with_size_has_both_sizes(daemon: Daemon, containers: dict[str, str], shapes: dict[str, Shape]) -> None:
    for name in ("created", "exited"):
        doc = _get(daemon, f"/containers/{containers[name]}/json?size=1")
        assert _problems(doc, shapes["Inspect"], "Inspect", {"Inspect.SizeRw", "Inspect.SizeRootFs"}) == []
        assert doc["SizeRootFs"] > 0
    assert doc["SizeRw"] > 0  # the exited one wrote a file


def test_inspect_values_follow_the_state(daemon: Daemon, containers: dict[str, str]) -> None:
    docs = {name: _get(daemon, f"/containers/{cid}/json") for name, cid in containers.items()}
    flags = {n: (d["State"]["Status"], d["State"]["Running"], d["State"]["Paused"]) for n, d in docs.items()}
    assert flags["created"] == ("created", False, False)
    assert flags["running"] == ("running", True, False)
    assert flags["exited"] == ("exited", False, False) and docs["exited"]["State"]["ExitCode"] == 3
    assert flags["paused"] == ("paused", True, True)
    assert docs["running"]["State"]["Pid"] > 0 and docs["created"]["State"]["Pid"] == 0
    assert docs["tty"]["Config"]["Tty"] is True and docs["tty"]["Config"]["OpenStdin"] is True
    assert docs["restart"]["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert docs["health"]["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "StartPeriod": 5_000_000_000,
        "StartInterval": 100_000_000,
    }  # fmt: skip
    for name in ("created", "running", "exited", "paused", "mounts", "restart", "tty", "options"):
        assert "Health" not in docs[name]["State"], name
        assert "Healthcheck" not in docs[name]["Config"], name
    assert docs["created"]["Config"]["Env"][0] == "A=1" and docs["created"]["Config"]["WorkingDir"] == "/tmp"
    assert docs["running"]["ExecIDs"] is None and docs["running"]["Args"] == ["300"]
    assert docs["tty"]["Args"] == []


def test_inspect_mounts(daemon: Daemon, containers: dict[str, str]) -> None:
    doc = _get(daemon, f"/containers/{containers['mounts']}/json")
    by_dest = {m["Destination"]: m for m in doc["Mounts"]}
    assert set(by_dest) == {"/data", "/ro", "/t", "/b"}  # --tmpfs is no mount point in dockerd either
    assert by_dest["/data"]["Mode"] == "" and by_dest["/data"]["RW"] is True
    assert by_dest["/ro"] == {"Type": "bind", "Source": by_dest["/data"]["Source"], "Destination": "/ro",
                              "Mode": "ro,rslave", "RW": False, "Propagation": "rslave"}  # fmt: skip
    assert by_dest["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
                             "Propagation": ""}  # fmt: skip
    assert by_dest["/b"]["RW"] is False and by_dest["/b"]["Mode"] == "" and by_dest["/b"]["Propagation"] == "rprivate"
    host = doc["HostConfig"]
    assert host["Tmpfs"] == {"/run2": "size=1m"}
    assert host["Mounts"] == [
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o700}},
        {"Type": "bind", "Source": by_dest["/b"]["Source"], "Target": "/b", "ReadOnly": True},
    ]


def test_inspect_options_shown_as_dockerd(daemon: Daemon, containers: dict[str, str]) -> None:
    doc = _get(daemon, f"/containers/{containers['options']}/json")
    host, config = doc["HostConfig"], doc["Config"]
    assert host["Init"] is True and host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert host["Annotations"] == {"a": "b"} and host["Runtime"]
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] == ["CAP_MKNOD"] and host["Dns"] == ["127.0.0.1"]
    assert host["ExtraHosts"] == ["a.example:10.0.0.1"] and host["GroupAdd"] == ["10"]
    assert host["Ulimits"] == [{"Name": "nofile", "Hard": 1024, "Soft": 512}]
    assert host["Memory"] == 64 * 1024 * 1024 and host["PidsLimit"] == 50 and host["ShmSize"] == 32 * 1024 * 1024
    assert host["ReadonlyRootfs"] is True and host["OomScoreAdj"] == 5
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert config["StopSignal"] == "SIGINT" and config["StopTimeout"] == 0
    assert config["ExposedPorts"] == {"80/tcp": {}} and config["User"] == "65534"
    assert config["Hostname"] == "opts" and config["Domainname"] == "example.org"
    assert config["Entrypoint"] == ["/bin/sh"] and config["Cmd"] == ["-c", "true"]
    # Left out when empty, in a container without these options:
    plain = _get(daemon, f"/containers/{containers['running']}/json")
    for key in ("Init", "Sysctls", "Annotations", "Tmpfs", "Mounts", "StorageOpt", "KernelMemoryTCP"):
        assert key not in plain["HostConfig"], key
    for key in ("StopSignal", "StopTimeout", "ExposedPorts", "MacAddress", "NetworkDisabled", "Shell"):
        assert key not in plain["Config"], key


def test_state_health_once_probes_ran(daemon: Daemon, containers: dict[str, str], shapes: dict[str, Shape]) -> None:
    deadline = time.monotonic() + 8
    doc = _get(daemon, f"/containers/{containers['health']}/json")
    while not doc["State"].get("Health", {}).get("Log") and time.monotonic() < deadline:
        time.sleep(0.2)
        doc = _get(daemon, f"/containers/{containers['health']}/json")
    assert _problems(doc, shapes["Inspect"], "Inspect", {"Inspect.State.Health"}) == []
    health = doc["State"]["Health"]
    assert health["Status"] in ("starting", "healthy") and health["FailingStreak"] == 0
    assert health["Log"], "no probe result within 8 s at a 100 ms start interval"
    probe = health["Log"][-1]
    assert probe["ExitCode"] == 0 and probe["Start"] <= probe["End"] and probe["End"].endswith("Z")


# ---- GET /containers/json --------------------------------------------------------------


def _ours(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["Names"][0].startswith("/" + PREFIX)]


def test_list_matches_the_swagger(daemon: Daemon, containers: dict[str, str], shapes: dict[str, Shape]) -> None:
    docs = _ours(_get(daemon, "/containers/json?all=1"))
    assert {d["Id"] for d in docs} == set(containers.values())
    problems = {d["Names"][0]: _problems(d, shapes["Summary"], "Summary") for d in docs}
    assert {k: v for k, v in problems.items() if v} == {}
    assert all("SizeRw" not in d and "SizeRootFs" not in d for d in docs)
    by_name = {d["Names"][0].removeprefix("/" + PREFIX): d for d in docs}
    assert by_name["paused"]["State"] == "paused" and by_name["paused"]["Status"].endswith("(Paused)")
    assert by_name["exited"]["Status"].startswith("Exited (3) ")
    assert by_name["running"]["Command"] == "sleep 300" and by_name["running"]["Labels"] == {"shape": "1"}
    assert by_name["options"]["HostConfig"] == {"NetworkMode": "default", "Annotations": {"a": "b"}}
    assert {m["Destination"] for m in by_name["mounts"]["Mounts"]} == {"/data", "/ro", "/t", "/b"}


def test_list_with_size(daemon: Daemon, containers: dict[str, str], shapes: dict[str, Shape]) -> None:
    docs = _ours(_get(daemon, "/containers/json?all=1&size=1"))
    for doc in docs:
        assert _problems(doc, shapes["Summary"], "Summary", {"Summary.SizeRootFs"}) == [], doc["Names"]
        assert doc["SizeRootFs"] > 0
    by_name = {d["Names"][0].removeprefix("/" + PREFIX): d for d in docs}
    assert by_name["exited"]["SizeRw"] > 0


# ---- the real clients parse it ------------------------------------------------------------


def test_docker_inspect_cli(daemon: Daemon, containers: dict[str, str], shapes: dict[str, Shape]) -> None:
    names = [PREFIX + n for n in containers]
    docs = json.loads(daemon.out("inspect", *names))
    assert [d["Id"] for d in docs] == list(containers.values())
    for doc in docs:
        assert _problems(doc, shapes["Inspect"], "Inspect") == [], doc["Name"]
    sized = json.loads(daemon.out("container", "inspect", "-s", PREFIX + "exited"))[0]
    assert sized["SizeRw"] > 0 and sized["SizeRootFs"] >= sized["SizeRw"]
    # Go templates read typed fields: these fail if a type is off.
    shown = daemon.out("inspect", "-f", "{{.State.Pid}} {{.HostConfig.Memory}} {{.Config.StopTimeout}} "
                       "{{.HostConfig.Init}} {{len .Mounts}}", PREFIX + "options")  # fmt: skip
    assert shown == "0 67108864 0 true 0"


def test_docker_ps_json_cli(daemon: Daemon, containers: dict[str, str], tmp_path: Path) -> None:
    lines = daemon.out("ps", "-a", "--no-trunc", "--filter", f"name={PREFIX}", "--format", "{{json .}}").splitlines()
    rows = {json.loads(line)["Names"]: json.loads(line) for line in lines}
    assert set(rows) == {PREFIX + n for n in containers}
    for row in rows.values():
        assert set(row) == PS_JSON_KEYS, row
    assert rows[PREFIX + "running"]["ID"] == containers["running"]
    assert rows[PREFIX + "running"]["Platform"] in (None, "")  # no ImageManifestDescriptor: no platform
    assert rows[PREFIX + "running"]["Labels"] == "shape=1" and rows[PREFIX + "paused"]["State"] == "paused"
    assert rows[PREFIX + "running"]["Command"] == '"sleep 300"'
    assert rows[PREFIX + "mounts"]["Mounts"].count(",") == 3  # four mount points, named by source
    sized = [json.loads(line) for line in
             daemon.out("ps", "-a", "-s", "--filter", f"name={PREFIX}", "--format", "{{json .}}").splitlines()]  # fmt: skip
    assert len(sized) == len(containers)
    assert all("(virtual " in row["Size"] for row in sized), [row["Size"] for row in sized]
