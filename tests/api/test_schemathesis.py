"""schemathesis over moby's swagger against a real daemon: no request it makes gets a 500.

Only operations that cannot touch the host run: the GET (and HEAD) ones that read what the
daemon holds (none that reaches a registry or streams without end), and create, inspect and
remove of containers from busybox, with every host-reaching field taken out of the generated
body (binds, mounts, devices, privileges, host namespaces, ...); no container is started.
Each operation gets conforming (positive) and schema-violating (negative) examples, with a
made-up id and with a real one. The daemon listens on loopback TCP for schemathesis (it speaks
HTTP through requests), besides its own unix socket.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.swagger import swagger_path
from tests.conftest import Daemon

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = 12  # per operation, per mode and id: about 900 requests in all, ~25 s
TIMEOUT = 10

# GETs that reach the network (registry, search) or stream until the client leaves.
NOT_RUN = r"^/(images/search|distribution/|plugins/privileges|events|containers/\{id\}/attach/ws)"

# HostConfig fields that could reach the host once a container starts (none is started, but a
# create must never even record them here), and the name of a runtime or a log driver.
HOST_REACHING = ("Binds", "Mounts", "Devices", "DeviceRequests", "DeviceCgroupRules", "Privileged", "CapAdd",
                 "SecurityOpt", "VolumesFrom", "VolumeDriver", "Links", "PidMode", "IpcMode", "UTSMode",
                 "UsernsMode", "CgroupnsMode", "NetworkMode", "Sysctls", "CgroupParent", "Runtime",
                 "ContainerIDFile", "LogConfig", "Cgroup", "Isolation")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fuzzed(busybox_tar: bytes) -> Iterator[tuple[Daemon, str, str]]:
    """A daemon of its own (every container in it is removed after), its TCP base URL, and a
    created container's id."""
    from tests.conftest import make_daemon

    d = make_daemon()
    port = _free_port()
    try:
        d.start("-H", f"tcp://127.0.0.1:{port}")
        d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
        cid = d.out("create", "--name", "fuzz-target", "busybox", "true")
        yield d, f"http://127.0.0.1:{port}/v1.41", cid
    finally:
        try:
            d.remove_all_containers()
        finally:
            d.stop()
            d.cleanup()


def _sanitize(case: Any) -> None:
    body = case.body
    if case.method == "POST" and isinstance(body, dict):
        body["Image"] = "busybox"
        body.pop("Volumes", None)
        host = body.get("HostConfig")
        if isinstance(host, dict):
            for key in HOST_REACHING:
                host.pop(key, None)
        body.pop("NetworkingConfig", None)


def _operations(schema: Any) -> list[Any]:
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return ops


def _run(op: Any, base_url: str, failures: list[str], statuses: Counter[int], known: list[str], mode: Any,
         **fixed: Any) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    if op.path.endswith(("/logs", "/stats")):
        # Streams must end: no follow, no endless stats (a made-up id "0" is a prefix of a real one).
        fixed["query"] = {"follow": "false", "stream": "false"}
    strategy = op.as_strategy(generation_mode=mode, **fixed)
    sent = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=strategy)
    def one(case: Any) -> None:
        nonlocal sent
        _sanitize(case)
        try:
            response = case.call(base_url=base_url, timeout=TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a cut connection or a hang is a failure too
            failures.append(f"{op.label} {mode.name}: {type(exc).__name__}: {exc} <- {case.path_parameters} "
                            f"{case.query} {str(case.body)[:200]}")  # fmt: skip
            return
        sent += 1
        statuses[response.status_code] += 1
        if response.status_code >= 500 and _known(op.label, case):
            known.append(op.label)
        elif response.status_code >= 500:
            failures.append(f"{op.label} {mode.name}: {response.status_code} {response.text[:200]} <- "
                            f"{case.path_parameters} {case.query} {str(case.body)[:300]}")  # fmt: skip
        if op.label == "POST /containers/create" and response.status_code == 201:
            created = response.json()["Id"]
            _delete(base_url, created)

    try:
        one()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to break in it (no parameter to make negative): no examples
    return sent


def _known(label: str, case: Any) -> bool:
    """500s outside the API layer, reported and held by a strict xfail in test_hostile.py."""
    return False  # none left: the NUL in an archive ?path= is a 400 now


def _delete(base_url: str, cid: str) -> None:
    import requests

    requests.delete(f"{base_url}/containers/{cid}", params={"force": "1", "v": "1"}, timeout=TIMEOUT)


def _schema() -> Any:
    schema = schemathesis.openapi.from_path(str(swagger_path()))
    reads = schema.include(method=["GET", "HEAD"]).exclude(path_regex=NOT_RUN)
    lifecycle = schema.include(path_regex=r"^/containers/(create|\{id\}(/json)?)$",
                               method_regex="^(POST|GET|DELETE)$")  # fmt: skip
    return reads, lifecycle


def test_no_request_schemathesis_makes_gets_a_500(fuzzed: tuple[Daemon, str, str]) -> None:
    from schemathesis import GenerationMode

    daemon, base_url, cid = fuzzed
    log_start = daemon.log.stat().st_size
    reads, lifecycle = _schema()
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    known: list[str] = []
    sent = 0
    real: dict[str, Callable[[Any], dict[str, str]]] = {
        "id": lambda op: {"id": cid}, "name": lambda op: {"name": "busybox"},
    }  # fmt: skip
    for op in _operations(reads) + [op for op in _operations(lifecycle) if op.method.upper() != "GET"]:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += _run(op, base_url, failures, statuses, known, mode)
            params = {p.name for p in op.path_parameters}
            if params and params <= set(real) and op.method.upper() != "DELETE":
                fixed = {k: v for name in params for k, v in real[name](op).items()}
                sent += _run(op, base_url, failures, statuses, known, mode, path_parameters=fixed)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures[:60])
    assert sent > 600  # the run really happened, and reached real routes and their checks:
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) > 40, statuses
    assert sum(n for status, n in statuses.items() if 400 <= status < 500 and status != 404) > 80, statuses
    new_log = daemon.log.read_bytes()[log_start:].decode(errors="replace")
    assert new_log.count("Traceback") == len(known), new_log[-4000:]  # the known 500s' and no other
    # And the daemon serves as before (a made-up id like "0" may have removed the target: a prefix).
    assert daemon.out("run", "--rm", "busybox", "echo", "alive") == "alive"
