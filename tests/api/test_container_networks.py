"""Containers on bridge networks, tried with the docker CLI: addresses, routes, /etc/hosts,
traffic between containers, fixed addresses, several networks, dockerd's refusals, and no
veth or lease left after an exit, a failed start, rm -f or a daemon kill -9."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.conftest import Daemon

Factory = Callable[..., Daemon]


def _veths(bridge: str) -> set[str]:
    """The veths plugged into `bridge` (other tests on the machine make their own)."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _veths_settle(bridge: str, gone: set[str], timeout: float = 10) -> set[str]:
    """The veths on `bridge` once none of `gone` is left: after an exit the kernel removes a
    container's veth with its namespace, a moment later (the daemon does not wait for it)."""
    deadline = time.monotonic() + timeout
    while (now := _veths(bridge)) & gone and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


@pytest.fixture
def net(daemon_factory: Factory, busybox_tar: bytes) -> Daemon:
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyc{tag}", "bip": f"10.{octet}.250.1/24",
                        "default-address-pools": [{"base": f"10.{octet}.0.0/17", "size": 24}]})  # fmt: skip
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    d.octet = octet  # type: ignore[attr-defined]
    d.bridge = f"dyc{tag}"  # type: ignore[attr-defined]
    return d


def test_the_default_bridge_gives_an_address_a_route_and_hosts(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    before = _veths(d.bridge)
    assert before == set()
    out = d.out("run", "--rm", "--hostname", "h1", "busybox", "sh", "-c",
                "ip -o -4 addr show eth0; ip route; grep h1 /etc/hosts; ping -c1 -W2 10.%d.250.1 >/dev/null && echo pong" % o)  # fmt: skip
    assert f"inet 10.{o}.250.2/24" in out
    assert f"default via 10.{o}.250.1 dev eth0" in out
    assert f"10.{o}.250.2\th1" in out
    assert out.endswith("pong")
    cid = d.out("run", "-d", "busybox", "sleep", "300")
    doc = json.loads(d.out("inspect", cid))[0]["NetworkSettings"]
    assert doc["IPAddress"] == f"10.{o}.250.2" and doc["Gateway"] == f"10.{o}.250.1" and doc["IPPrefixLen"] == 24
    assert doc["MacAddress"] == f"02:42:0a:{o:02x}:fa:02"
    bridge = doc["Networks"]["bridge"]
    assert bridge["IPAddress"] == doc["IPAddress"] and bridge["EndpointID"] == doc["EndpointID"] != ""
    assert bridge["NetworkID"] == d.out("network", "inspect", "-f", "{{.Id}}", "bridge")
    assert bridge["DNSNames"] is None  # no names on the default bridge
    members = json.loads(d.out("network", "inspect", "-f", "{{json .Containers}}", "bridge"))
    assert members[cid]["IPv4Address"] == f"10.{o}.250.2/24"
    running = _veths(d.bridge)
    assert len(running) == 1
    d.docker("stop", "-t", "0", cid)
    stopped = json.loads(d.out("inspect", cid))[0]["NetworkSettings"]
    assert stopped["IPAddress"] == "" and stopped["Networks"]["bridge"]["IPAddress"] == ""
    assert _veths_settle(d.bridge, running) == before


def test_containers_on_a_user_network_reach_each_other(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.40.0/24", "app")
    server = d.out("run", "-d", "--name", "server", "--network", "app", "--network-alias", "web",
                   "busybox", "sh", "-c", "while :; do echo hello | nc -l -p 8080; done")  # fmt: skip
    ip = d.out("inspect", "-f", "{{.NetworkSettings.Networks.app.IPAddress}}", "server")
    assert ip == f"10.{o}.40.2"
    settings = json.loads(d.out("inspect", server))[0]["NetworkSettings"]
    assert d.out("run", "--rm", "--network", "app", "--ip", f"10.{o}.40.77", "busybox", "sh", "-c",
                 f"ip -o -4 addr show eth0 | awk '{{print $4}}'; nc {ip} 8080") == f"10.{o}.40.77/24\nhello"  # fmt: skip
    assert settings["IPAddress"] == ""  # the top-level fields are the default bridge's only
    endpoint = settings["Networks"]["app"]
    assert endpoint["Aliases"] == ["web"]
    assert endpoint["DNSNames"] == ["server", "web", server[:12]]
    refused = d.docker("network", "rm", "app", check=False)
    assert "error while removing network: network app has active endpoints (server)" in refused.stderr.decode()
    d.docker("rm", "-f", "server")
    d.docker("network", "rm", "app")


def test_two_networks_two_interfaces(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.41.0/24", "front")
    d.docker("network", "create", "--subnet", f"10.{o}.42.0/24", "--internal", "back")
    out = d.out("run", "--rm", "--network", "front", "--network", "back", "busybox", "sh", "-c",
                "ip -o -4 addr | grep -o 'eth[0-9] *inet [0-9./]*'; ip route | grep default")  # fmt: skip
    assert f"eth0    inet 10.{o}.41.2/24" in out and f"eth1    inet 10.{o}.42.2/24" in out
    assert out.splitlines()[-1].startswith(f"default via 10.{o}.41.1 dev eth0")  # never through an internal network


def test_refusals_name_the_problem(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.43.0/24", "fixed")
    cases = [
        (["--network", "fixed", "--ip", f"10.{o}.99.9"], f"no configured subnet or ip-range contain the IP address 10.{o}.99.9"),
        (["--ip", f"10.{o}.250.9"], "user specified IP address is supported only when connecting to networks with user configured subnets"),
        (["--mac-address", "01:00:00:00:00:01"], "invalid MAC address"),
    ]  # fmt: skip
    for args, words in cases:
        result = d.docker("create", *args, "busybox", "true", check=False)
        assert result.returncode != 0, args
        assert words in result.stderr.decode(), (args, result.stderr)
    assert d.out("ps", "-aq") == ""
    later = d.out("create", "--network", "later", "busybox", "true")  # as dockerd: looked for at start
    missing = d.docker("start", later, check=False)
    assert "network later not found" in missing.stderr.decode()
    d.docker("network", "create", "--subnet", f"10.{o}.44.0/24", "later")
    d.docker("start", "-a", later)
    assert d.out("inspect", "-f", "{{.State.ExitCode}}", later) == "0"
    d.docker("rm", later)
    cid = d.out("run", "-d", "--network", "fixed", "--ip", f"10.{o}.43.9", "busybox", "sleep", "300")
    taken = d.docker("run", "--network", "fixed", "--ip", f"10.{o}.43.9", "busybox", "true", check=False)
    assert "Address already in use" in taken.stderr.decode()
    assert d.out("run", "--rm", "--network", "fixed", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'") == f"10.{o}.43.2/24"
    d.docker("rm", "-f", cid)


def test_a_mac_address_of_ones_own(net: Daemon) -> None:
    out = net.out("run", "--rm", "--mac-address", "02:42:AC:11:00:99", "busybox", "cat", "/sys/class/net/eth0/address")
    assert out == "02:42:ac:11:00:99"


def test_a_failed_start_gives_its_address_back(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    before = _veths(d.bridge)
    failed = d.docker("run", "busybox", "/no/such/command", check=False)
    assert failed.returncode == 127
    assert _veths(d.bridge) == before
    assert d.out("run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'") == f"10.{o}.250.2/24"


def test_kill_9_keeps_the_running_containers_addresses(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    kept = d.out("run", "-d", "busybox", "sleep", "300")
    gone = d.out("run", "-d", "busybox", "sh", "-c", "sleep 2")
    assert d.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", kept) == f"10.{o}.250.2"
    veth_of_gone = _veths(d.bridge)
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    subprocess.run(["sleep", "3"], check=True)  # `gone` exits while the daemon is down
    d.start()
    assert d.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", kept) == f"10.{o}.250.2"
    assert d.out("inspect", "-f", "{{.State.Status}}", gone) == "exited"
    new = d.out("run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'")
    assert new == f"10.{o}.250.3/24"  # .2 still held by the one that runs; .3 freed by the exit
    d.docker("rm", "-f", kept, gone)
    assert not (_veths_settle(d.bridge, veth_of_gone) & veth_of_gone)


def test_connect_and_disconnect_a_running_container(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.45.0/24", "extra")
    cid = d.out("run", "-d", "--name", "roamer", "busybox", "sleep", "300")
    d.docker("network", "connect", "--alias", "rover", "--ip", f"10.{o}.45.20", "extra", "roamer")
    assert f"inet 10.{o}.45.20/24" in d.out("exec", cid, "ip", "-o", "-4", "addr", "show", "eth1")
    endpoint = json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Networks.extra}}", cid))
    assert endpoint["IPAddress"] == f"10.{o}.45.20" and endpoint["Aliases"] == ["rover"]
    assert endpoint["IPAMConfig"] == {"IPv4Address": f"10.{o}.45.20"}
    again = d.docker("network", "connect", "extra", "roamer", check=False)
    assert "endpoint with name roamer already exists in network extra" in again.stderr.decode()
    refused = d.docker("network", "rm", "extra", check=False)
    assert "has active endpoints (roamer)" in refused.stderr.decode()
    d.docker("network", "disconnect", "extra", "roamer")
    assert "eth1" not in d.out("exec", cid, "ip", "-o", "link")
    not_there = d.docker("network", "disconnect", "extra", "roamer", check=False)
    assert "is not connected to network extra" in not_there.stderr.decode()
    d.docker("network", "rm", "extra")
    stopped = d.out("create", "--name", "later-joiner", "busybox", "ip", "-o", "-4", "addr")
    d.docker("network", "create", "--subnet", f"10.{o}.46.0/24", "side")
    d.docker("network", "connect", "side", stopped)
    assert f"10.{o}.46.2/24" in d.out("start", "-a", stopped)
    until = str(int(time.time()) + 1)  # the CLI waits until then: the events so far, all of them
    events = d.out("events", "--since", "0", "--until", until, "--filter", "type=network", "--format", "{{.Action}}")
    assert events.split().count("connect") >= 2 and "disconnect" in events.split()
    d.docker("rm", "-f", cid, stopped)


def test_host_network_mode(net: Daemon) -> None:
    out = net.out("run", "--rm", "--network", "host", "busybox", "sh", "-c", "hostname; readlink /proc/self/ns/net")
    hostname, netns = out.splitlines()
    assert hostname == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert netns == os.readlink("/proc/self/ns/net")
    assert json.loads(net.out("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                              net.out("create", "--network", "host", "busybox", "true"))) == {}  # fmt: skip


def test_container_network_mode_shares_the_pods_namespace(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    pod = d.out("run", "-d", "--name", "pod", "busybox", "sleep", "300")
    out = d.out("run", "--rm", "--network", "container:pod", "busybox", "sh", "-c",
                "hostname; ip -o -4 addr show eth0 | awk '{print $4}'")  # fmt: skip
    assert out.splitlines() == [pod[:12], f"10.{o}.250.2/24"]
    assert d.out("exec", pod, "readlink", "/proc/self/ns/net") == d.out(
        "run", "--rm", "--network", f"container:{pod[:12]}", "busybox", "readlink", "/proc/self/ns/net")
    missing = d.docker("run", "--rm", "--network", "container:nosuch", "busybox", "true", check=False)
    assert "No such container: nosuch" in missing.stderr.decode()
    d.docker("stop", "-t", "0", pod)
    stopped = d.docker("run", "--rm", "--network", "container:pod", "busybox", "true", check=False)
    assert f"cannot join network of a non running container: {pod}" in stopped.stderr.decode()
    assert d.out("ps", "-aq", "--filter", "status=running") == ""
    d.docker("rm", "-f", pod)


def test_add_host_host_gateway_is_the_default_bridges_gateway(net: Daemon) -> None:
    o = net.octet  # type: ignore[attr-defined]
    out = net.out("run", "--rm", "--add-host", "gw:host-gateway", "busybox", "grep", "gw", "/etc/hosts")
    assert out == f"10.{o}.250.1\tgw"


def test_containers_on_a_user_network_find_each_other_by_name(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.47.0/24", "named")
    web = d.out("run", "-d", "--name", "web1", "--network", "named", "--network-alias", "web", "busybox", "sleep", "300")
    d.out("run", "-d", "--name", "web2", "--network", "named", "--network-alias", "web", "busybox", "sleep", "300")
    script = ("cat /etc/resolv.conf; for n in web1 web {short} web1.named; do nslookup $n 127.0.0.11 | "
              "grep -A9 '^Name:' | grep -o 'Address: 10[0-9.]*' | sort | tr '\\n' ' '; echo; done").format(short=web[:12])
    out = d.out("run", "--rm", "--network", "named", "busybox", "sh", "-c", script).splitlines()
    assert "nameserver 127.0.0.11" in out and any("ndots:0" in line for line in out)
    lines = out[-4:]
    assert lines[0].strip() == f"Address: 10.{o}.47.2"
    assert sorted(lines[1].replace("Address: ", "").split()) == [f"10.{o}.47.2", f"10.{o}.47.3"]  # both replicas
    assert lines[2].strip() == f"Address: 10.{o}.47.2" and lines[3].strip() == f"Address: 10.{o}.47.2"
    d.docker("stop", "-t", "0", "web1")
    gone = d.out("run", "--rm", "--network", "named", "busybox", "sh", "-c", "nslookup web1 127.0.0.11 >/dev/null 2>&1 && echo found || echo gone")
    assert gone == "gone"
    d.docker("rm", "-f", "web1", "web2")


def _resolves(d: Daemon, container: str, name: str) -> str:
    """The address the container's embedded DNS gives for `name`, "" when none."""
    out = d.docker("exec", container, "nslookup", name, "127.0.0.11", check=False).stdout.decode()
    found = [line.split()[-1] for line in out.splitlines()[2:] if line.startswith("Address")]
    return " ".join(found)


def test_connect_live_updates_hosts_starts_dns_and_reaches_both_networks(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.48.0/24", "live1")
    d.docker("network", "create", "--subnet", f"10.{o}.49.0/24", "live2")
    d.docker("run", "-d", "--name", "peer1", "--network", "live1", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "one")
    d.docker("run", "-d", "--name", "peer2", "--network", "live2", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "two")
    cid = d.out("run", "-d", "--name", "walker", "--hostname", "wh", "busybox", "sleep", "300")
    # Only on the default bridge: no embedded DNS, the daemon's resolvers.
    assert d.out("exec", cid, "cat", "/etc/resolv.conf") == "nameserver 127.0.0.1"
    assert d.out("exec", cid, "grep", "wh", "/etc/hosts") == f"10.{o}.250.2\twh"

    d.docker("network", "connect", "--alias", "strider", "--ip", f"10.{o}.48.50", "live1", "walker")
    assert d.out("exec", cid, "grep", "wh", "/etc/hosts").splitlines() == [f"10.{o}.250.2\twh", f"10.{o}.48.50\twh"]
    assert d.out("exec", cid, "cat", "/etc/resolv.conf").splitlines() == ["nameserver 127.0.0.11", "options ndots:0"]
    assert _resolves(d, cid, "peer1") == f"10.{o}.48.2"
    assert _resolves(d, "peer1", "strider") == f"10.{o}.48.50"  # its alias, at once
    assert _resolves(d, "peer1", "walker") == f"10.{o}.48.50"

    d.docker("network", "connect", "live2", "walker")  # a second user network: both reached
    assert d.out("exec", cid, "nc", "peer1", "80") == "one"
    assert d.out("exec", cid, "nc", "peer2", "80") == "two"
    assert _resolves(d, "peer2", "walker") == f"10.{o}.49.3"

    d.docker("network", "disconnect", "-f", "live1", "walker")
    assert d.out("exec", cid, "grep", "wh", "/etc/hosts").splitlines() == [f"10.{o}.250.2\twh", f"10.{o}.49.3\twh"]
    assert _resolves(d, "peer1", "strider") == "" and _resolves(d, "peer1", "walker") == ""
    assert _resolves(d, cid, "peer1") == ""  # the names of a network it left
    assert _resolves(d, cid, "peer2") == f"10.{o}.49.2"  # its DNS stays, as dockerd's does
    d.docker("network", "disconnect", "live2", "walker")
    assert d.out("exec", cid, "grep", "wh", "/etc/hosts") == f"10.{o}.250.2\twh"
    d.docker("restart", "-t", "0", "walker")  # a new start writes the files from the spec again
    assert d.out("exec", cid, "cat", "/etc/resolv.conf") == "nameserver 127.0.0.1"
    d.docker("rm", "-f", "walker", "peer1", "peer2")


def test_legacy_links_on_the_default_bridge(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    db = d.out("run", "-d", "--name", "db", "-e", "FOO=bar", "--expose", "5432", "busybox",
               "nc", "-ll", "-p", "5432", "-e", "echo", "from-db")  # fmt: skip
    ip = f"10.{o}.250.2"
    out = d.out("run", "--name", "app", "--link", "db:dbal", "busybox", "sh", "-c",
                "grep dbal /etc/hosts; env | grep ^DBAL_ | sort; nc dbal 5432; nc db 5432")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == f"{ip}\tdbal {db[:12]} db"  # the alias, the hostname, the name
    assert f"DBAL_PORT=tcp://{ip}:5432" in lines and f"DBAL_PORT_5432_TCP_ADDR={ip}" in lines
    assert "DBAL_NAME=/app/dbal" in lines and "DBAL_ENV_FOO=bar" in lines
    assert lines[-2:] == ["from-db", "from-db"]
    assert json.loads(d.out("inspect", "-f", "{{json .HostConfig.Links}}", "app")) == ["/db:/app/dbal"]
    d.docker("rm", "--link", "app/dbal")
    assert d.out("inspect", "-f", "{{json .HostConfig.Links}}", "app") == "null"
    assert d.out("ps", "-aq", "--filter", "name=^app$") != ""  # both containers stay
    missing = d.docker("run", "--rm", "--link", "nosuch:x", "busybox", "true", check=False)
    assert "could not get container for nosuch: No such container: nosuch" in missing.stderr.decode()
    host = d.docker("run", "--rm", "--network", "host", "--link", "db", "busybox", "true", check=False)
    assert "host type networking can't be used with links" in host.stderr.decode()
    d.docker("create", "--name", "later", "--link", "db", "busybox", "true")
    d.docker("stop", "-t", "0", "db")
    stopped = d.docker("start", "later", check=False)
    assert "Cannot link to a non running container: /db AS /later/db" in stopped.stderr.decode()
    assert d.out("inspect", "-f", "{{.State.Running}}", "later") == "false"
    d.docker("rm", "-f", "db", "app", "later")


def test_a_link_follows_a_rename_of_the_linked_container(net: Daemon) -> None:
    d = net
    d.docker("run", "-d", "--name", "lk-db", "busybox", "sleep", "60")
    d.docker("create", "--name", "lk-app", "--link", "lk-db:dbal", "busybox", "grep", "dbal", "/etc/hosts")
    try:
        d.docker("rename", "lk-db", "lk-db2")
        assert json.loads(d.out("inspect", "-f", "{{json .HostConfig.Links}}", "lk-app")) == ["/lk-db2:/lk-app/dbal"]
        assert "dbal" in d.out("start", "-a", "lk-app")  # the renamed one is still linked
    finally:
        d.docker("rm", "-f", "lk-db2", "lk-app", check=False)


def test_a_restart_after_kill_9_mends_the_kernel_state(net: Daemon) -> None:
    """While the daemon is down a user network's bridge is deleted, one container's veth is
    deleted, a stray veth is put on the default bridge and a rule added to the daemon's table:
    the restarted daemon puts it all back as its database says."""
    d = net
    o = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{o}.50.0/24", "mended")
    bridge = "br-" + d.out("network", "inspect", "-f", "{{.Id}}", "mended")[:12]
    d.docker("run", "-d", "--name", "srv", "--network", "mended", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi")
    d.docker("run", "-d", "--name", "cli", "--network", "mended", "busybox", "sleep", "300")
    assert d.out("exec", "cli", "nc", "srv", "80") == "hi"
    on_bridge = _veths(bridge)
    assert len(on_bridge) == 2
    table = subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True, check=True).stdout
    stray = f"dys{secrets.token_hex(3)}"
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    try:
        subprocess.run(["ip", "link", "delete", sorted(on_bridge)[0]], check=True)  # its peer goes with it
        subprocess.run(["ip", "link", "delete", bridge], check=True)
        subprocess.run(["ip", "link", "add", stray, "type", "veth", "peer", "name", stray + "p"], check=True)
        subprocess.run(["ip", "link", "set", stray, "master", d.bridge], check=True)  # type: ignore[attr-defined]
        subprocess.run(["nft", "add", "rule", "inet", d.table, "forward", "accept"], check=True)
        d.start()
        assert _veths(bridge) == on_bridge  # the same veths, on the bridge made again
        assert stray not in _veths(d.bridge)  # type: ignore[attr-defined]
        assert subprocess.run(["ip", "link", "show", stray], capture_output=True).returncode != 0
        assert subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True).stdout == table
        assert d.out("exec", "cli", "nc", "-w", "5", "srv", "80") == "hi"
        assert d.out("exec", "srv", "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'") == f"10.{o}.50.2/24"
    finally:
        subprocess.run(["ip", "link", "delete", stray], capture_output=True)
    d.docker("rm", "-f", "srv", "cli")


def test_two_daemons_side_by_side(daemon_factory: Factory, busybox_tar: bytes) -> None:
    """Two dockyard daemons with bridges, subnets and tables of their own: each serves its
    containers and published ports, neither's containers reach the other's, and one going
    away leaves the other's bridge, rules and containers as they were."""
    daemons = []
    first = 100 + secrets.randbelow(99)
    for octet in (first, first + 1):  # subnets that cannot be one
        tag = secrets.token_hex(3)
        d = daemon_factory({"bridge": f"dy2{tag}", "bip": f"10.{octet}.250.1/24"})
        d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
        d.bridge = f"dy2{tag}"  # type: ignore[attr-defined]
        daemons.append(d)
    a, b = daemons
    port_a, port_b = (30000 + secrets.randbelow(10000) for _ in range(2))
    a.docker("run", "-d", "--name", "sa", "-p", f"127.0.0.1:{port_a}:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "a")
    b.docker("run", "-d", "--name", "sb", "-p", f"127.0.0.1:{port_b}:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "b")
    ip_a = a.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sa")
    ip_b = b.out("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sb")
    assert ip_a == f"10.{first}.250.2" and ip_b == f"10.{first + 1}.250.2"
    assert a.out("run", "--rm", "busybox", "nc", "-w", "3", ip_a, "80") == "a"
    assert b.out("run", "--rm", "busybox", "nc", "-w", "3", ip_b, "80") == "b"
    crossed = a.docker("run", "--rm", "busybox", "nc", "-w", "2", ip_b, "80", check=False)
    assert crossed.stdout.decode().strip() != "b"  # the other daemon's network is not reachable
    for port, word in ((port_a, "a"), (port_b, "b")):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.makefile().read().strip() == word
    table_b = subprocess.run(["nft", "list", "table", "inet", b.table], capture_output=True, text=True, check=True).stdout
    a.remove_all_containers()
    a.stop()
    a.cleanup()
    assert subprocess.run(["ip", "link", "show", a.bridge], capture_output=True).returncode != 0  # type: ignore[attr-defined]
    assert subprocess.run(["nft", "list", "table", "inet", b.table], capture_output=True, text=True).stdout == table_b
    assert _veths(b.bridge) != set()  # type: ignore[attr-defined]
    assert b.out("run", "--rm", "busybox", "nc", "-w", "3", ip_b, "80") == "b"


def test_the_daemons_ip_is_where_ports_without_an_address_bind(daemon_factory: Factory, busybox_tar: bytes) -> None:
    tag, octet = secrets.token_hex(3), 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyi{tag}", "bip": f"10.{octet}.250.1/24", "ip": "127.0.0.1"})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    options = json.loads(d.out("network", "inspect", "-f", "{{json .Options}}", "bridge"))
    assert options["com.docker.network.bridge.host_binding_ipv4"] == "127.0.0.1"
    cid = d.out("run", "-d", "-p", "80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "bound")
    (binding,) = json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Ports}}", cid))["80/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", int(binding["HostPort"])), timeout=10) as s:
        assert s.makefile().read().strip() == "bound"
    table = subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True, check=True).stdout
    dnats = [line.strip() for line in table.splitlines() if f"tcp dport {binding['HostPort']} dnat" in line]
    assert dnats and all(line.startswith("ip daddr 127.0.0.1 ") for line in dnats)  # that address only


def test_a_network_made_after_the_container_naming_it_shows_its_id(net: Daemon) -> None:
    d = net
    o = d.octet  # type: ignore[attr-defined]
    cid = d.out("create", "--network", "later", "busybox", "true")
    assert json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Networks.later.NetworkID}}", cid)) == ""
    network = d.out("network", "create", "--subnet", f"10.{o}.51.0/24", "later")
    assert json.loads(d.out("inspect", "-f", "{{json .NetworkSettings.Networks.later.NetworkID}}", cid)) == network
    assert d.out("start", "-a", cid) == ""
    d.docker("rm", cid)
