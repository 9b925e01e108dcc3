"""The host files a container sees and the pieces of its bundle that are pure (engine.bundles)."""

from __future__ import annotations

import pytest

from dockyard.engine.bundles import _cgroups_path, _namespace, hosts_file, resolv_conf
from dockyard.errors import Conflict
from dockyard.model.containers import HostSpec
from dockyard.model.hostconfig import ExtraHost, NamespaceKind, NamespaceMode

HOST_RESOLV = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"


def test_resolv_conf_drops_loopback_servers() -> None:
    assert resolv_conf(HOST_RESOLV, (), (), ()) == (
        b"# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
    )


def test_dns_options_replace_the_hosts() -> None:
    out = resolv_conf(HOST_RESOLV, ("10.9.9.9", "10.8.8.8"), ("a.example", "b.example"), ("ndots:2",))
    assert out == (
        b"# generated\nnameserver 10.9.9.9\nnameserver 10.8.8.8\nsearch a.example b.example\noptions ndots:2\n"
    )


def test_hosts_file_with_extra_hosts() -> None:
    text = hosts_file((ExtraHost("db", "10.1.2.3"), ExtraHost("v6", "::1"))).decode()
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.endswith("10.1.2.3\tdb\n::1\tv6\n")


def test_cgroups_path() -> None:
    assert _cgroups_path(HostSpec(), "abc") == "/dockyard/abc"
    assert _cgroups_path(HostSpec(cgroup_parent="parent/child"), "abc") == "/parent/child/abc"
    assert _cgroups_path(HostSpec(cgroup_parent="/p/"), "abc") == "/p/abc"


def test_namespace_choice() -> None:
    assert _namespace(NamespaceMode(), "", "IPC") == ""
    assert _namespace(NamespaceMode(NamespaceKind.SHAREABLE), "", "IPC") == ""
    assert _namespace(NamespaceMode(NamespaceKind.HOST), "", "IPC") is None
    assert _namespace(NamespaceMode(NamespaceKind.CONTAINER, "db"), "/proc/9/ns/ipc", "IPC") == "/proc/9/ns/ipc"
    with pytest.raises(Conflict, match="cannot join PID of a non running container: db"):
        _namespace(NamespaceMode(NamespaceKind.CONTAINER, "db"), "", "PID")
