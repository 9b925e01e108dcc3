"""Compose v2 (the real binary, as a docker CLI plugin) end to end: a project comes up on a
network of its own, one service reaches the other by its service name, the embedded DNS
answers with every replica of a scaled service, and `down` leaves nothing behind: no
container, network, bridge, veth, nft rule or subnet."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import COMPOSE_PLUGIN, Daemon

Factory = Callable[..., Daemon]

# Each web replica answers every connection with its hostname (its short id).
PROJECT = """
services:
  web:
    image: busybox:latest
    init: true
    command: ["nc", "-ll", "-p", "8080", "-e", "hostname"]
    ports: ["127.0.0.1:{port}-{last}:8080"]  # each replica takes one of them
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 30
  client:
    image: busybox:latest
    init: true
    command: ["sleep", "300"]
    depends_on:
      web:
        condition: service_healthy
"""


class Project:
    def __init__(self, d: Daemon, directory: Path, name: str) -> None:
        self.d, self.directory, self.name = d, directory, name

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(["docker", "compose", "-p", self.name, *args], cwd=self.directory,
                                env=self.d.env(), capture_output=True, timeout=timeout)  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} exited {result.returncode}\n"
                                 f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}")  # fmt: skip
        return result.stdout.decode().strip()


@pytest.fixture
def project(daemon_factory: Factory, busybox_tar: bytes, tmp_path: Path) -> Iterator[Project]:
    assert COMPOSE_PLUGIN.exists(), "dev/setup test installs the compose plugin"
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyk{tag}", "bip": f"10.{octet}.250.1/24",
                        "default-address-pools": [{"base": f"10.{octet}.0.0/17", "size": 24}]})  # fmt: skip
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    port = 20000 + secrets.randbelow(20000)
    (tmp_path / "compose.yaml").write_text(PROJECT.format(port=port, last=port + 3))
    p = Project(d, tmp_path, f"dyk{tag}")
    p.port = port  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        p.run("down", "-t", "0", "--remove-orphans", check=False)


def _links_on(bridge: str) -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def _ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return s.makefile().read().strip()


def test_compose_up_dns_by_service_name_and_down_leaves_nothing(project: Project) -> None:
    p, d = project, project.d
    table_before = subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True).stdout
    p.run("up", "-d")
    network = f"{p.name}_default"
    doc = json.loads(d.out("network", "inspect", network))[0]
    assert doc["Labels"]["com.docker.compose.project"] == p.name and doc["Labels"]["com.docker.compose.network"] == "default"
    bridge = "br-" + doc["Id"][:12]
    subnet = doc["IPAM"]["Config"][0]["Subnet"]
    web = d.out("ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={p.name}",
                "--filter", "label=com.docker.compose.service=web")  # fmt: skip
    assert json.loads(d.out("inspect", "-f", "{{json .State.Health.Status}}", web)) == "healthy"
    assert p.run("exec", "-T", "client", "nc", "web", "8080") == web[:12]  # by service name
    assert p.run("exec", "-T", "client", "nc", f"{p.name}-web-1", "8080") == web[:12]  # by container name
    assert _ask(p.port) == web[:12]  # type: ignore[attr-defined]  # its published port, from the host

    p.run("up", "-d", "--scale", "web=3")
    replicas = d.out("ps", "-q", "--filter", f"label=com.docker.compose.project={p.name}",
                     "--filter", "label=com.docker.compose.service=web").split()  # fmt: skip
    assert len(replicas) == 3
    addresses = {d.out("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", r) for r in replicas}
    answer = p.run("exec", "-T", "client", "nslookup", "web", "127.0.0.11")
    found = {line.split()[-1] for line in answer.splitlines()[2:] if line.startswith("Address")}
    assert found == addresses and len(addresses) == 3
    links = _links_on(bridge)
    assert len(links) == 4  # three web replicas and the client
    assert subnet in subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True).stdout

    p.run("down", "-t", "0")
    assert d.out("ps", "-aq") == ""
    assert network not in d.out("network", "ls", "--format", "{{.Name}}").split()
    assert not _link_exists(bridge)
    deadline = time.monotonic() + 10  # a container's veth goes with its namespace, a moment after the exit
    while any(_link_exists(v) for v in links) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [v for v in links if _link_exists(v)]
    table_after = subprocess.run(["nft", "list", "table", "inet", d.table], capture_output=True, text=True).stdout
    assert subnet not in table_after and bridge not in table_after and f"dport {p.port}" not in table_after  # type: ignore[attr-defined]
    assert table_after == table_before
    # The subnet went back to the pool: the project comes up again on the same one.
    p.run("up", "-d")
    assert json.loads(d.out("network", "inspect", network))[0]["IPAM"]["Config"][0]["Subnet"] == subnet
    p.run("down", "-t", "0")
    assert d.out("ps", "-aq") == ""


SHARED_VOLUME = """
services:
  writer:
    image: busybox:latest
    command: ["sh", "-c", "echo from-writer > /shared/note; sleep 300"]
    volumes: ["shared:/shared"]
  reader:
    image: busybox:latest
    command: ["sleep", "300"]
    volumes: ["shared:/data:ro"]
volumes:
  shared: {}
"""


def test_compose_named_volume_shared_by_two_services_and_down_v_removes_it(daemon_factory: Factory, busybox_tar: bytes, tmp_path: Path) -> None:
    assert COMPOSE_PLUGIN.exists(), "dev/setup test installs the compose plugin"
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"default-address-pools": [{"base": f"10.{octet}.0.0/17", "size": 24}]})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    (tmp_path / "compose.yaml").write_text(SHARED_VOLUME)
    p = Project(d, tmp_path, f"dyv{tag}")
    try:
        p.run("up", "-d")
        volume = f"{p.name}_shared"
        doc = json.loads(d.out("volume", "inspect", volume))[0]
        assert doc["Labels"]["com.docker.compose.project"] == p.name
        deadline = time.monotonic() + 20
        seen = ""
        while time.monotonic() < deadline and seen != "from-writer":
            seen = p.run("exec", "-T", "reader", "cat", "/data/note", check=False)
            time.sleep(0.2)
        assert seen == "from-writer"
        p.run("down", "-t", "0")
        assert d.out("volume", "ls", "-q") == volume  # down keeps volumes
        p.run("up", "-d")
        p.run("down", "-t", "0", "-v")
        assert d.out("volume", "ls", "-q") == ""
        assert list((d.data_root / "volumes").iterdir()) == []
    finally:
        p.run("down", "-t", "0", "-v", "--remove-orphans", check=False)
