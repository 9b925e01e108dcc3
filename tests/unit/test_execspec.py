"""The exec's OCI process object: the container's process with the exec's choices on top."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from dockyard.linux.capabilities import CAPABILITY_BITS
from dockyard.runtime.execspec import (
    ExecSpec,
    exec_env,
    exec_process,
    privileged_capabilities,
    replace_or_append,
)
from dockyard.runtime.spec import DEFAULT_CAPS, DEFAULT_PATH, ProcessUser, SpecInput, build_spec

HOST_CAPS = frozenset(c for c in CAPABILITY_BITS if c != "CAP_SYS_RESOURCE")  # as on our machines


def _container(**kw: object) -> dict[str, Any]:
    base: dict[str, object] = {"rootfs": "/r", "args": ("sleep", "1d"), "env": ("FOO=bar",), "cwd": "/srv",
                               "hostname": "h", "cgroups_path": "/x"}  # fmt: skip
    base.update(kw)
    process: dict[str, Any] = build_spec(SpecInput(**base))["process"]  # type: ignore[arg-type]
    return process


def _spec(**kw: object) -> ExecSpec:
    base: dict[str, object] = {"args": ("echo", "hi"), "container_env": ("FOO=bar",), "hostname": "h"}
    base.update(kw)
    return ExecSpec(**base)  # type: ignore[arg-type]


# ---- env -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("defaults", "overrides", "expected"),
    [
        ([], [], []),
        (["A=1"], ["A=2"], ["A=2"]),
        (["A=1", "B=2"], ["A=3"], ["A=3", "B=2"]),  # replaced in place
        (["A=1"], ["B=2"], ["A=1", "B=2"]),  # appended
        (["A=1", "B=2"], ["A"], ["B=2"]),  # a bare key unsets
        (["A=1"], ["C"], ["A=1"]),  # unsetting an absent key: nothing
        (["A=1"], ["A="], ["A="]),  # empty value is a value
        (["A=1"], ["A=x=y"], ["A=x=y"]),
        (["A=1"], ["A=2", "A=3"], ["A=3"]),  # later override wins
        (["A=1"], ["A", "A=5"], ["A=5"]),  # unset, then set in the same place
        # dockerd's quirks: its index covers the defaults only, the last of duplicates
        (["A=1", "A=2"], ["A=3"], ["A=1", "A=3"]),
        (["A=1"], ["B=1", "B=2"], ["A=1", "B=1", "B=2"]),
        (["A=1"], ["B=1", "B"], ["A=1", "B=1"]),
    ],
)  # fmt: skip
def test_replace_or_append(defaults: list[str], overrides: list[str], expected: list[str]) -> None:
    assert replace_or_append(defaults, overrides) == expected


def test_exec_env_order_and_defaults() -> None:
    assert exec_env(_spec()) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "FOO=bar"]
    assert exec_env(_spec(tty=True)) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "TERM=xterm", "FOO=bar"]


def test_exec_env_layers_exec_over_container_over_defaults() -> None:
    spec = _spec(container_env=("PATH=/bin", "FOO=bar", "KEEP=1"), env=("FOO=x", "NEW=1", "KEEP"), tty=True)
    assert exec_env(spec) == ["PATH=/bin", "HOSTNAME=h", "TERM=xterm", "FOO=x", "NEW=1"]


def test_exec_env_can_override_term_and_hostname() -> None:
    spec = _spec(env=("TERM=dumb", "HOSTNAME=other"), tty=True)
    assert exec_env(spec)[:3] == [f"PATH={DEFAULT_PATH}", "HOSTNAME=other", "TERM=dumb"]


def test_container_tty_term_does_not_leak_into_a_non_tty_exec() -> None:
    # The container's own process env has TERM=xterm (it is a tty container); the exec's is rebuilt.
    process = exec_process(_spec(), _container(tty=True))
    assert not any(e.startswith("TERM=") for e in process["env"])


# ---- process ---------------------------------------------------------------------------


def test_inherits_the_container_process_and_replaces_the_execs_parts() -> None:
    container = _container()
    container["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    container["oomScoreAdj"] = 5
    container["noNewPrivileges"] = True
    process = exec_process(_spec(), container)
    assert process["args"] == ["echo", "hi"]
    assert process["cwd"] == "/srv"  # the container's working directory
    assert process["terminal"] is False and "consoleSize" not in process
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["capabilities"] == container["capabilities"]
    assert process["rlimits"] == container["rlimits"] and process["oomScoreAdj"] == 5
    assert process["noNewPrivileges"] is True


def test_does_not_change_the_container_process() -> None:
    container = _container()
    before = repr(container)
    exec_process(_spec(user=ProcessUser(1, 2, (3,)), privileged=True, tty=True, console_size=(1, 2)), container, HOST_CAPS)
    assert repr(container) == before


def test_security_labels_are_not_inherited() -> None:
    container = _container()
    container["apparmorProfile"] = "docker-default"
    container["selinuxLabel"] = "system_u:system_r:container_t:s0"
    process = exec_process(_spec(), container)
    assert "apparmorProfile" not in process and "selinuxLabel" not in process


def test_cwd_from_the_exec() -> None:
    assert exec_process(_spec(cwd="/tmp"), _container())["cwd"] == "/tmp"


def test_cwd_defaults_to_root_when_the_container_has_none() -> None:
    container = _container()
    del container["cwd"]
    assert exec_process(_spec(), container)["cwd"] == "/"


@pytest.mark.parametrize(
    ("tty", "size", "expected"),
    [(True, (30, 100), {"height": 30, "width": 100}), (True, (0, 0), None), (True, (30, 0), None),
     (True, (0, 100), None), (False, (30, 100), None), (True, (-1, 5), None)],
)  # fmt: skip
def test_terminal_and_console_size(tty: bool, size: tuple[int, int], expected: dict[str, int] | None) -> None:
    container = _container(tty=True, console_size=(10, 10))  # the container's own size never leaks
    process = exec_process(_spec(tty=tty, console_size=size), container)
    assert process["terminal"] is tty
    assert process.get("consoleSize") == expected


def test_user_none_keeps_the_containers_user() -> None:
    container = _container(user=ProcessUser(1000, 1000, (27,)))
    assert exec_process(_spec(), container)["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [27]}


@pytest.mark.parametrize(
    ("user", "expected"),
    [(ProcessUser(65534, 65534), {"uid": 65534, "gid": 65534}),
     (ProcessUser(0, 0), {"uid": 0, "gid": 0}),
     (ProcessUser(5, 6, (7, 8)), {"uid": 5, "gid": 6, "additionalGids": [7, 8]})],
)  # fmt: skip
def test_user_from_the_exec_replaces_the_containers(user: ProcessUser, expected: dict[str, object]) -> None:
    container = _container(user=ProcessUser(1000, 1000, (27,)))
    assert exec_process(_spec(user=user), container)["user"] == expected


def test_user_keeps_the_containers_umask() -> None:
    container = _container()
    container["user"]["umask"] = 0o27
    assert exec_process(_spec(user=ProcessUser(1, 1)), container)["user"] == {"uid": 1, "gid": 1, "umask": 0o27}


def test_user_without_a_container_user() -> None:
    container = _container()
    del container["user"]
    assert exec_process(_spec(), container)["user"] == {"uid": 0, "gid": 0}


def test_capabilities_are_the_containers_unless_privileged() -> None:
    container = _container(cap_add=("NET_ADMIN",), cap_drop=("CHOWN",))
    caps = exec_process(_spec(), container, HOST_CAPS)["capabilities"]
    assert set(caps["effective"]) == (set(DEFAULT_CAPS) - {"CAP_CHOWN"}) | {"CAP_NET_ADMIN"}


def test_privileged_gets_all_that_the_bounding_set_holds() -> None:
    container = _container(cap_drop=("ALL",))
    caps = exec_process(_spec(privileged=True), container, HOST_CAPS)["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for key in caps:
        assert caps[key] == [c for c in CAPABILITY_BITS if c != "CAP_SYS_RESOURCE"]


def test_privileged_capabilities_follow_the_host() -> None:
    assert privileged_capabilities(frozenset()) == []
    assert privileged_capabilities(frozenset({"CAP_KILL", "CAP_CHOWN", "CAP_UNKNOWN"})) == ["CAP_CHOWN", "CAP_KILL"]
    assert privileged_capabilities(frozenset(CAPABILITY_BITS)) == list(CAPABILITY_BITS)


def test_no_new_privileges_defaults_false() -> None:
    container = _container()
    del container["noNewPrivileges"]
    assert exec_process(_spec(), container)["noNewPrivileges"] is False


def test_an_empty_command_is_refused_in_dockerds_words() -> None:
    with pytest.raises(InvalidArgument, match="^No exec command specified$"):
        exec_process(_spec(args=()), _container())


def test_every_combination_is_well_formed() -> None:
    users = (None, ProcessUser(7, 8, (9,)))
    for tty, privileged, user, cwd, size in itertools.product((False, True), (False, True), users, ("", "/w"), ((0, 0), (3, 4))):
        spec = _spec(tty=tty, privileged=privileged, user=user, cwd=cwd, console_size=size, env=("X=1",))
        process = exec_process(spec, _container(), HOST_CAPS)
        assert process["terminal"] is tty and process["args"] == ["echo", "hi"]
        assert process["cwd"] == (cwd or "/srv")
        assert ("consoleSize" in process) == (tty and size != (0, 0))
        assert ("TERM=xterm" in process["env"]) == tty and "X=1" in process["env"]
        assert process["user"]["uid"] == (user.uid if user else 0)
        assert ("CAP_SYS_ADMIN" in process["capabilities"]["bounding"]) == privileged
        assert "CAP_SYS_RESOURCE" not in process["capabilities"]["bounding"]
        assert set(process) >= {"terminal", "user", "args", "env", "cwd", "capabilities", "noNewPrivileges"}
