"""Published ports with the docker CLI: reached from the host on 127.0.0.1 and on the host's
bridge-side address (TCP and UDP), `docker port`, ps PORTS and inspect in dockerd's shape,
-P with EXPOSE, ranges, a taken host port refused leaving nothing behind, rules gone after
stop, rm -f and a daemon kill -9, hairpin, isolation between networks, internal networks.

Traffic goes only to loopback and to bridges and namespaces these tests' daemons made."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Daemon

Factory = Callable[..., Daemon]
SERVE = "while :; do echo hello | nc -l -p 80; done"


@pytest.fixture
def pnet(daemon_factory: Factory, busybox_tar: bytes) -> Daemon:
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyp{tag}", "bip": f"10.{octet}.251.1/24",
                        "default-address-pools": [{"base": f"10.{octet}.128.0/17", "size": 24}]})  # fmt: skip
    d.docker("import", "--change", 'CMD ["sh"]', "--change", "EXPOSE 80 53/udp", "-", "busybox:latest", input=busybox_tar)
    d.octet = octet  # type: ignore[attr-defined]
    d.bridge = f"dyp{tag}"  # type: ignore[attr-defined]
    d.gateway = f"10.{octet}.251.1"  # type: ignore[attr-defined]
    return d


UDP_ECHO = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (argc < 2 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    for (;;) {
        char buf[2048];
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n > 0) sendto(s, buf, n, 0, (struct sockaddr *)&peer, len);
    }
}
"""


@pytest.fixture(scope="module")
def udp_echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding `udpecho PORT`, a static UDP echo server (busybox's nc has no -u)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the UDP echo server")
    where = tmp_path_factory.mktemp("udpecho")
    (where / "e.c").write_text(UDP_ECHO)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(where / "udpecho"), str(where / "e.c")], check=True, timeout=60)
    (where / "e.c").unlink()
    return where


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _fetch(host: str, port: int, deadline: float = 10.0) -> bytes:
    """What a TCP server at host:port sends, retried while the container's loop restarts nc."""
    end = time.monotonic() + deadline
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=3) as s:
                data = b""
                while chunk := s.recv(100):
                    data += chunk
                if data:
                    return data
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"nothing from {host}:{port}: {last}")


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(100) == b""
    except OSError:
        return True


def _rules(d: Daemon) -> str:
    out = subprocess.run(["nft", "list", "table", "inet", d.table], check=False, capture_output=True, text=True)
    return out.stdout


def _veths(bridge: str) -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_a_published_tcp_port_is_reached_on_loopback_and_the_bridge_address(pnet: Daemon) -> None:
    d = pnet
    port = _free_port()
    cid = d.out("run", "-d", "--name", "web", "-p", f"{port}:80", "busybox", "sh", "-c", SERVE)
    assert _fetch("127.0.0.1", port) == b"hello\n"
    assert _fetch(d.gateway, port) == b"hello\n"  # type: ignore[attr-defined]
    ports = json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", cid))
    # v4-only container: no [::] binding; the image's EXPOSE 53/udp is listed, unpublished
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}], "53/udp": None}
    assert d.out("port", cid) == f"80/tcp -> 0.0.0.0:{port}"
    assert d.out("port", cid, "80") == f"0.0.0.0:{port}"
    assert d.out("ps", "--format", "{{.Ports}}") == f"53/udp, 0.0.0.0:{port}->80/tcp"
    assert f"dport {port}" in _rules(d)
    d.docker("stop", "-t", "0", cid)
    assert f"dport {port}" not in _rules(d)
    assert json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", cid)) == {}
    assert d.out("ps", "-a", "--format", "{{.Ports}}") == ""
    assert _refused("127.0.0.1", port)
    with socket.socket() as s:  # the host port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
    d.docker("start", cid)  # and taken again at the next start
    assert _fetch("127.0.0.1", port) == b"hello\n"


def _echoed(host: str, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for _ in range(30):
            s.sendto(b"datagram", (host, port))
            try:
                return s.recv(100)
            except TimeoutError:
                continue
    return b""


def test_loopback_only_udp_random_ranges_and_publish_all(pnet: Daemon, udp_echo: Path) -> None:
    d = pnet
    tcp, udp = _free_port(), _free_port(socket.SOCK_DGRAM)
    cid = d.out("run", "-d", "-v", f"{udp_echo}:/x:ro", "-p", f"127.0.0.1:{tcp}:80", "-p", f"{udp}:53/udp",
                "busybox", "sh", "-c", f"/x/udpecho 53 & {SERVE}")  # fmt: skip
    assert _fetch("127.0.0.1", tcp) == b"hello\n"
    assert _refused(d.gateway, tcp)  # type: ignore[attr-defined]  # published on loopback only
    assert _echoed("127.0.0.1", udp) == b"datagram"
    assert _echoed(d.gateway, udp) == b"datagram"  # type: ignore[attr-defined]
    assert d.out("port", cid) == f"53/udp -> 0.0.0.0:{udp}\n80/tcp -> 127.0.0.1:{tcp}"

    # -p 80 (random), a range, and -P for what the image exposes
    first = _free_port()
    rid = d.out("run", "-d", "-p", "80", "-p", f"{first}-{first + 1}:81-82", "busybox", "sleep", "300")
    ports = json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", rid))
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low <= int(ports["80/tcp"][0]["HostPort"]) <= high
    assert ports["81/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(first)}]
    assert ports["82/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(first + 1)}]
    assert ports["53/udp"] is None
    aid = d.out("run", "-d", "-P", "busybox", "sleep", "300")
    ports = json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", aid))
    assert sorted(ports) == ["53/udp", "80/tcp"] and all(v and v[0]["HostIp"] == "0.0.0.0" for v in ports.values())
    summary = d.client().api.containers(filters={"id": aid})[0]["Ports"]
    assert sorted((p["PrivatePort"], p["Type"], p["IP"]) for p in summary) == [(53, "udp", "0.0.0.0"), (80, "tcp", "0.0.0.0")]


def test_a_taken_host_port_is_refused_and_leaves_nothing(pnet: Daemon) -> None:
    d = pnet
    o = d.octet  # type: ignore[attr-defined]
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen(1)
        port = held.getsockname()[1]
        before = _rules(d)
        result = d.docker("run", "-d", "--name", "clash", "-p", f"{port}:80", "busybox", "sleep", "300", check=False)
        assert result.returncode != 0
        err = result.stderr.decode()
        assert "driver failed programming external connectivity on endpoint clash (" in err
        assert f"failed to bind host port for 0.0.0.0:{port}:10.{o}.251.2:80/tcp: address already in use" in err
        assert _rules(d) == before and f"dport {port}" not in before
        assert _veths(d.bridge) == set()  # type: ignore[attr-defined]
        assert d.out("inspect", "-f", "{{.State.Status}}", "clash") == "created"
    # the lease went back: the next container gets the same address
    ok = d.out("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "300")
    assert d.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", ok) == f"10.{o}.251.2"
    # a port another container holds: dockerd's words
    result = d.docker("run", "-d", "--name", "second", "-p", f"{port}:80", "busybox", "sleep", "300", check=False)
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in result.stderr.decode()
    assert len(_veths(d.bridge)) == 1  # type: ignore[attr-defined]


def test_rules_go_with_rm_f_and_a_daemon_kill_9(pnet: Daemon) -> None:
    d = pnet
    kept, dying = _free_port(), _free_port()
    keep = d.out("run", "-d", "-p", f"{kept}:80", "busybox", "sh", "-c", SERVE)
    die = d.out("run", "-d", "-p", f"{dying}:80", "busybox", "sh", "-c", SERVE)
    gone = d.out("run", "-d", "-p", "80", "busybox", "sleep", "300")
    gone_port = int(d.out("port", gone, "80").rpartition(":")[2])
    assert f"dport {gone_port}" in _rules(d)
    d.docker("rm", "-f", gone)
    assert f"dport {gone_port}" not in _rules(d)
    pid = int(d.out("inspect", "-f", "{{.State.Pid}}", die))
    assert d.proc is not None
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    os.kill(pid, signal.SIGKILL)  # one container ends while the daemon is down
    time.sleep(0.5)
    assert _fetch("127.0.0.1", kept) == b"hello\n"  # the table outlives the daemon
    d.start()
    deadline = time.monotonic() + 10
    while d.out("inspect", "-f", "{{.State.Status}}", die) != "exited":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    rules = _rules(d)
    assert f"dport {kept}" in rules and f"dport {dying}" not in rules
    assert _fetch("127.0.0.1", kept) == b"hello\n"
    assert json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", keep))["80/tcp"][0]["HostPort"] == str(kept)
    with socket.socket() as s:  # held again by the restarted daemon
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            s.bind(("0.0.0.0", kept))
            s.listen(1)
    result = d.docker("run", "-d", "-p", f"{kept}:80", "busybox", "true", check=False)
    assert "port is already allocated" in result.stderr.decode()
    d.docker("rm", "-f", keep)
    assert f"dport {kept}" not in _rules(d)


def test_hairpin_a_container_reaches_its_own_published_port(pnet: Daemon) -> None:
    d = pnet
    port = _free_port()
    gw = d.gateway  # type: ignore[attr-defined]
    out = d.out("run", "--rm", "-p", f"{port}:80", "busybox", "sh", "-c",
                f"({SERVE}) & for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 2 {gw} {port} && break; sleep 0.3; done")  # fmt: skip
    assert out.startswith("hello")
    cid = d.out("run", "-d", "busybox", "sleep", "300")
    veth = _veths(d.bridge).pop()  # type: ignore[attr-defined]
    assert "hairpin on" in subprocess.run(["ip", "-d", "link", "show", veth], check=True, capture_output=True, text=True).stdout
    d.docker("rm", "-f", cid)


def test_host_network_mode_discards_ports_with_a_warning(pnet: Daemon) -> None:
    d = pnet
    port = _free_port()
    result = d.docker("create", "--network", "host", "-p", f"{port}:80", "busybox", "true")
    assert b"Published ports are discarded when using host network mode" in result.stderr
    cid = result.stdout.decode().strip()
    d.docker("start", "-a", cid)
    assert f"dport {port}" not in _rules(d)


def test_networks_are_isolated_and_internal_has_no_way_out(pnet: Daemon) -> None:
    d = pnet
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.200.0/24", "neta")
    d.docker("network", "create", "--subnet", f"10.{o}.201.0/24", "netb")
    d.docker("network", "create", "--internal", "--subnet", f"10.{o}.202.0/24", "inner")
    d.docker("run", "-d", "--name", "srvb", "--network", "netb", "busybox", "sh", "-c", "while :; do echo hello | nc -l -p 8080; done")
    ip_b = d.out("inspect", "-f", "{{.NetworkSettings.Networks.netb.IPAddress}}", "srvb")
    same = d.docker("run", "--rm", "--network", "netb", "busybox", "nc", "-w", "2", ip_b, "8080").stdout
    assert same.startswith(b"hello")  # the server works from its own network
    other = d.docker("run", "--rm", "--network", "neta", "busybox", "nc", "-w", "2", ip_b, "8080", check=False)
    assert b"hello" not in other.stdout
    # the host listens on neta's bridge address: an internal network's container cannot reach it
    with socket.socket() as host:
        host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        host.bind((f"10.{o}.200.1", 0))
        host.listen(4)
        port = host.getsockname()[1]
        inner = d.docker("run", "--rm", "--network", "inner", "busybox", "sh", "-c",
                         f"echo x | nc -w 2 10.{o}.200.1 {port} && echo reached", check=False)  # fmt: skip
        assert b"reached" not in inner.stdout
    # an internal network's rules: no masquerade, nothing forwarded across its edge
    bridge = json.loads(d.out("network", "inspect", "inner"))[0]["Options"].get("com.docker.network.bridge.name") or (
        "br-" + d.out("network", "inspect", "-f", "{{.Id}}", "inner")[:12]
    )
    rules = _rules(d)
    assert f'iifname "{bridge}" oifname != "{bridge}" drop' in rules
    d.docker("network", "rm", "inner")
    assert bridge not in _rules(d)  # a network's rules go with it


def test_iptables_false_means_no_table(daemon_factory: Factory, busybox_tar: bytes) -> None:
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyq{tag}", "bip": f"10.{octet}.252.1/24", "iptables": False})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    d.out("run", "-d", "-p", "80", "busybox", "sleep", "300")
    listed = subprocess.run(["nft", "list", "table", "inet", d.table], check=False, capture_output=True)
    assert listed.returncode != 0  # no such table


@pytest.mark.parametrize("live_restore", [True, False])
def test_shutdown_keeps_the_table_only_with_live_restore(daemon_factory: Factory, live_restore: bool) -> None:
    d = daemon_factory({"live-restore": live_restore})
    assert _rules(d) != ""
    d.stop()
    assert (_rules(d) != "") is live_restore


def test_disconnecting_the_network_of_the_ports_removes_their_rules(pnet: Daemon) -> None:
    d = pnet
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.210.0/24", "pubnet")
    port = _free_port()
    cid = d.out("run", "-d", "--network", "pubnet", "-p", f"{port}:80", "busybox", "sh", "-c", SERVE)
    assert _fetch("127.0.0.1", port) == b"hello\n"
    d.docker("network", "disconnect", "pubnet", cid)
    assert f"dport {port}" not in _rules(d)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))


def test_a_second_host_in_a_namespace_reaches_published_ports_only(pnet: Daemon) -> None:
    """A namespace of the test's own plays another host on a veth: it reaches a published port
    on the host's address, and not the container's address directly (no route in from outside)."""
    d = pnet
    o = d.octet  # type: ignore[attr-defined]
    tag = secrets.token_hex(3)
    ns, outer, inner = f"dyph{tag}", f"dyva{tag}", f"dyvb{tag}"
    host_ip, peer_ip = f"10.{o}.253.1", f"10.{o}.253.2"
    port = _free_port()
    cid = d.out("run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c", SERVE)
    cip = d.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid)
    sh = ["ip", "netns", "exec", ns]
    try:
        for argv in (["ip", "netns", "add", ns], ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
                     ["ip", "link", "set", inner, "netns", ns], ["ip", "addr", "add", f"{host_ip}/30", "dev", outer],
                     ["ip", "link", "set", outer, "up"], [*sh, "ip", "addr", "add", f"{peer_ip}/30", "dev", inner],
                     [*sh, "ip", "link", "set", inner, "up"], [*sh, "ip", "link", "set", "lo", "up"],
                     [*sh, "ip", "route", "add", f"10.{o}.251.0/24", "via", host_ip]):  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        got = b""
        for _ in range(20):
            got = subprocess.run([*sh, "busybox", "nc", "-w", "2", host_ip, str(port)], check=False,
                                 capture_output=True, timeout=30).stdout  # fmt: skip
            if got:
                break
            time.sleep(0.2)
        assert got == b"hello\n"
        direct = subprocess.run([*sh, "busybox", "nc", "-w", "2", cip, "80"], check=False, capture_output=True, timeout=30)
        assert direct.stdout == b""  # the guard drops it: only published ports come in
    finally:
        subprocess.run(["ip", "link", "delete", outer], check=False, capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True, timeout=30)
