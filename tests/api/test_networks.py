"""Networks through the docker CLI and docker-py: the predefined three, user bridges with their
devices, IPAM choices and dockerd's refusals; nothing left after rm, prune or a failed create."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.conftest import Daemon

Factory = Callable[..., Daemon]


def _link(name: str) -> dict[str, object] | None:
    out = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def _addresses(name: str) -> list[str]:
    link = _link(name)
    assert link is not None, f"no device {name}"
    return [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]  # type: ignore[index,union-attr]


def _bridge_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines() if line.split(":")[1].strip().startswith("br-")}


@pytest.fixture
def net_daemon(daemon_factory: Factory) -> Daemon:
    """A daemon with a default bridge of its own and its own pool for automatic subnets."""
    tag = secrets.token_hex(3)
    octet = 100 + secrets.randbelow(100)
    d = daemon_factory({"bridge": f"dyn{tag}", "bip": f"10.{octet}.250.1/24",
                        "default-address-pools": [{"base": f"10.{octet}.0.0/17", "size": 24}]})  # fmt: skip
    d.tag, d.octet = tag, octet  # type: ignore[attr-defined]
    return d


def test_the_predefined_networks_and_the_default_bridge(net_daemon: Daemon) -> None:
    d = net_daemon
    rows = [line.split() for line in d.out("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").splitlines()]
    assert sorted(rows) == [["bridge", "bridge", "local"], ["host", "host", "local"], ["none", "null", "local"]]
    bridge = json.loads(d.out("network", "inspect", "bridge"))[0]
    assert bridge["IPAM"]["Config"] == [{"Subnet": f"10.{d.octet}.250.0/24", "Gateway": f"10.{d.octet}.250.1"}]  # type: ignore[attr-defined]
    assert bridge["Options"]["com.docker.network.bridge.name"] == f"dyn{d.tag}"  # type: ignore[attr-defined]
    assert bridge["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    assert _addresses(f"dyn{d.tag}") == [f"10.{d.octet}.250.1/24"]  # type: ignore[attr-defined]
    for name in ("bridge", "host", "none"):
        refused = d.docker("network", "rm", name, check=False)
        assert refused.returncode == 1
        assert f"{name} is a pre-defined network and cannot be removed" in refused.stderr.decode()
        created = d.docker("network", "create", name, check=False)
        assert f"operation is not permitted on predefined {name} network" in created.stderr.decode()


def test_a_user_network_gets_a_bridge_of_its_own_and_rm_takes_it_away(net_daemon: Daemon) -> None:
    d = net_daemon
    octet = d.octet  # type: ignore[attr-defined]
    net_id = d.out("network", "create", "--subnet", f"10.{octet}.200.0/24", "--ip-range", f"10.{octet}.200.128/25",
                   "--label", "team=blue", "--attachable", "--internal", "-o", "com.docker.network.driver.mtu=1400", "app")  # fmt: skip
    doc = json.loads(d.out("network", "inspect", "app"))[0]
    assert doc["Id"] == net_id and doc["Driver"] == "bridge" and doc["Scope"] == "local"
    assert doc["IPAM"] == {"Driver": "default", "Options": {},
                           "Config": [{"Subnet": f"10.{octet}.200.0/24", "IPRange": f"10.{octet}.200.128/25",
                                       "Gateway": f"10.{octet}.200.128"}]}  # fmt: skip
    assert (doc["Internal"], doc["Attachable"], doc["Labels"]) == (True, True, {"team": "blue"})
    assert doc["Options"] == {"com.docker.network.driver.mtu": "1400"}
    device = f"br-{net_id[:12]}"
    assert _addresses(device) == [f"10.{octet}.200.128/24"]
    assert _link(device)["mtu"] == 1400  # type: ignore[index]
    assert d.out("network", "inspect", "-f", "{{.Name}}", net_id[:5]) == "app"  # an id prefix finds it
    d.docker("network", "rm", "app")
    # Down at once (no route to its subnet), deleted a moment later: the kernel's part of a
    # device deletion takes tens of milliseconds that `rm` does not wait for.
    link = _link(device)
    assert link is None or "UP" not in link["flags"]  # type: ignore[operator]
    deadline = time.monotonic() + 10
    while _link(device) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _link(device) is None
    missing = d.docker("network", "inspect", "app", check=False)
    assert missing.returncode == 1 and "network app not found" in missing.stderr.decode()


def test_automatic_subnets_come_from_the_pools_and_skip_what_is_taken(net_daemon: Daemon) -> None:
    d = net_daemon
    octet = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{octet}.0.0/24", "fixed")
    d.docker("network", "create", "one")
    d.docker("network", "create", "two")
    subnets = {n: d.out("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}", n)
               for n in ("one", "two")}  # fmt: skip
    assert subnets == {"one": f"10.{octet}.1.0/24 10.{octet}.1.1", "two": f"10.{octet}.2.0/24 10.{octet}.2.1"}
    d.docker("network", "rm", "one")
    d.docker("network", "create", "three")
    assert d.out("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "three") == f"10.{octet}.1.0/24"


def test_refusals_in_dockerds_words_leave_nothing(net_daemon: Daemon) -> None:
    d = net_daemon
    octet = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{octet}.10.0/24", "taken")
    before = set(d.out("network", "ls", "-q").split())
    bridges_before = _bridge_links()
    client = d.client()
    cases = [
        (["--subnet", f"10.{octet}.10.128/25", "overlap"], 403, "invalid pool request: Pool overlaps with other one on this address space"),
        (["--subnet", f"10.{octet}.11.0/24", "taken"], 409, "network with name taken already exists"),
        (["--subnet", f"10.{octet}.12.1/24", "hostbits"], 400, f"invalid subnet 10.{octet}.12.1/24: it should be 10.{octet}.12.0/24"),
        (["--driver", "nosuch", "plugin"], 404, "could not find plugin nosuch in v1 plugin registry: plugin not found"),
        (["-o", "com.docker.network.bridge.enable_icc=maybe", "badopt"], 400, "is not a valid bool"),
    ]  # fmt: skip
    for args, status, words in cases:
        result = d.docker("network", "create", *args, check=False)
        assert result.returncode == 1, args
        assert words in result.stderr.decode(), (args, result.stderr)
    import docker.errors

    for args, status, _words in cases:
        kwargs: dict[str, object] = {"driver": "bridge"}
        if "--subnet" in args:
            kwargs["ipam"] = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=args[args.index("--subnet") + 1])])
        if "--driver" in args:
            kwargs["driver"] = "nosuch"
        if "-o" in args:
            kwargs["options"] = dict([args[1].split("=", 1)])
        with pytest.raises(docker.errors.APIError) as caught:
            client.networks.create(args[-1], **kwargs)
        assert caught.value.status_code == status, args
    pool = docker.types.IPAMPool(subnet=f"10.{octet}.13.0/24", iprange=f"10.{octet}.14.0/24", gateway=f"10.{octet}.15.1")
    with pytest.raises(docker.errors.APIError) as bad_range:  # the CLI checks these itself; docker-py does not
        client.networks.create("badrange", ipam=docker.types.IPAMConfig(pool_configs=[pool]))
    assert bad_range.value.status_code == 400
    assert bad_range.value.explanation == (
        "invalid network config:\n"
        f"* invalid ip-range 10.{octet}.14.0/24: parent subnet 10.{octet}.13.0/24 doesn't contain ip-range\n"
        f"* invalid gateway 10.{octet}.15.1: parent subnet 10.{octet}.13.0/24 doesn't contain this address"
    )
    assert set(d.out("network", "ls", "-q").split()) == before
    assert _bridge_links() <= bridges_before  # no bridge of a refused network was made (others may come and go)


def test_filters_and_prune(net_daemon: Daemon) -> None:
    d = net_daemon
    octet = d.octet  # type: ignore[attr-defined]
    d.docker("network", "create", "--subnet", f"10.{octet}.20.0/24", "--label", "keep=yes", "kept")
    d.docker("network", "create", "--subnet", f"10.{octet}.21.0/24", "--label", "keep=no", "dropped")
    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return sorted(d.out("network", "ls", *args, "--format", "{{.Name}}").split())
    assert names("type=custom") == ["dropped", "kept"]
    assert names("type=builtin") == ["bridge", "host", "none"]
    assert names("driver=null") == ["none"]
    assert names("label=keep=yes") == ["kept"]
    assert names("name=drop") == ["dropped"]
    assert names("dangling=true") == ["dropped", "kept"]
    assert names("dangling=false") == ["bridge", "host", "none"]
    bad = d.docker("network", "ls", "--filter", "colour=red", check=False)
    assert "invalid filter 'colour'" in bad.stderr.decode()
    bad_type = d.docker("network", "ls", "--filter", "type=odd", check=False)
    assert "invalid filter: 'type'='odd'" in bad_type.stderr.decode()
    pruned = d.out("network", "prune", "-f", "--filter", "label=keep=no")
    assert "dropped" in pruned and "kept" not in pruned
    assert names("type=custom") == ["kept"]
    assert _link(f"br-{d.out('network', 'inspect', '-f', '{{.Id}}', 'kept')[:12]}") is not None


def test_networks_and_the_default_bridge_survive_a_restart(net_daemon: Daemon) -> None:
    d = net_daemon
    octet = d.octet  # type: ignore[attr-defined]
    net_id = d.out("network", "create", "--subnet", f"10.{octet}.30.0/24", "lasting")
    bridge_id = d.out("network", "inspect", "-f", "{{.Id}}", "bridge")
    device = f"br-{net_id[:12]}"
    assert d.stop() == 0
    subprocess.run(["ip", "link", "delete", device], check=True)  # as after a reboot
    d.start()
    assert d.out("network", "inspect", "-f", "{{.Id}}", "lasting") == net_id
    assert d.out("network", "inspect", "-f", "{{.Id}}", "bridge") == bridge_id
    assert _addresses(device) == [f"10.{octet}.30.1/24"]


def test_no_default_bridge_with_bridge_none(daemon: Daemon) -> None:
    names = sorted(daemon.out("network", "ls", "--format", "{{.Name}}").split())
    assert "bridge" not in names and {"host", "none"} <= set(names)
