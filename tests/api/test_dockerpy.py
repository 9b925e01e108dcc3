"""docker-py 7 drives dockyard: system calls, containers, images, attach, errors, raw HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from tests.conftest import Daemon


def _uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def client(daemon: Daemon) -> Iterator[docker.DockerClient]:
    c = daemon.client()
    try:
        yield c
    finally:
        c.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self._path)


def _request(daemon: Daemon, method: str, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = _UnixHTTPConnection(str(daemon.socket))
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------------------------------------
# system


def test_version_ping_info(client: docker.DockerClient) -> None:
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.50"
    assert version["MinAPIVersion"] == "1.24"
    assert version["Os"] == "linux"
    assert version["Version"]
    assert client.api.api_version == "1.50"  # docker-py took the server's version as is
    info = client.info()
    assert info["OSType"] == "linux"
    assert isinstance(info["Containers"], int) and isinstance(info["Images"], int)
    assert (
        info["Containers"]
        == info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"]
    )
    assert info["ID"]


# ---------------------------------------------------------------------------------------------
# containers


def test_run_returns_output_and_removes(client: docker.DockerClient, busybox: str) -> None:
    name = f"dypy-run-{_uid()}"
    out = client.containers.run(busybox, "echo hi", name=name, remove=True)
    assert out == b"hi\n"
    assert client.containers.list(all=True, filters={"name": name}) == []
    out = client.containers.run(
        busybox, ["sh", "-c", "echo out; echo err >&2"], stdout=True, stderr=False, remove=True
    )
    assert out == b"out\n"


def test_run_with_nonzero_exit_raises_container_error(
    client: docker.DockerClient, busybox: str
) -> None:
    name = f"dypy-fail-{_uid()}"
    with pytest.raises(docker.errors.ContainerError) as caught:
        client.containers.run(
            busybox, ["sh", "-c", "echo oops >&2; exit 3"], name=name, remove=True
        )
    assert caught.value.exit_status == 3
    assert caught.value.stderr == b"oops\n"
    assert client.containers.list(all=True, filters={"name": name}) == []


def test_detached_container_lifecycle(client: docker.DockerClient, busybox: str) -> None:
    name = f"dypy-life-{_uid()}"
    container = client.containers.run(
        busybox, ["sh", "-c", "echo started; echo to-err >&2; sleep 60"], name=name, detach=True,
        environment={"GREETING": "hello"}, working_dir="/tmp",
    )  # fmt: skip
    try:
        assert len(container.id) == 64
        container.reload()
        assert container.status == "running"
        assert container.name == name
        assert "GREETING=hello" in container.attrs["Config"]["Env"]
        assert container.attrs["Config"]["WorkingDir"] == "/tmp"
        assert container.attrs["State"]["Pid"] > 0
        assert _wait_for(lambda: b"to-err" in container.logs())
        assert container.logs(stdout=True, stderr=False) == b"started\n"
        assert container.logs(stdout=False, stderr=True) == b"to-err\n"
        container.stop(timeout=1)  # sh as pid 1 ignores SIGTERM: killed after 1 s
        assert container.wait()["StatusCode"] == 137
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 137
        container.start()
        container.reload()
        assert container.status == "running"
        container.kill()
        assert container.wait()["StatusCode"] == 137
        container.reload()
        assert container.status == "exited"
    finally:
        client.api.remove_container(name, force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_wait_returns_the_exit_code(client: docker.DockerClient, busybox: str) -> None:
    container = client.containers.run(busybox, ["sh", "-c", "exit 7"], detach=True)
    try:
        result = container.wait(timeout=30)
        assert result["StatusCode"] == 7
        assert not result.get("Error")
    finally:
        container.remove(force=True)


def test_remove_force_of_a_running_container(client: docker.DockerClient, busybox: str) -> None:
    container = client.containers.run(busybox, "sleep 60", detach=True)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            container.remove()
        assert caught.value.status_code == 409
        assert "container is running" in str(caught.value.explanation)
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


def test_list_with_list_form_filters_and_get_by_short_id(
    client: docker.DockerClient, busybox: str
) -> None:
    label = f"dypy-{_uid()}"
    running = client.containers.run(busybox, "sleep 60", detach=True, labels={"suite": label})
    stopped = client.containers.create(busybox, "true", labels={"suite": label, "kind": "stopped"})
    other = client.containers.create(busybox, "true", labels={"suite": "someone-else"})
    try:
        # docker-py turns these into the list form: {"label": ["suite=..."]}
        ids = {c.id for c in client.containers.list(all=True, filters={"label": f"suite={label}"})}
        assert ids == {running.id, stopped.id}
        ids = {c.id for c in client.containers.list(filters={"label": f"suite={label}"})}
        assert ids == {running.id}
        ids = {
            c.id
            for c in client.containers.list(
                all=True, filters={"label": [f"suite={label}", "kind=stopped"]}
            )
        }
        assert ids == {stopped.id}
        ids = {
            c.id
            for c in client.containers.list(
                all=True, filters={"label": f"suite={label}", "status": "created"}
            )
        }
        assert ids == {stopped.id}
        ids = {c.id for c in client.containers.list(all=True, filters={"id": running.id[:12]})}
        assert ids == {running.id}
        assert client.containers.list(all=True, filters={"label": "suite=nobody-has-this"}) == []
        found = client.containers.get(running.short_id)
        assert found.id == running.id
        assert found.labels == {"suite": label}
        assert client.containers.get(stopped.name).id == stopped.id
    finally:
        for c in (running, stopped, other):
            c.remove(force=True)


def test_logs_options(client: docker.DockerClient, busybox: str) -> None:
    container = client.containers.run(
        busybox, ["sh", "-c", "echo a; echo b; echo c >&2"], detach=True
    )
    try:
        assert container.wait(timeout=30)["StatusCode"] == 0
        # both streams, by default
        assert sorted(container.logs().splitlines()) == [b"a", b"b", b"c"]
        assert container.logs(stderr=False) == b"a\nb\n"
        # As dockerd: tail takes the last records first, then the stream filter applies
        # (the last record is c, on stderr).
        assert container.logs(tail=1, stderr=False) == b""
        assert container.logs(tail=2, stderr=False) == b"b\n"
        stamped = container.logs(timestamps=True, stderr=False).splitlines()
        assert [line.split(b" ", 1)[1] for line in stamped] == [b"a", b"b"]
        assert all(line.split(b" ", 1)[0].endswith(b"Z") for line in stamped)
        assert b"".join(container.logs(stream=True, follow=True, stderr=False)) == b"a\nb\n"
        assert container.logs(since=int(time.time()) + 3600) == b""
    finally:
        container.remove(force=True)


def test_rename_auto_remove_and_kill_signal(client: docker.DockerClient, busybox: str) -> None:
    name, renamed = f"dypy-name-{_uid()}", f"dypy-renamed-{_uid()}"
    container = client.containers.run(
        busybox, ["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; echo ready; while true; do sleep 0.1; done"],
        detach=True, name=name,
    )  # fmt: skip
    try:
        container.rename(renamed)
        assert client.containers.get(renamed).id == container.id
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
        assert _wait_for(lambda: b"ready" in container.logs())
        with pytest.raises(docker.errors.APIError) as caught:
            container.kill(signal="NOPE")
        assert caught.value.status_code == 400
        container.kill(signal="SIGUSR1")
        assert container.wait(timeout=30)["StatusCode"] == 9
        assert container.logs() == b"ready\ngot-usr1\n"
    finally:
        container.remove(force=True)
    gone = client.containers.run(busybox, "true", detach=True, auto_remove=True)
    assert client.api.wait(gone.id, condition="removed", timeout=30)["StatusCode"] == 0
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(gone.id)


def test_events_between_since_and_until(client: docker.DockerClient, busybox: str) -> None:
    since = int(time.time()) - 1
    container = client.containers.run(busybox, "true", detach=True, labels={"dypy-events": _uid()})
    try:
        container.wait(timeout=30)
    finally:
        container.remove(force=True)
    events = client.events(
        since=since, until=int(time.time()) + 1, decode=True, filters={"container": container.id}
    )
    actions = [(e["Type"], e["Action"]) for e in events]  # the stream ends at `until`
    assert actions[:3] == [("container", "create"), ("container", "start"), ("container", "die")]
    assert actions[-1] == ("container", "destroy")


def _read_frames(raw: socket.socket, want: int) -> bytes:
    """Read `want` payload bytes of stdout frames ([1,0,0,0,len_be32] + payload) from the socket."""

    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            # the socket has a timeout: a missing reply fails, never hangs
            chunk = raw.recv(n - len(buf))
            if not chunk:
                raise AssertionError(f"attach stream ended after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    got = b""
    while len(got) < want:
        header = exactly(8)
        assert header[0] == 1 and header[1:4] == b"\0\0\0", header  # stdout, non-TTY framing
        size = int.from_bytes(header[4:], "big")
        assert size > 0
        got += exactly(size)
    return got


def _attach(client: docker.DockerClient, container_id: str) -> tuple[object, socket.socket]:
    sock = client.api.attach_socket(container_id, params={"stdin": 1, "stream": 1, "stdout": 1})
    # docker-py hands back the connection's SocketIO; its socket is what we write to
    raw = sock._sock
    raw.settimeout(15)
    return sock, raw


def test_attach_socket_round_trip(client: docker.DockerClient, busybox: str) -> None:
    container = client.containers.create(busybox, "cat", stdin_open=True)
    try:
        sock, raw = _attach(client, container.id)
        try:
            container.start()
            raw.sendall(b"hello attach\n")
            assert _read_frames(raw, 13) == b"hello attach\n"
            blob = bytes(range(256)) * 256 + b"\n"
            raw.sendall(blob)
            assert _read_frames(raw, len(blob)) == blob
        finally:
            sock.close()  # type: ignore[attr-defined]
            raw.close()
    finally:
        container.remove(force=True)


def test_detaching_leaves_stdin_open_without_stdin_once(
    client: docker.DockerClient, busybox: str
) -> None:
    # docker-py sets StdinOnce whenever stdin_open is set, so create through the raw API.
    created = client.api._result(
        client.api._post_json(
            client.api._url("/containers/create"),
            data={"Image": busybox, "Cmd": ["cat"], "OpenStdin": True, "StdinOnce": False},
        ),
        True,
    )
    container = client.containers.get(created["Id"])
    try:
        container.start()
        first_sock, first = _attach(client, container.id)
        second_sock, second = _attach(client, container.id)
        try:
            first.sendall(b"one\n")
            assert _read_frames(first, 4) == b"one\n"
            assert _read_frames(second, 4) == b"one\n"  # every attached client gets the output
            first_sock.close()  # type: ignore[attr-defined]
            first.close()
            # Give a daemon that (wrongly) closes cat's stdin on detach the time to do so.
            _wait_for(
                lambda: client.api.inspect_container(container.id)["State"]["Status"] != "running",
                timeout=1.0,
            )
            # dockerd: without StdinOnce, detaching never closes the container's stdin; cat lives on
            try:
                second.sendall(b"two\n")
            except BrokenPipeError:
                raise AssertionError(
                    "the daemon ended the other attach session: cat's stdin was closed"
                ) from None
            assert _read_frames(second, 4) == b"two\n"
            container.reload()
            assert container.status == "running"
        finally:
            second_sock.close()  # type: ignore[attr-defined]
            second.close()
    finally:
        container.remove(force=True)


def _raw_attach(daemon: Daemon, container_id: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(daemon.socket))
    sock.sendall(
        f"POST /v1.50/containers/{container_id}/attach?stdin=1&stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
        "Host: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_attaching_while_a_container_exits_keeps_the_daemon_up(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    d = daemon_factory()  # private: this one may crash
    d.docker("import", "-", "bb:1", input=busybox_tar)
    client = d.client()
    try:
        cid = d.out("run", "-d", "-i", "bb:1", "sh", "-c", "sleep 0.3")
        after_exit = 0
        for _ in range(2000):
            assert d.proc is not None
            try:
                _raw_attach(d, cid).close()  # a client that attaches and goes away again
                status = client.api.inspect_container(cid)["State"]["Status"]
            except Exception as exc:  # a dead daemon shows up as any kind of connection error
                try:
                    code = d.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    raise exc from None
                raise AssertionError(
                    f"dockyardd exited {code} while clients attached: {exc!r}"
                ) from exc
            if status == "exited":
                after_exit += 1
                if after_exit > 5:
                    break
        assert after_exit > 5
        assert d.proc is not None and d.proc.poll() is None, "dockyardd died"
        assert d.out("inspect", "-f", "{{.State.ExitCode}}", cid) == "0"
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# images


def test_images_list_get_tag_remove(client: docker.DockerClient, busybox: str) -> None:
    image = client.images.get(busybox)
    assert "busybox:latest" in image.tags
    assert image.id.startswith("sha256:")
    assert image.id in {i.id for i in client.images.list()}
    assert image.id in {i.id for i in client.images.list(name="busybox")}
    assert client.images.get("busybox").id == image.id
    assert client.images.get(image.short_id).id == image.id
    repo = f"dypy/tagged-{_uid()}"
    assert image.tag(repo, "one") is True
    assert image.tag(repo) is True  # -> :latest
    try:
        image.reload()
        assert {f"{repo}:one", f"{repo}:latest"} <= set(image.tags)
        assert client.images.get(f"{repo}:one").id == image.id
        assert [i.id for i in client.images.list(name=repo)] == [image.id]
        client.images.remove(f"{repo}:one")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(f"{repo}:one")
        assert client.images.get(repo).id == image.id
        # the tag the shared daemon uses is untouched
        assert client.images.get(busybox).id == image.id
    finally:
        for name in (f"{repo}:one", f"{repo}:latest"):
            try:
                client.images.remove(name)
            except docker.errors.ImageNotFound:
                pass
    assert f"{repo}:latest" not in client.images.get(busybox).tags


def test_images_list_with_list_form_filters(
    daemon: Daemon, client: docker.DockerClient, busybox_tar: bytes
) -> None:
    untagged = daemon.out("import", "-m", f"dypy dangling {_uid()}", "-", input=busybox_tar)
    tagged_ref = f"dypy-filtered-{_uid()}:1"
    tagged = daemon.out("import", "--change", "LABEL dypy=yes", "-", tagged_ref, input=busybox_tar)
    try:
        dangling = {i.id for i in client.images.list(filters={"dangling": True})}
        assert untagged in dangling and tagged not in dangling
        labelled = {i.id for i in client.images.list(filters={"label": "dypy=yes"})}
        assert tagged in labelled and untagged not in labelled
        assert {i.id for i in client.images.list(filters={"reference": tagged_ref})} == {tagged}
    finally:
        client.images.remove(untagged, force=True)
        client.images.remove(tagged, force=True)


def test_images_save_and_load_round_trip(
    daemon: Daemon, daemon_factory: Callable[..., Daemon], busybox_tar: bytes
) -> None:
    ref = f"dypy-saved-{_uid()}:1"
    image_id = daemon.out(
        "import", "--change", 'CMD ["echo","loaded-by-dockerpy"]', "-", ref, input=busybox_tar
    )
    source = daemon.client()
    try:
        image = source.images.get(ref)
        data = b"".join(image.save(named=True))  # by name: the archive carries the tag
        by_id = b"".join(image.save())  # docker-py's default saves by id: no tag
    finally:
        source.images.remove(image_id, force=True)
        source.close()
    other = daemon_factory()
    target = other.client()
    try:
        loaded = target.images.load(data)
        assert [i.id for i in loaded] == [image_id]
        assert loaded[0].tags == [ref]
        assert target.images.get(ref).id == image_id
        assert target.containers.run(ref, remove=True) == b"loaded-by-dockerpy\n"
        target.images.remove(ref)
        loaded = target.images.load(by_id)
        assert [(i.id, i.tags) for i in loaded] == [(image_id, [])]
    finally:
        target.close()


def test_tag_with_an_invalid_repository_is_400(client: docker.DockerClient, busybox: str) -> None:
    with pytest.raises(docker.errors.APIError) as caught:
        client.api.tag(busybox, "Not_Lower/Case", "1")
    assert caught.value.status_code == 400
    assert "invalid reference format" in str(caught.value.explanation)
    with pytest.raises(docker.errors.APIError) as caught:
        client.api.tag(busybox, f"dypy-badtag-{_uid()}", "bad tag!")
    assert caught.value.status_code == 400


# ---------------------------------------------------------------------------------------------
# errors


def test_not_found_errors(client: docker.DockerClient) -> None:
    missing = f"dypy-missing-{_uid()}"
    with pytest.raises(docker.errors.NotFound) as caught:
        client.containers.get(missing)
    assert caught.value.status_code == 404
    assert f"No such container: {missing}" in str(caught.value.explanation)
    with pytest.raises(docker.errors.ImageNotFound) as image_caught:
        client.images.get(f"{missing}:1")
    assert image_caught.value.status_code == 404
    assert "No such image" in str(image_caught.value.explanation)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create(f"{missing}:1", "true")
    with pytest.raises(docker.errors.NotFound):
        client.api.remove_container(missing)
    with pytest.raises(docker.errors.NotFound):
        client.images.remove(f"{missing}:1")


def test_name_conflict_is_409(client: docker.DockerClient, busybox: str) -> None:
    name = f"dypy-taken-{_uid()}"
    first = client.containers.create(busybox, "true", name=name)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            client.containers.create(busybox, "true", name=name)
        assert caught.value.status_code == 409
        assert f'The container name "/{name}" is already in use' in str(caught.value.explanation)
        assert [c.id for c in client.containers.list(all=True, filters={"name": name})] == [
            first.id
        ]
    finally:
        first.remove(force=True)


def test_invalid_restart_policy_is_400(client: docker.DockerClient, busybox: str) -> None:
    name = f"dypy-restart-{_uid()}"
    with pytest.raises(docker.errors.APIError) as caught:
        client.containers.create(busybox, "true", name=name, restart_policy={"Name": "sometimes"})
    assert caught.value.status_code == 400
    assert "restart policy" in str(caught.value.explanation)
    assert client.containers.list(all=True, filters={"name": name}) == []  # nothing half-made


# ---------------------------------------------------------------------------------------------
# raw HTTP over the unix socket


def test_version_prefixes(daemon: Daemon) -> None:
    status, headers, body = _request(daemon, "GET", "/v1.99/version")
    assert status == 400
    assert json.loads(body) == {
        "message": "client version 1.99 is too new. Maximum supported API version is 1.50"
    }
    status, _, body = _request(daemon, "GET", "/v1.12/version")
    assert status == 400
    assert b"client version 1.12 is too old" in body
    assert b"Minimum supported API version is 1.24" in body
    for path in ("/version", "/v1.24/version", "/v1.41/version", "/v1.50/version"):
        status, headers, body = _request(daemon, "GET", path)
        assert status == 200, path
        assert json.loads(body)["ApiVersion"] == "1.50"
        assert headers["Api-Version"] == "1.50"
        assert headers["Content-Type"].startswith("application/json")


def test_unknown_path_is_404_page_not_found(daemon: Daemon) -> None:
    for path in ("/v1.50/no/such/thing", "/no-such-endpoint", "/v1.50/containers/x/nonsense"):
        status, headers, body = _request(daemon, "GET", path)
        assert status == 404, path
        assert json.loads(body) == {"message": "page not found"}
        assert headers["Api-Version"] == "1.50"


def test_ping_headers(daemon: Daemon) -> None:
    status, headers, body = _request(daemon, "HEAD", "/_ping")
    assert status == 200
    assert body == b""
    assert headers["Api-Version"] == "1.50"
    assert headers["Ostype"] == "linux"
    assert headers["Docker-Experimental"] in ("false", "true")
    assert headers["Builder-Version"] in ("1", "2")
    status, headers, body = _request(daemon, "GET", "/_ping")
    assert status == 200
    assert body == b"OK"
    assert headers["Api-Version"] == "1.50"
    status, _, body = _request(daemon, "GET", "/v1.50/_ping")
    assert status == 200 and body == b"OK"


def test_streamed_logs_come_a_line_at_a_time(client: docker.DockerClient, busybox: str) -> None:
    out = client.containers.run(busybox, ["sh", "-c", "echo hello && echo world"], stream=True, remove=True)
    assert list(out) == [b"hello\n", b"world\n"]
