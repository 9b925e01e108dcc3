"""`docker events` and GET /events against a real daemon: shapes, filters, since/until, and the
history kept in the database across a daemon restart."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.conftest import Daemon


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _get(d: Daemon, path: str, **query: str) -> tuple[int, str, bytes]:
    conn = _UnixHTTPConnection(str(d.socket))
    try:
        conn.request("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))
        response = conn.getresponse()
        return response.status, response.headers.get("Content-Type", ""), response.read()
    finally:
        conn.close()


def _events(d: Daemon, since: float, *filters: str, until: float | None = None) -> list[dict[str, Any]]:
    """`docker events --since --until --filter ... --format '{{json .}}'`: past events only."""
    args = ["events", "--since", f"{since:.9f}", "--until", f"{until if until is not None else time.time():.9f}"]
    for f in filters:
        args += ["--filter", f]
    out = d.out(*args, "--format", "{{json .}}", timeout=30)
    return [json.loads(line) for line in out.splitlines() if line]


def _actions(events: list[dict[str, Any]]) -> list[str]:
    return [e["Action"] for e in events]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


def test_container_lifecycle_in_dockerds_shape(daemon: Daemon, busybox: str, tag: str) -> None:
    t0 = time.time()
    cid = daemon.out("create", "--name", f"ev-{tag}", "--label", f"evt={tag}", busybox, "sh", "-c", "sleep 30")
    daemon.docker("start", cid)
    daemon.docker("pause", cid)
    daemon.docker("unpause", cid)
    daemon.docker("kill", "-s", "USR1", cid)
    daemon.docker("rename", f"ev-{tag}", f"ev2-{tag}")
    daemon.docker("stop", "-t", "0", cid)
    daemon.docker("rm", cid)
    got = _events(daemon, t0, f"label=evt={tag}")
    # (dockerd also logs kill events for the signals `stop` sends: that is the engine's part.)
    assert [a for a in _actions(got) if a != "kill"] == ["create", "start", "pause", "unpause", "rename", "die", "stop", "destroy"]
    assert _actions(got)[4] == "kill"
    create = got[0]
    assert create["Type"] == "container" and create["scope"] == "local"
    assert create["status"] == "create" and create["id"] == cid and create["from"] == busybox
    assert create["Actor"] == {"ID": cid, "Attributes": {"evt": tag, "image": busybox, "name": f"ev-{tag}"}}
    assert create["time"] == create["timeNano"] // 1_000_000_000
    assert t0 - 1 <= create["time"] <= time.time() + 1
    times = [e["timeNano"] for e in got]
    assert times == sorted(times)
    by_action = {e["Action"]: e["Actor"]["Attributes"] for e in got}
    assert got[4]["Actor"]["Attributes"]["signal"] == "10"
    assert by_action["rename"]["oldName"] == f"/ev-{tag}" and by_action["rename"]["name"] == f"ev2-{tag}"
    assert by_action["die"]["exitCode"] == "137"
    assert by_action["destroy"]["name"] == f"ev2-{tag}"


def test_filters_through_the_cli(daemon: Daemon, busybox: str, tag: str) -> None:
    t0 = time.time()
    daemon.docker("run", "--name", f"one-{tag}", "--label", f"evt={tag}", "--label", "role=a", busybox, "sh", "-c", "exit 3",
                  check=False)  # fmt: skip
    daemon.docker("run", "--name", f"two-{tag}", "--label", f"evt={tag}", busybox, "true")
    daemon.docker("rm", f"one-{tag}", f"two-{tag}")
    mine = f"label=evt={tag}"
    died = _events(daemon, t0, mine, "event=die")
    assert [(e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"]["exitCode"]) for e in died] == [
        (f"one-{tag}", "3"), (f"two-{tag}", "0")
    ]
    assert _actions(_events(daemon, t0, mine, "event=create", "event=destroy")) == ["create", "create", "destroy", "destroy"]
    one = _events(daemon, t0, f"container=one-{tag}")
    assert one and {e["Actor"]["Attributes"]["name"] for e in one} == {f"one-{tag}"}
    assert _events(daemon, t0, mine, f"container={one[0]['id'][:12]}") == one
    assert {e["Actor"]["Attributes"]["name"] for e in _events(daemon, t0, mine, "label=role=a")} == {f"one-{tag}"}
    assert len(_events(daemon, t0, mine, "image=busybox")) == len(_events(daemon, t0, mine))
    assert _events(daemon, t0, mine, "type=image") == []
    assert _events(daemon, t0, mine, "image=nosuch") == []


def test_image_events(daemon: Daemon, busybox: str, tag: str) -> None:
    t0 = time.time()
    daemon.docker("tag", busybox, f"evimg-{tag}:v1")
    daemon.docker("rmi", f"evimg-{tag}:v1")
    got = _events(daemon, t0, "type=image", f"image=evimg-{tag}")
    assert _actions(got) == ["tag", "untag"]
    assert got[0]["Actor"]["Attributes"]["name"] == f"evimg-{tag}:v1"
    assert got[0]["status"] == "tag" and got[0]["id"].startswith("sha256:") and "from" not in got[0]


def test_until_in_the_future_follows_live_then_ends(daemon: Daemon, busybox: str, tag: str) -> None:
    until = time.time() + 4
    proc = subprocess.Popen(
        ["docker", "events", "--until", f"{until:.3f}", "--filter", f"label=evt={tag}", "--format", "{{.Action}}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon.env(),
    )  # fmt: skip
    try:
        time.sleep(1)
        daemon.docker("create", "--name", f"live-{tag}", "--label", f"evt={tag}", busybox, "true")
        daemon.docker("rm", f"live-{tag}")
        out, err = proc.communicate(timeout=20)  # ends by itself at `until`
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().split() == ["create", "destroy"]
    assert time.time() >= until - 0.5


def test_since_in_the_future_streams_live_events(daemon: Daemon, busybox: str, tag: str) -> None:
    # dockerd's behaviour: `since` only bounds the replay; live events still flow.
    conn = _UnixHTTPConnection(str(daemon.socket), timeout=20)
    try:
        query = urllib.parse.urlencode({"since": str(int(time.time()) + 3600), "filters": json.dumps({"label": [f"evt={tag}"]})})
        conn.request("GET", "/v1.50/events?" + query)
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        daemon.docker("create", "--name", f"fut-{tag}", "--label", f"evt={tag}", busybox, "true")
        first = json.loads(response.readline())
        assert first["Action"] == "create" and first["Actor"]["Attributes"]["name"] == f"fut-{tag}"
    finally:
        conn.close()
        daemon.docker("rm", "-f", f"fut-{tag}", check=False)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filters": '{"bogus":{"x":true}}'}, "invalid filter 'bogus'"),
        ({"since": "abc"}, "invalid value for 'since': invalid timestamp \"abc\": invalid seconds \"abc\": invalid syntax"),
        ({"until": "2024-01-01T00:00:00Z"}, "invalid value for 'until': invalid timestamp"),
        ({"since": "20", "until": "10"}, "`since` time (20) cannot be after `until` time (10)"),
        ({"filters": "{"}, "invalid filter"),
    ],
)
def test_bad_requests_are_400(daemon: Daemon, query: dict[str, str], message: str) -> None:
    status, _, body = _get(daemon, "/events", **query)
    assert status == 400
    assert json.loads(body)["message"].startswith(message)


def test_cli_reports_a_bad_filter(daemon: Daemon) -> None:
    result = daemon.docker("events", "--filter", "bogus=1", "--until", "0s", check=False, timeout=20)
    assert result.returncode != 0
    assert b"invalid filter 'bogus'" in result.stderr


def test_until_in_the_past_returns_at_once(daemon: Daemon) -> None:
    t0 = time.monotonic()
    status, _, _ = _get(daemon, "/events", since="0", until=str(int(time.time()) - 1))
    assert status == 200
    assert time.monotonic() - t0 < 5


def test_history_survives_a_daemon_restart(daemon_factory, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory()
    t0 = time.time()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    d.docker("run", "--name", "before", "busybox", "sh", "-c", "exit 5", check=False)
    d.docker("rm", "before")
    before = _events(d, t0)
    assert _actions(_events(d, t0, "type=container")) == ["create", "attach", "start", "die", "destroy"]
    d.stop()
    d.start()
    assert _events(d, t0) == before  # the same events, field for field
    died = _events(d, t0, "event=die")
    assert died[0]["Actor"]["Attributes"]["exitCode"] == "5"
    d.docker("create", "--name", "after", "busybox", "true")
    after = _events(d, t0, "type=container", "event=create")
    assert [e["Actor"]["Attributes"]["name"] for e in after] == ["before", "after"]
    assert _events(d, time.time() - 3600, "container=nosuch") == []
