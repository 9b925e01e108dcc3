"""Frozen dataclasses <-> JSON text for SQLite columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
    LogConfig,
    RestartPolicy,
)
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.store.codec import decode, dumps, encode, loads


def _full_spec() -> ContainerSpec:
    return ContainerSpec(
        image="localhost:5000/org/app:1.0",
        hostname="web1",
        domainname="example.org",
        user="1000:1000",
        env=("A=1", "B=two words", "EMPTY="),
        cmd=("sh", "-c", "echo hi"),
        entrypoint=(),
        working_dir="/srv",
        labels={"com.example.a": "1", "b": ""},
        tty=True,
        open_stdin=True,
        stdin_once=True,
        attach_stdin=True,
        attach_stdout=True,
        attach_stderr=True,
        exposed_ports=("80/tcp", "53/udp"),
        volumes=("/data",),
        stop_signal="SIGINT",
        stop_timeout=0,
        healthcheck=HealthConfig(("CMD-SHELL", "true"), 1_000_000_000, 2_000_000_000, 3, 4, 5),
        on_build=("RUN true",),
        shell=("/bin/bash", "-c"),
        network_disabled=True,
        mac_address="02:42:ac:11:00:02",
        host=HostSpec(
            binds=("/src:/dst:ro",),
            network_mode="bridge",
            port_bindings={
                "80/tcp": (("0.0.0.0", "8080"), ("::", "8080")),
                "53/udp": (("", ""),),
                "443/tcp": (),
            },
            restart_policy=RestartPolicy("on-failure", 3),
            auto_remove=True,
            runtime="crun",
            privileged=True,
            publish_all_ports=True,
            readonly_rootfs=True,
            cap_add=("NET_ADMIN",),
            cap_drop=("ALL",),
            dns=("1.1.1.1",),
            dns_options=("ndots:2",),
            dns_search=("example.org",),
            extra_hosts=("h:1.2.3.4",),
            security_opt=("no-new-privileges",),
            tmpfs={"/run": "size=1m"},
            console_size=(24, 80),
            init=False,
            memory=64 << 20,
            memory_swap=-1,
            nano_cpus=1_500_000_000,
            cpu_shares=512,
            pids_limit=0,
            shm_size=1 << 20,
            oom_kill_disable=True,
            log_config=LogConfig("k8s-file", {"max-size": "1m"}),
            ipc_mode="shareable",
            pid_mode="host",
            uts_mode="host",
            group_add=("audio", "999"),
            sysctls={"net.core.somaxconn": "1024"},
        ),
    )


def _full_state() -> ContainerState:
    return ContainerState(
        status=ContainerStatus.EXITED,
        pid=4242,
        exit_code=137,
        error="boom",
        oom_killed=True,
        started_at="2026-11-27T19:52:41.652377680Z",
        finished_at="2026-11-27T19:53:41.000000001Z",
        restart_count=2,
        monitor_pid=4241,
        pid_start_time=123456789,
        boot_id="c0ffee",
    )


def _full_container() -> Container:
    return Container(
        id="a" * 64,
        name="web",
        created="2026-11-27T19:52:40.000000000Z",
        image_id="sha256:" + "b" * 64,
        spec=_full_spec(),
        state=_full_state(),
        runtime="crun",
        rw_layer="rw-" + "a" * 12,
    )


def test_container_round_trip() -> None:
    container = _full_container()
    back = loads(Container, dumps(container))
    assert back == container
    assert back.spec.host.port_bindings["80/tcp"] == (("0.0.0.0", "8080"), ("::", "8080"))


def test_round_trip_types_are_exact() -> None:
    back = loads(Container, dumps(_full_container()))
    assert isinstance(back.spec.env, tuple)
    assert isinstance(back.spec.cmd, tuple)
    assert isinstance(back.spec.host.port_bindings["80/tcp"], tuple)
    assert isinstance(back.spec.host.port_bindings["80/tcp"][0], tuple)
    assert back.spec.host.port_bindings["443/tcp"] == ()
    assert isinstance(back.spec.host.console_size, tuple)
    assert back.state.status is ContainerStatus.EXITED
    assert isinstance(back.spec.healthcheck, HealthConfig)
    assert isinstance(back.spec.host.restart_policy, RestartPolicy)
    assert isinstance(back.spec.host.log_config, LogConfig)


def test_optional_none_versus_empty_tuple() -> None:
    spec = ContainerSpec(image="busybox", hostname="h", cmd=None, entrypoint=(), shell=None)
    back = loads(ContainerSpec, dumps(spec))
    assert back.cmd is None
    assert back.entrypoint == ()
    assert back.shell is None
    spec2 = ContainerSpec(image="busybox", hostname="h", cmd=(), entrypoint=None)
    back2 = loads(ContainerSpec, dumps(spec2))
    assert back2.cmd == () and back2.entrypoint is None


def test_optional_int_and_bool_none() -> None:
    spec = ContainerSpec(
        image="i", hostname="h", stop_timeout=None, host=HostSpec(init=None, pids_limit=None)
    )
    back = loads(ContainerSpec, dumps(spec))
    assert back.stop_timeout is None
    assert back.host.init is None and back.host.pids_limit is None
    spec = ContainerSpec(
        image="i", hostname="h", stop_timeout=0, host=HostSpec(init=True, pids_limit=-1)
    )
    back = loads(ContainerSpec, dumps(spec))
    assert back.stop_timeout == 0 and back.host.init is True and back.host.pids_limit == -1


def test_healthcheck_none_round_trip() -> None:
    assert loads(ContainerSpec, dumps(ContainerSpec(image="i", hostname="h"))).healthcheck is None


@pytest.mark.parametrize("status", list(ContainerStatus))
def test_every_status_round_trips(status: ContainerStatus) -> None:
    state = ContainerState(status=status)
    assert loads(ContainerState, dumps(state)).status is status


def test_state_round_trip() -> None:
    assert loads(ContainerState, dumps(_full_state())) == _full_state()


def test_defaults_round_trip() -> None:
    assert loads(ContainerState, dumps(ContainerState())) == ContainerState()
    assert loads(HostSpec, dumps(HostSpec())) == HostSpec()
    assert loads(ImageConfig, dumps(ImageConfig())) == ImageConfig()


def test_encoded_shape_uses_python_names_and_values() -> None:
    doc = json.loads(dumps(_full_container()))
    assert doc["state"]["status"] == "exited"
    assert doc["spec"]["host"]["port_bindings"]["80/tcp"] == [["0.0.0.0", "8080"], ["::", "8080"]]
    assert doc["spec"]["host"]["restart_policy"] == {"name": "on-failure", "maximum_retry_count": 3}
    assert doc["spec"]["cmd"] == ["sh", "-c", "echo hi"]
    assert doc["spec"]["entrypoint"] == []
    assert doc["spec"]["healthcheck"]["test"] == ["CMD-SHELL", "true"]


def test_dumps_is_compact_and_sorted() -> None:
    text = dumps(RestartPolicy("always", 0))
    assert text == '{"maximum_retry_count":0,"name":"always"}'
    assert dumps(_full_container()) == dumps(_full_container())


def test_encode_plain_values() -> None:
    assert encode(ContainerStatus.RUNNING) == "running"
    assert encode((1, (2, 3))) == [1, [2, 3]]
    assert encode({1: "a"}) == {"1": "a"}
    assert encode(None) is None


def test_unknown_keys_ignored() -> None:
    doc = json.loads(dumps(_full_state()))
    doc["from_the_future"] = {"x": 1}
    back = loads(ContainerState, json.dumps(doc))
    assert back == _full_state()


def test_unknown_keys_ignored_in_nested() -> None:
    doc = json.loads(dumps(_full_container()))
    doc["spec"]["host"]["new_option"] = True
    doc["spec"]["healthcheck"]["new_field"] = 1
    assert loads(Container, json.dumps(doc)) == _full_container()


def test_missing_keys_take_defaults() -> None:
    back = loads(ContainerSpec, '{"image":"busybox","hostname":"h"}')
    assert back == ContainerSpec(image="busybox", hostname="h")
    assert back.host == HostSpec()
    assert back.host.shm_size == 64 * 1024 * 1024


def test_missing_nested_keys_take_defaults() -> None:
    back = loads(ContainerSpec, '{"image":"i","hostname":"h","host":{"memory":5}}')
    assert back.host == HostSpec(memory=5)
    back = loads(ContainerState, '{"status":"running"}')
    assert back == ContainerState(status=ContainerStatus.RUNNING)


def test_missing_required_key_fails() -> None:
    with pytest.raises(TypeError):
        loads(ContainerSpec, '{"image":"busybox"}')


def test_unknown_enum_value_fails() -> None:
    with pytest.raises(ValueError):
        loads(ContainerState, '{"status":"zombie"}')


def test_fixed_length_tuple_length_checked() -> None:
    with pytest.raises(ValueError):
        loads(HostSpec, '{"console_size":[1,2,3]}')


@dataclass(frozen=True)
class _Nested:
    pairs: tuple[tuple[str, int], ...] = ()
    table: dict[str, tuple[int, ...]] = field(default_factory=dict)
    maybe: _Inner | None = None


@dataclass(frozen=True)
class _Inner:
    status: ContainerStatus = ContainerStatus.CREATED


def test_decode_generic_shapes() -> None:
    value = _Nested((("a", 1), ("b", 2)), {"x": (1, 2)}, _Inner(ContainerStatus.DEAD))
    assert loads(_Nested, dumps(value)) == value
    assert decode(_Nested, {"maybe": None}) == _Nested()
