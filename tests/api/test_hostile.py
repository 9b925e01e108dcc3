"""Hostile and malformed requests against a real daemon, over raw sockets.

Each case asserts the status dockerd (Go's net/http underneath) would give, or at least a
clean 4xx where dockerd's exact answer depends on its Go types, and that the daemon still
answers `/_ping` after it. The big-body cases check that the daemon's RSS stays bounded, and
a client that leaves mid-body leaves no ERROR line in the daemon's log.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Daemon

TIMEOUT = 30


# ---- a raw HTTP/1.1 client ---------------------------------------------------------------


@dataclass
class Reply:
    status: int  # 0: the connection ended with no status line
    head: bytes
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _connect(daemon: Daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(str(daemon.socket))
    return sock


def _read_reply(sock: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            more = sock.recv(65536)
        except ConnectionError:
            more = b""
        if not more:
            return Reply(0, data, {}, b"")
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
        body = rest[:size]
    elif headers.get("transfer-encoding") == "chunked":
        body = _read_chunked(sock, rest)
    else:  # until the close (Go's plain-text refusals)
        while more := _recv_or_empty(sock):
            rest += more
        body = rest
    return Reply(status, head, headers, body)


def _recv_or_empty(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionError:
        return b""


def _read_chunked(sock: socket.socket, rest: bytes) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        line, rest = rest.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body, rest = body + rest[:size], rest[size + 2 :]
        if size == 0:
            return body


def exchange(daemon: Daemon, raw: bytes) -> Reply:
    """Send `raw` on a new connection (in a thread, so a refusal can arrive mid-send) and read the reply."""
    with _connect(daemon) as sock:
        sender = threading.Thread(target=_send_all, args=(sock, raw), daemon=True)
        sender.start()
        reply = _read_reply(sock)
        sender.join(TIMEOUT)
        return reply


def _send_all(sock: socket.socket, raw: bytes) -> None:
    try:
        sock.sendall(raw)
    except OSError:
        pass  # the daemon refused and closed before the end: expected for some cases


def request(method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: api.moby.localhost", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def post_json(daemon: Daemon, target: str, doc: Any) -> Reply:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return exchange(daemon, request("POST", target, body, {"Content-Type": "application/json"}))


def assert_alive(daemon: Daemon) -> None:
    reply = exchange(daemon, request("GET", "/_ping"))
    assert (reply.status, reply.body) == (200, b"OK"), "the daemon no longer answers /_ping"
    assert daemon.proc is not None and daemon.proc.poll() is None


def rss_kib(daemon: Daemon) -> int:
    assert daemon.proc is not None
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def log_mark(daemon: Daemon) -> Iterator[int]:
    """Where the daemon's log stood before the test: no ERROR may follow it."""
    start = daemon.log.stat().st_size
    yield start
    new = daemon.log.read_bytes()[start:].decode(errors="replace")
    assert " ERROR " not in new and "Traceback" not in new, new[-4000:]


# ---- malformed HTTP: Go's plain-text refusals -------------------------------------------

_GO_HEADERS = b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

HTTP_CASES = {
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "space in the path": (b"GET /containers/a b/json HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "header without colon": (b"GET /_ping HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
    "two different Content-Lengths": (
        b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}", 400),
    "negative Content-Length": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    "Content-Length not a number": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400),
    "no Host": (b"GET /_ping HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "HTTP/0.9": (b"GET /_ping\r\n\r\n", 400),
    "HTTP/2.0": (b"GET /_ping HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "NUL in the target": (b"GET /_pi\x00ng HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "raw UTF-8 in the target": ("GET /containers/é/json HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "target without a slash": (b"GET _ping HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad percent escape": (b"GET /containers/%zz/json HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "gzip transfer coding": (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "2 MB of headers": (b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 << 20) + b"\r\n\r\n", 431),
    "100k headers": (b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + b"X-H: v\r\n" * 200_000 + b"\r\n", 431),
    "a 2 MB target": (b"GET /containers/" + b"a" * (2 << 20) + b"/json HTTP/1.1\r\nHost: x\r\n\r\n", 431),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HTTP_CASES))
def test_malformed_http_gets_gos_refusal(daemon: Daemon, log_mark: int, name: str) -> None:
    raw, status = HTTP_CASES[name]
    reply = exchange(daemon, raw)
    assert reply.status == status, reply.head
    assert reply.head.startswith(b"HTTP/1.1 %d " % status)
    assert (reply.head + b"\r\n\r\n").endswith(_GO_HEADERS)
    assert reply.body.startswith(b"%d " % status) or reply.body == b"Unsupported transfer encoding"
    assert_alive(daemon)


def test_bad_chunk_size_is_400(daemon: Daemon, log_mark: int) -> None:
    for bad in (b"zz\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2\r\n{}\r\nq\r\n"):
        reply = exchange(daemon, request("POST", "/containers/create", bad, {"Transfer-Encoding": "chunked"}))
        assert (reply.status, reply.json()) == (400, {"message": "malformed chunked encoding"}), bad
        assert reply.headers["connection"] == "close"
        assert_alive(daemon)


def test_a_bad_chunk_mid_upload_is_not_a_crash(daemon: Daemon, log_mark: int) -> None:
    body = b"%x\r\n%s\r\n" % (1 << 16, b"\0" * (1 << 16)) + b"nothex\r\n"
    for target in ("/images/create?fromSrc=-&repo=hostile", "/images/load?quiet=1"):
        reply = exchange(daemon, request("POST", target, body, {"Transfer-Encoding": "chunked"}))
        assert reply.status in (200, 400), reply.head  # load streams: its error is in the stream
        if reply.status == 200:
            assert b"malformed chunked encoding" in reply.body
        assert_alive(daemon)
    assert not [p for p in (daemon.data_root / "tmp").glob("*") if p.name.startswith("upload-")]


# ---- JSON that Go's decoder refuses --------------------------------------------------------

JSON_CASES = {
    "NaN": (b'{"Image":"busybox","HostConfig":{"Memory":NaN}}',
            "invalid JSON: invalid character 'N' looking for beginning of value"),
    "Infinity": (b'{"Image":"busybox","StopTimeout":Infinity}',
                 "invalid JSON: invalid character 'I' looking for beginning of value"),
    "-Infinity": (b'{"Image":"busybox","Labels":{"a":-Infinity}}', "invalid JSON: invalid character 'I' in numeric literal"),
    "1e400": (b'{"Image":"busybox","HostConfig":{"CpuShares":1e400}}',
              "invalid JSON: json: cannot unmarshal number 1e400 into Go value of type float64"),
    "1e400 in an unknown field": (b'{"Image":"busybox","Bogus":[1e400]}',
                                  "invalid JSON: json: cannot unmarshal number 1e400 into Go value of type float64"),
    "100k deep": (b'{"Image":"busybox","Labels":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                  "invalid JSON: invalid character '[' exceeded max depth"),
    "100k deep objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "invalid JSON: invalid character '{' exceeded max depth"),
    "a 5000-digit integer": (b'{"Image":"busybox","HostConfig":{"Memory":' + b"9" * 5000 + b"}}",
                             ("invalid JSON: json: cannot unmarshal number 99999999999999999999...9999999999 "
                              "into Go value of type float64")),
    "two documents": (b'{"Image":"busybox"}{"Image":"busybox"}', "unexpected content after JSON"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(JSON_CASES))
@pytest.mark.parametrize(
    "target", ["/containers/create", "/v1.41/containers/none/exec", "/containers/none/update", "/exec/none/start"]
)
def test_json_go_refuses_is_400(daemon: Daemon, log_mark: int, name: str, target: str) -> None:
    body, message = JSON_CASES[name]
    reply = post_json(daemon, target, body)
    assert (reply.status, reply.json()) == (400, {"message": message})
    assert_alive(daemon)


def test_lone_surrogates_are_mended_as_go_does(daemon: Daemon, busybox: str, log_mark: int) -> None:
    reply = post_json(daemon, "/containers/create", b'{"Image":"busybox","Env":["A=\\ud800"],"Labels":{"\\udfff":"x"}}')
    assert reply.status == 201, reply.body
    cid = reply.json()["Id"]
    try:
        doc = exchange(daemon, request("GET", f"/containers/{cid}/json")).json()
        assert "A=\ufffd" in doc["Config"]["Env"]
        assert doc["Config"]["Labels"] == {"\ufffd": "x"}
    finally:
        exchange(daemon, request("DELETE", f"/containers/{cid}?force=1"))


# ---- wrong types anywhere in a body: 4xx, never a 500 or a cut ------------------------------

WRONG_VALUES: list[Any] = [
    "abc", "", 1e300, -1, 0.5, 2**70, -(2**70), True, None, [], {}, [1], ["a", 2], {"a": 1}, {"a": None}, [None],
    [{}], [[]], {"": ""}, "\u0000", "x" * 10_000,
]  # fmt: skip

CREATE_FIELDS = [
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
    "HostConfig", "NetworkingConfig",
    "Healthcheck.Test", "Healthcheck.Interval", "Healthcheck.Timeout", "Healthcheck.Retries",
    "Healthcheck.StartPeriod", "Healthcheck.StartInterval",
    "NetworkingConfig.EndpointsConfig", "NetworkingConfig.EndpointsConfig.bridge",
    "NetworkingConfig.EndpointsConfig.bridge.Aliases", "NetworkingConfig.EndpointsConfig.bridge.IPAMConfig",
]  # fmt: skip

HOST_FIELDS = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "Mounts", "ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode",
    "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj",
    "PidMode", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode",
    "UsernsMode", "ShmSize", "Sysctls", "Runtime", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent",
    "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
    "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps",
    "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths", "Init",
    "LogConfig.Type", "LogConfig.Config", "LogConfig.Config.max-size", "RestartPolicy.Name",
    "RestartPolicy.MaximumRetryCount", "PortBindings.80/tcp", "PortBindings.80/tcp.0",
    "PortBindings.80/tcp.0.HostIp", "PortBindings.80/tcp.0.HostPort", "Mounts.0", "Mounts.0.Type",
    "Mounts.0.Target", "Mounts.0.Source", "Mounts.0.ReadOnly", "Mounts.0.VolumeOptions",
    "Mounts.0.VolumeOptions.Labels", "Mounts.0.VolumeOptions.NoCopy", "Mounts.0.TmpfsOptions",
    "Mounts.0.TmpfsOptions.SizeBytes", "Mounts.0.TmpfsOptions.Mode", "Ulimits.0", "Ulimits.0.Name",
    "Ulimits.0.Soft", "Ulimits.0.Hard", "Devices.0", "Devices.0.PathOnHost", "Devices.0.PathInContainer",
    "Devices.0.CgroupPermissions", "DeviceRequests.0", "DeviceRequests.0.Count", "DeviceRequests.0.Capabilities",
    "BlkioWeightDevice.0", "BlkioWeightDevice.0.Weight", "BlkioDeviceReadBps.0.Rate", "Tmpfs./t",
]  # fmt: skip


def _base_create() -> dict[str, Any]:
    """A valid body with every nested structure the wrong values go into; nothing here touches
    the host (no bind of a host path, no device, nothing privileged), and it is never started."""
    return {
        "Image": "busybox", "Cmd": ["true"], "Labels": {"hostile": "1"},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": 1000000000, "Retries": 1,
                        "StartPeriod": 0, "StartInterval": 0},
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["a"], "IPAMConfig": {}}}},
        "HostConfig": {
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0"}]},
            "Mounts": [{"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}}],
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}],
            "Tmpfs": {"/t": "size=1m"},
        },
    }  # fmt: skip


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _wrong_type_cases() -> Iterator[tuple[str, Any]]:
    for field in CREATE_FIELDS:
        for value in WRONG_VALUES:
            yield field, value
    for field in HOST_FIELDS:
        for value in WRONG_VALUES:
            yield f"HostConfig.{field}", value


def _check(reply: Reply, what: str, failures: list[str], ok: tuple[int, ...] = (200, 201, 204)) -> None:
    if reply.status == 0:
        failures.append(f"{what}: the connection ended with no status")
    elif reply.status >= 500 or (reply.status < 400 and reply.status not in ok):
        failures.append(f"{what}: {reply.status} {reply.body[:200]!r}")


def test_wrong_types_in_a_create_body_are_4xx(daemon: Daemon, busybox: str, log_mark: int) -> None:
    failures: list[str] = []
    created: list[str] = []
    count = 0
    try:
        for path, value in _wrong_type_cases():
            doc = _base_create()
            _set(doc, path, value)
            reply = post_json(daemon, "/containers/create", doc)
            count += 1
            _check(reply, f"create {path}={json.dumps(value)[:40]}", failures)
            if reply.status == 201:
                created.append(reply.json()["Id"])
        assert_alive(daemon)
    finally:
        for cid in created:
            exchange(daemon, request("DELETE", f"/containers/{cid}?force=1&v=1"))
    assert count > 2500
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


@pytest.fixture
def created(daemon: Daemon, busybox: str) -> Iterator[str]:
    reply = post_json(daemon, "/containers/create?name=hostile-target", {"Image": busybox, "Cmd": ["true"]})
    assert reply.status == 201, reply.body
    cid: str = reply.json()["Id"]
    yield cid
    exchange(daemon, request("DELETE", f"/containers/{cid}?force=1"))


EXEC_FIELDS = ["AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "DetachKeys", "Tty", "Env", "Cmd",
               "Privileged", "User", "WorkingDir"]  # fmt: skip
START_FIELDS = ["Detach", "Tty", "ConsoleSize"]
UPDATE_FIELDS = ["CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
                 "MemoryReservation", "MemorySwap", "PidsLimit", "BlkioWeight", "RestartPolicy",
                 "RestartPolicy.Name", "RestartPolicy.MaximumRetryCount", "Ulimits", "KernelMemory"]  # fmt: skip


def _matrix(daemon: Daemon, target: str, fields: list[str], base: dict[str, Any], values: list[Any]) -> list[str]:
    failures: list[str] = []
    for field in fields:
        for value in values:
            doc = json.loads(json.dumps(base))
            _set(doc, field, value)
            _check(post_json(daemon, target, doc), f"{target} {field}={json.dumps(value)[:40]}", failures)
    return failures


def test_wrong_types_in_exec_bodies_are_4xx(daemon: Daemon, created: str, log_mark: int) -> None:
    failures = _matrix(daemon, f"/containers/{created}/exec", EXEC_FIELDS, {"Cmd": ["true"]}, WRONG_VALUES)
    failures += _matrix(daemon, "/exec/none/start", START_FIELDS, {"Detach": True}, WRONG_VALUES)
    assert_alive(daemon)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


def test_wrong_types_in_update_bodies_are_4xx(daemon: Daemon, created: str, log_mark: int) -> None:
    failures = _matrix(daemon, f"/containers/{created}/update", UPDATE_FIELDS, {"RestartPolicy": {"Name": "no"}},
                       WRONG_VALUES)  # fmt: skip
    assert_alive(daemon)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


COMMIT_FIELDS = ["Cmd", "Env", "Labels", "Entrypoint", "ExposedPorts", "Volumes", "WorkingDir", "User",
                 "Healthcheck", "Healthcheck.Test", "Healthcheck.Interval", "StopSignal", "OnBuild", "Shell"]  # fmt: skip


def test_wrong_types_in_commit_bodies_are_4xx(daemon: Daemon, created: str) -> None:
    failures = _matrix(daemon, f"/commit?container={created}&repo=hostile-commit", COMMIT_FIELDS, {}, WRONG_VALUES)
    exchange(daemon, request("DELETE", "/images/hostile-commit?force=1"))
    assert_alive(daemon)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("kind", ["create", "exec", "update", "exec-start"])
def test_whole_documents_of_the_wrong_kind_are_4xx(daemon: Daemon, created: str, log_mark: int, kind: str) -> None:
    target = {"create": "/containers/create", "exec": f"/containers/{created}/exec",
              "update": f"/containers/{created}/update", "exec-start": "/exec/none/start"}[kind]  # fmt: skip
    failures: list[str] = []
    for value in WRONG_VALUES:
        _check(post_json(daemon, target, value), f"{target} <- {json.dumps(value)[:40]}", failures, ok=(200, 201))
    assert_alive(daemon)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


# ---- hostile query strings and paths --------------------------------------------------------

BAD_ARGS = ["1e400", "99999999999999999999", "-99999999999999999999", "-1", "abc", "", "%00", "NaN", "1.5",
            "%E2%80%8B", "9" * 5000, "%5B" * 3000, "0x10", "+1", "%20"]  # fmt: skip


def test_hostile_query_values_are_4xx(daemon: Daemon, created: str, log_mark: int) -> None:
    failures: list[str] = []
    targets = [
        ("POST", "/containers/{id}/stop?t={v}"), ("POST", "/containers/{id}/restart?t={v}&signal={v}"),
        ("POST", "/containers/{id}/kill?signal={v}"), ("GET", "/containers/{id}/logs?stdout=1&tail={v}&since={v}"),
        ("GET", "/containers/{id}/logs?stdout={v}&until={v}"), ("GET", "/containers/json?limit={v}&all={v}"),
        ("GET", "/containers/json?filters={v}"), ("GET", "/images/json?filters={v}&all={v}"),
        ("POST", "/containers/prune?filters={v}"), ("POST", "/images/prune?filters={v}"),
        ("POST", "/containers/{id}/wait?condition={v}"), ("POST", "/containers/{id}/resize?h={v}&w={v}"),
        ("GET", "/containers/{id}/top?ps_args={v}"), ("GET", "/containers/{id}/json?size={v}"),
        ("GET", "/containers/{id}/archive?path={v}"), ("HEAD", "/containers/{id}/archive?path={v}"),
        ("GET", "/containers/{id}/stats?stream=0&one-shot={v}"), ("GET", "/events?since=1&until=1&filters={v}"),
        ("DELETE", "/containers/nonexistent{v}?force={v}&v={v}"), ("POST", "/containers/{id}/rename?name={v}"),
        ("GET", "/images/{v}/json"), ("GET", "/images/{v}/history"), ("DELETE", "/images/{v}?force={v}"),
        ("POST", "/images/{v}/tag?repo={v}&tag={v}"), ("GET", "/images/get?names={v}"),
        ("GET", "/containers/{v}/json"), ("GET", "/exec/{v}/json"), ("POST", "/exec/{v}/resize?h={v}&w={v}"),
        ("GET", "/system/df?type={v}"), ("GET", "/info?{v}={v}"), ("GET", "/v{v}/version"),
    ]  # fmt: skip
    for method, pattern in targets:
        for value in BAD_ARGS:
            if "signal" in pattern and len(value) > 4300:
                continue  # a known 500: test_a_signal_of_5000_digits_is_400
            target = pattern.replace("{id}", created).replace("{v}", value)
            body = b"" if method in ("POST", "PUT") else None
            reply = exchange(daemon, request(method, target, body))
            _check(reply, f"{method} {target[:80]}", failures, ok=(200, 201, 204, 304))
    post_json(daemon, f"/containers/{created}/rename?name=hostile-target", b"")
    assert_alive(daemon)
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


def test_a_signal_of_5000_digits_is_400(daemon: Daemon, created: str) -> None:
    digits = "9" * 5000
    assert exchange(daemon, request("POST", f"/containers/{created}/kill?signal={digits}", b"")).status == 400
    assert post_json(daemon, "/containers/create", {"Image": "busybox", "StopSignal": digits}).status == 400


def test_an_archive_path_with_a_nul_is_400(daemon: Daemon, created: str) -> None:
    for method in ("GET", "HEAD"):
        assert exchange(daemon, request(method, f"/containers/{created}/archive?path=/etc%00x")).status == 400


def test_deeply_nested_filters_are_400(daemon: Daemon, log_mark: int) -> None:
    deep = "%7B%22label%22%3A" + "%5B" * 50_000 + "%5D" * 50_000 + "%7D"
    for target in ("/containers/json", "/images/json", "/events", "/containers/prune", "/images/prune"):
        method = "POST" if target.endswith("prune") else "GET"
        reply = exchange(daemon, request(method, f"{target}?filters={deep[: 900_000]}", b"" if method == "POST" else None))
        assert (reply.status, reply.json()) == (400, {"message": "invalid filter"}), target
        assert_alive(daemon)


# ---- bodies are bounded and streamed -------------------------------------------------------


def _settle_rss(daemon: Daemon) -> int:
    time.sleep(0.3)
    return rss_kib(daemon)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_50mb_json_body_is_413_and_rss_stays_bounded(daemon: Daemon, log_mark: int, framing: str) -> None:
    for _ in range(3):  # warm: one create, one refusal
        post_json(daemon, "/containers/create", b'{"Image":"nonexistent"}')
    before = _settle_rss(daemon)
    filler = b" " * (1 << 20)
    for _ in range(3):
        if framing == "chunked":
            piece = b"%x\r\n%s\r\n" % (len(filler), filler)
            raw = request("POST", "/containers/create", b'1\r\n{\r\n' + piece * 50 + b"1\r\n}\r\n0\r\n\r\n",
                          {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})  # fmt: skip
        else:
            raw = request("POST", "/containers/create", b"{" + filler * 50 + b"}", {"Content-Type": "application/json"})
        reply = exchange(daemon, raw)
        assert reply.status == 413
        assert reply.json() == {"message": "request body too large: a JSON body may have at most 10 MB"}
        assert reply.headers["connection"] == "close"
        assert_alive(daemon)
    grown = _settle_rss(daemon) - before
    assert grown < 30 * 1024, f"RSS grew by {grown} KiB for three 50 MB bodies"


def test_a_9mb_json_body_is_read_and_rss_comes_back(daemon: Daemon, log_mark: int) -> None:
    body = b'{"Image":"nonexistent","Labels":{"a":"' + b"x" * (9 << 20) + b'"}}'
    post_json(daemon, "/containers/create", body)
    before = _settle_rss(daemon)
    for _ in range(3):
        reply = post_json(daemon, "/containers/create", body)
        assert (reply.status, reply.json()) == (404, {"message": "No such image: nonexistent:latest"})
    grown = _settle_rss(daemon) - before
    assert grown < 30 * 1024, f"RSS grew by {grown} KiB after three 9 MB bodies"


def test_a_50mb_upload_is_spooled_not_held(daemon: Daemon, log_mark: int) -> None:
    exchange(daemon, request("POST", "/images/create?fromSrc=-&repo=hostile-import", b"not a tar"))
    before = _settle_rss(daemon)
    garbage = os.urandom(1 << 20) * 50
    for target in ("/images/create?fromSrc=-&repo=hostile-import", "/images/load?quiet=1"):
        reply = exchange(daemon, request("POST", target, garbage, {"Content-Type": "application/x-tar"}))
        assert reply.status in (200, 400), (target, reply.head, reply.body[:300])  # load: error in the stream
        assert_alive(daemon)
    grown = _settle_rss(daemon) - before
    assert grown < 30 * 1024, f"RSS grew by {grown} KiB for two 50 MB uploads"


def test_a_huge_body_to_a_route_that_reads_none_is_not_read(daemon: Daemon, log_mark: int) -> None:
    # 1 GB announced, 1 MB sent: the answer comes without the daemon waiting for the rest.
    started = time.monotonic()
    raw = request("POST", "/containers/nonexistent/start", headers={"Content-Length": str(1 << 30)})
    reply = exchange(daemon, raw + b"x" * (1 << 20))
    assert reply.status == 404
    assert reply.headers["connection"] == "close"
    assert time.monotonic() - started < 10
    assert_alive(daemon)


@pytest.mark.parametrize(
    "target",
    ["/containers/create", "/images/create?fromSrc=-&repo=hostile-gone", "/images/load", "/containers/{id}/archive?path=/",
     "/containers/{id}/exec"],
)  # fmt: skip
def test_a_client_leaving_mid_body_is_no_error(daemon: Daemon, created: str, log_mark: int, target: str) -> None:
    target = target.replace("{id}", created)
    method = "PUT" if "archive" in target else "POST"
    for framing in ({"Content-Length": str(10 << 20)}, {"Transfer-Encoding": "chunked"}):
        with _connect(daemon) as sock:
            sock.sendall(request(method, target, headers=framing))
            sock.sendall((b"%x\r\n" % 4096 if "Transfer-Encoding" in framing else b"") + b"{" * 4096)
            time.sleep(0.2)  # the route is reading the body now
        time.sleep(0.2)
        assert_alive(daemon)
    leftovers = [p.name for p in (daemon.data_root / "tmp").glob("*") if "upload" in p.name or "cp-" in p.name]
    assert leftovers == []


# ---- hostile OCI image layouts for docker load ------------------------------------------


def _tar(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    """(name, data, symlink target): a file when data is given, else a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, target in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _oci_layout(layer: bytes, *, layer_name: str | None = None, layer_bytes: bytes | None = None,
                layer_digest: str | None = None, extra: list[tuple[str, bytes | None, str]] | None = None) -> bytes:  # fmt: skip
    """An OCI layout of one image with one gzip layer; the keywords make it hostile."""
    blob = gzip.compress(layer, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()  # fmt: skip
    digest = layer_digest or _digest(blob)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": len(blob)}],
    }).encode()  # fmt: skip
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/hostile-oci:1"}}]}).encode()  # fmt: skip
    entries: list[tuple[str, bytes | None, str]] = [
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', ""),
        ("index.json", index, ""),
        (f"blobs/sha256/{_digest(config)[7:]}", config, ""),
        (f"blobs/sha256/{_digest(manifest)[7:]}", manifest, ""),
    ]
    if layer_name != "":
        entries.append((layer_name or f"blobs/sha256/{digest[7:]}", layer_bytes if layer_bytes is not None else blob, ""))
    return _tar(entries + (extra or []))


def _store(d: Daemon) -> set[str]:
    found = set()
    for sub in ("overlay", "content"):
        root = d.data_root / sub
        found |= {str(p.relative_to(d.data_root)) for p in root.rglob("*")} if root.exists() else set()
    return found


_LAYER = _tar([("etc/hostile-oci", b"harmless\n", "")])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("digest-escapes", "bad digest"),
        ("symlink-out", "not found in the archive"),
        ("digest-mismatch", "does not match its digest"),
        ("missing-blob", "not found in the archive"),
    ],
)
def test_hostile_oci_layouts_are_refused_and_leave_nothing(
    daemon_factory: Any, case: str, message: str
) -> None:
    d = daemon_factory()
    before = _store(d)
    if case == "digest-escapes":
        archive = _oci_layout(_LAYER, layer_digest="sha256:../../../../etc/passwd")
    elif case == "symlink-out":  # the blob is a link to a host file: followed inside the archive only
        archive = _oci_layout(_LAYER, layer_name="", extra=[(f"blobs/sha256/{_digest(gzip.compress(_LAYER, mtime=0))[7:]}", None, "/etc/passwd")])
    elif case == "digest-mismatch":  # other bytes under the layer's name; they even decompress to the diff id's
        other = gzip.compress(_LAYER, mtime=1)
        archive = _oci_layout(_LAYER, layer_bytes=other)
    else:
        archive = _oci_layout(_LAYER, layer_name="")
    result = d.docker("load", input=archive, check=False)
    assert result.returncode != 0
    assert message in result.stderr.decode(), result.stderr
    assert d.out("images", "-aq") == ""
    assert _store(d) == before  # no layer directory, no blob
    assert not list((d.data_root / "tmp").glob("upload-*"))
