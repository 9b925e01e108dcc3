"""Container documents (create body in, inspect/list out) and the image-defaults merge."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api.schemas.containers import (
    human_duration,
    inspect_doc,
    parse_create,
    parse_host_config,
    status_text,
    summary_doc,
)
from dockyard.errors import InvalidArgument
from dockyard.model.containers import (
    Container,
    ContainerSpec,
    ContainerState,
    ContainerStatus,
    HostSpec,
    RestartPolicy,
    merge_image_config,
)
from dockyard.model.health import Health, HealthStatus, ProbeResult
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.model.times import format_ns, parse_ns

MB = 1024 * 1024
SEC = 1_000_000_000
STARTED = "2026-11-27T19:52:41.000000000Z"
STARTED_NS = parse_ns(STARTED)


# ---- parse_create ----------------------------------------------------------------------


def test_minimal_create() -> None:
    spec = parse_create({"Image": "busybox"}, "abc123def456")
    assert spec == ContainerSpec(image="busybox", hostname="abc123def456")
    assert spec.cmd is None and spec.entrypoint is None
    assert spec.host == HostSpec()


def test_full_create() -> None:
    body = {
        "Image": "busybox:latest",
        "Hostname": "web",
        "Domainname": "example.org",
        "User": "app",
        "Env": ["A=1", "B=2"],
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": ["/init"],
        "WorkingDir": "/srv",
        "Labels": {"a": "1"},
        "Tty": True,
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": False,
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGINT",
        "StopTimeout": 3,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5 * SEC, "Retries": 2},
        "MacAddress": "02:42:ac:11:00:02",
        "NetworkDisabled": True,
    }
    spec = parse_create(body, "ignored")
    assert spec.image == "busybox:latest"
    assert spec.hostname == "web"
    assert spec.domainname == "example.org"
    assert spec.user == "app"
    assert spec.env == ("A=1", "B=2")
    assert spec.cmd == ("sh", "-c", "echo hi")
    assert spec.entrypoint == ("/init",)
    assert spec.working_dir == "/srv"
    assert spec.labels == {"a": "1"}
    assert (
        spec.tty
        and spec.open_stdin
        and spec.stdin_once
        and spec.attach_stdin
        and spec.attach_stdout
    )
    assert not spec.attach_stderr
    assert spec.exposed_ports == ("53/udp", "80/tcp")
    assert spec.volumes == ("/data",)
    assert spec.stop_signal == "SIGINT"
    assert spec.stop_timeout == 3
    assert spec.healthcheck == HealthConfig(("CMD", "true"), interval_ns=5 * SEC, retries=2)
    assert spec.mac_address == "02:42:ac:11:00:02"
    assert spec.network_disabled


def test_string_cmd_and_entrypoint_are_one_word() -> None:
    spec = parse_create({"Image": "i", "Cmd": "echo hi", "Entrypoint": ""}, "h")
    assert spec.cmd == ("echo hi",)
    assert spec.entrypoint == ("",)


def test_null_versus_empty_lists() -> None:
    spec = parse_create({"Image": "i", "Cmd": None, "Entrypoint": []}, "h")
    assert spec.cmd is None
    assert spec.entrypoint == ()


def test_stop_timeout_zero_kept() -> None:
    assert parse_create({"Image": "i", "StopTimeout": 0}, "h").stop_timeout == 0
    assert parse_create({"Image": "i"}, "h").stop_timeout is None


def test_empty_healthcheck_is_none() -> None:
    assert parse_create({"Image": "i", "Healthcheck": {}}, "h").healthcheck is None
    assert parse_create({"Image": "i", "Healthcheck": None}, "h").healthcheck is None


@pytest.mark.parametrize("body", [{}, {"Image": ""}, {"Image": None}, {"Cmd": ["sh"]}, None])
def test_missing_image(body: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_create(body, "h")
    assert info.value.message == "config cannot be empty in order to create a container"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ([], "container config"),
        ("busybox", "container config"),
        ({"Image": "i", "Env": "A=1B", "Cmd": 5}, "Cmd"),
        ({"Image": "i", "Env": [1, 2]}, "Env"),
        ({"Image": "i", "Env": {"A": "1"}}, "Env"),
        ({"Image": "i", "Entrypoint": [None]}, "Entrypoint"),
        ({"Image": "i", "Labels": ["a=1"]}, "Labels"),
        ({"Image": "i", "ExposedPorts": ["80/tcp"]}, "ExposedPorts"),
        ({"Image": "i", "Volumes": "/data"}, "Volumes"),
        ({"Image": "i", "StopTimeout": "10"}, "StopTimeout"),
        ({"Image": "i", "StopTimeout": True}, "StopTimeout"),
        ({"Image": "i", "Healthcheck": ["CMD", "true"]}, "Healthcheck"),
        ({"Image": "i", "Healthcheck": {"Test": ["CMD"], "Interval": "5s"}}, "Healthcheck.Interval"),
        ({"Image": "i", "HostConfig": []}, "HostConfig"),
        ({"Image": "i", "HostConfig": {"Memory": "64m"}}, "Memory"),
        ({"Image": "i", "HostConfig": {"Memory": True}}, "Memory"),
        ({"Image": "i", "HostConfig": {"Binds": "/a:/b"}}, None),  # a lone string is accepted
        ({"Image": "i", "HostConfig": {"Binds": [1]}}, "Binds"),
        ({"Image": "i", "HostConfig": {"CapAdd": [None]}}, "CapAdd"),
        ({"Image": "i", "HostConfig": {"RestartPolicy": "always"}}, "RestartPolicy"),
        ({"Image": "i", "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": "3"}}},
         "MaximumRetryCount"),
        ({"Image": "i", "HostConfig": {"PortBindings": []}}, "PortBindings"),
        ({"Image": "i", "HostConfig": {"ConsoleSize": ["a", "b"]}}, "ConsoleSize"),
        ({"Image": "i", "HostConfig": {"NanoCpus": "1.5"}}, "NanoCpus"),
        ({"Image": "i", "HostConfig": {"Tmpfs": ["/run"]}}, "Tmpfs"),
        ({"Image": "i", "HostConfig": {"Sysctls": "a=b"}}, "Sysctls"),
    ],
)  # fmt: skip
def test_wrong_types(body: Any, what: str | None) -> None:
    if what is None:
        assert parse_create(body, "h").host.binds == ("/a:/b",)
        return
    with pytest.raises(InvalidArgument) as info:
        parse_create(body, "h")
    assert info.value.message.startswith(f"invalid {what}: expected ")


def test_numbers_accept_floats() -> None:
    host = parse_host_config({"Memory": 64.0 * MB, "NanoCpus": 1.5e9})
    assert host.memory == 64 * MB and host.nano_cpus == 1_500_000_000


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, RestartPolicy("no", 0)),
        ({}, RestartPolicy("no", 0)),
        ({"Name": ""}, RestartPolicy("no", 0)),
        ({"Name": "no"}, RestartPolicy("no", 0)),
        ({"Name": "always"}, RestartPolicy("always", 0)),
        ({"Name": "unless-stopped", "MaximumRetryCount": 0}, RestartPolicy("unless-stopped", 0)),
        ({"Name": "on-failure"}, RestartPolicy("on-failure", 0)),
        ({"Name": "on-failure", "MaximumRetryCount": 5}, RestartPolicy("on-failure", 5)),
    ],
)
def test_restart_policy(policy: Any, expected: RestartPolicy) -> None:
    assert parse_host_config({"RestartPolicy": policy}).restart_policy == expected


@pytest.mark.parametrize("name", ["sometimes", "Always", "on_failure"])
def test_restart_policy_unknown_name(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config({"RestartPolicy": {"Name": name}})
    assert info.value.message == (
        f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', "
        "or 'unless-stopped'"
    )


@pytest.mark.parametrize("name", ["always", "unless-stopped", "no"])
def test_restart_policy_retry_count_only_with_on_failure(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config({"RestartPolicy": {"Name": name, "MaximumRetryCount": 3}})
    assert info.value.message == (
        "invalid restart policy: maximum retry count can only be used with 'on-failure'"
    )


def test_restart_policy_negative_retry_count() -> None:
    with pytest.raises(InvalidArgument, match="maximum retry count cannot be negative"):
        parse_host_config({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -2}})


@pytest.mark.parametrize("memory", [1, 1024, 6 * MB - 1, -1])
def test_memory_below_6mb(memory: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_host_config({"Memory": memory})
    assert info.value.message == "Minimum memory limit allowed is 6MB"


@pytest.mark.parametrize("memory", [0, None, 6 * MB, 512 * MB])
def test_memory_allowed(memory: int | None) -> None:
    assert parse_host_config({"Memory": memory}).memory == (memory or 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([24, 80], (24, 80)),
        (None, (0, 0)),
        ([], (0, 0)),
        ([0, 0], (0, 0)),
        ([24], (24, 0)),  # Go decodes into [2]uint: missing entries are 0
        ([1, 2, 3], (1, 2)),  # and extra ones are dropped
    ],
)
def test_console_size(value: Any, expected: tuple[int, int]) -> None:
    assert parse_host_config({"ConsoleSize": value}).console_size == expected


def test_console_size_number_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        parse_host_config({"ConsoleSize": 5})


def test_port_bindings() -> None:
    host = parse_host_config(
        {
            "PortBindings": {
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "::", "HostPort": "8080"},
                ],
                "53/udp": [{"HostPort": "5353"}],
                "443/tcp": [{}],
                "22/tcp": None,
                "9000/tcp": [None],
                "7/tcp": [{"HostIp": None, "HostPort": 7007}],
            }
        }
    )
    assert host.port_bindings == {
        "80/tcp": (("0.0.0.0", "8080"), ("::", "8080")),
        "53/udp": (("", "5353"),),
        "443/tcp": (("", ""),),
        "22/tcp": (),
        "9000/tcp": (("", ""),),
        "7/tcp": (("", "7007"),),
    }


@pytest.mark.parametrize("bindings", ["8080", [5], ["0.0.0.0:8080"]])
def test_port_bindings_wrong_shape_is_invalid_argument(bindings: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_host_config({"PortBindings": {"80/tcp": bindings}})


def test_pids_limit_wrong_type() -> None:
    with pytest.raises(InvalidArgument):
        parse_host_config({"PidsLimit": "abc"})


def test_host_config_fields() -> None:
    host = parse_host_config(
        {
            "Binds": ["/a:/b:ro"],
            "NetworkMode": "host",
            "AutoRemove": True,
            "Runtime": "crun",
            "Privileged": True,
            "PublishAllPorts": True,
            "ReadonlyRootfs": True,
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["ALL"],
            "Dns": ["1.1.1.1"],
            "DnsOptions": ["ndots:2"],
            "DnsSearch": ["example.org"],
            "ExtraHosts": ["h:1.2.3.4"],
            "SecurityOpt": ["no-new-privileges"],
            "Tmpfs": {"/run": "size=1m"},
            "Init": True,
            "MemorySwap": -1,
            "NanoCpus": 1_500_000_000,
            "CpuShares": 512,
            "PidsLimit": 100,
            "ShmSize": 128 * MB,
            "OomKillDisable": False,
            "LogConfig": {"Type": "local", "Config": {"max-size": "1m"}},
            "IpcMode": "shareable",
            "PidMode": "host",
            "UTSMode": "host",
            "GroupAdd": ["audio"],
            "Sysctls": {"kernel.shmmax": "1024"},
        }
    )
    assert host.binds == ("/a:/b:ro",)
    assert host.network_mode == "host"
    assert host.auto_remove and host.privileged and host.publish_all_ports and host.readonly_rootfs
    assert host.runtime == "crun"
    assert host.cap_add == ("NET_ADMIN",) and host.cap_drop == ("ALL",)
    assert (
        host.dns == ("1.1.1.1",)
        and host.dns_options == ("ndots:2",)
        and host.dns_search == ("example.org",)
    )
    assert host.extra_hosts == ("h:1.2.3.4",)
    assert host.security_opt == ("no-new-privileges",)
    assert host.tmpfs == {"/run": "size=1m"}
    assert host.init is True
    assert host.memory_swap == -1 and host.nano_cpus == 1_500_000_000 and host.cpu_shares == 512
    assert host.pids_limit == 100
    assert host.shm_size == 128 * MB
    assert host.oom_kill_disable is False
    assert host.log_config.type == "local" and host.log_config.config == {"max-size": "1m"}
    assert (host.ipc_mode, host.pid_mode, host.uts_mode) == ("shareable", "host", "host")
    assert host.group_add == ("audio",)
    assert host.sysctls == {"kernel.shmmax": "1024"}


def test_host_config_defaults() -> None:
    host = parse_host_config({})
    assert host == HostSpec()
    assert host.shm_size == 64 * MB
    assert host.network_mode == "default"
    assert host.ipc_mode == "private"
    assert host.log_config.type == ""  # the daemon's default driver, chosen at create
    assert parse_host_config({"ShmSize": 0}).shm_size == 64 * MB


# ---- merge_image_config ----------------------------------------------------------------


def _spec(**kw: Any) -> ContainerSpec:
    return ContainerSpec(image="img", hostname="h", **kw)


IMAGE = ImageConfig(
    user="nobody",
    env=("PATH=/usr/bin:/bin", "LANG=C"),
    entrypoint=("/entry",),
    cmd=("serve", "--port", "80"),
    working_dir="/app",
    labels={"maintainer": "x", "tier": "image"},
    exposed_ports=("80/tcp",),
    volumes=("/data",),
    stop_signal="SIGQUIT",
    on_build=("RUN echo",),
    shell=("/bin/bash", "-c"),
    healthcheck=HealthConfig(("CMD", "check"), interval_ns=30 * SEC, timeout_ns=5 * SEC, retries=3),
)


def test_merge_takes_image_defaults() -> None:
    merged = merge_image_config(_spec(), IMAGE)
    assert merged.user == "nobody"
    assert merged.env == ("PATH=/usr/bin:/bin", "LANG=C")
    assert merged.entrypoint == ("/entry",)
    assert merged.cmd == ("serve", "--port", "80")
    assert merged.argv == ("/entry", "serve", "--port", "80")
    assert merged.working_dir == "/app"
    assert merged.labels == {"maintainer": "x", "tier": "image"}
    assert merged.exposed_ports == ("80/tcp",)
    assert merged.volumes == ("/data",)
    assert merged.stop_signal == "SIGQUIT"
    assert merged.on_build == ("RUN echo",)
    assert merged.shell == ("/bin/bash", "-c")
    assert merged.healthcheck == IMAGE.healthcheck


def test_merge_user_values_win() -> None:
    hc = HealthConfig(
        ("CMD", "mine"), interval_ns=1 * SEC, timeout_ns=1 * SEC, start_period_ns=1, retries=1
    )
    merged = merge_image_config(
        _spec(user="root", working_dir="/w", stop_signal="SIGTERM", labels={"tier": "user", "x": "1"},
              exposed_ports=("53/udp", "80/tcp"), volumes=("/cache",), healthcheck=hc),
        IMAGE,
    )  # fmt: skip
    assert merged.user == "root"
    assert merged.working_dir == "/w"
    assert merged.stop_signal == "SIGTERM"
    assert merged.labels == {"maintainer": "x", "tier": "user", "x": "1"}
    assert merged.exposed_ports == ("53/udp", "80/tcp")
    assert merged.volumes == ("/cache", "/data")
    assert merged.healthcheck == hc


def test_merge_env_by_key() -> None:
    merged = merge_image_config(_spec(env=("LANG=en_US.UTF-8", "EXTRA=1")), IMAGE)
    assert sorted(merged.env) == sorted(["PATH=/usr/bin:/bin", "LANG=en_US.UTF-8", "EXTRA=1"])
    assert "LANG=C" not in merged.env


def test_merge_env_key_without_value() -> None:
    merged = merge_image_config(_spec(env=("PATH",)), IMAGE)
    assert "PATH=/usr/bin:/bin" not in merged.env
    assert "PATH" in merged.env


def test_merge_env_order_as_dockerd() -> None:
    merged = merge_image_config(_spec(env=("EXTRA=1", "LANG=en_US.UTF-8")), IMAGE)
    assert merged.env == ("EXTRA=1", "LANG=en_US.UTF-8", "PATH=/usr/bin:/bin")


def test_merge_user_cmd_replaces_image_cmd_keeps_entrypoint() -> None:
    merged = merge_image_config(_spec(cmd=("other",)), IMAGE)
    assert merged.entrypoint == ("/entry",)
    assert merged.cmd == ("other",)


def test_merge_user_entrypoint_drops_image_cmd() -> None:
    merged = merge_image_config(_spec(entrypoint=("/bin/sh",)), IMAGE)
    assert merged.entrypoint == ("/bin/sh",)
    assert merged.cmd is None
    assert merged.argv == ("/bin/sh",)


def test_merge_user_entrypoint_and_cmd() -> None:
    merged = merge_image_config(_spec(entrypoint=("/bin/sh",), cmd=("-c", "x")), IMAGE)
    assert merged.argv == ("/bin/sh", "-c", "x")


def test_merge_empty_entrypoint_list_means_image_cmd_without_entrypoint() -> None:
    # `Entrypoint: []` (not null): keep no entrypoint, but the image Cmd fills in
    merged = merge_image_config(_spec(entrypoint=()), IMAGE)
    assert merged.entrypoint == ()
    assert merged.cmd == ("serve", "--port", "80")


def test_merge_empty_string_entrypoint_without_cmd() -> None:
    # `--entrypoint ""`: [""] counts as given (dockerd's len != 0), so the image Cmd is not taken
    merged = merge_image_config(_spec(entrypoint=("",)), IMAGE)
    assert merged.entrypoint == ()
    assert merged.cmd is None
    assert merged.argv == ()


def test_merge_empty_string_entrypoint_with_cmd() -> None:
    merged = merge_image_config(_spec(entrypoint=("",), cmd=("ls", "-l")), IMAGE)
    assert merged.entrypoint == ()
    assert merged.argv == ("ls", "-l")


def test_merge_empty_cmd_list_takes_image_cmd() -> None:
    merged = merge_image_config(_spec(cmd=()), IMAGE)
    assert merged.cmd == ("serve", "--port", "80")


def test_merge_image_without_entrypoint() -> None:
    image = ImageConfig(cmd=("sh",))
    assert merge_image_config(_spec(), image).argv == ("sh",)
    assert merge_image_config(_spec(cmd=("echo", "x")), image).argv == ("echo", "x")
    merged = merge_image_config(_spec(), ImageConfig())
    assert merged.cmd is None and merged.entrypoint is None and merged.argv == ()


def test_merge_healthcheck_none_both() -> None:
    assert merge_image_config(_spec(), ImageConfig()).healthcheck is None


def test_merge_partial_healthcheck_as_dockerd() -> None:
    merged = merge_image_config(_spec(healthcheck=HealthConfig(interval_ns=5 * SEC)), IMAGE)
    assert merged.healthcheck == HealthConfig(
        ("CMD", "check"), interval_ns=5 * SEC, timeout_ns=5 * SEC, retries=3
    )


# ---- human_duration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "Less than a second"),
        (0.5, "Less than a second"),
        (0.999, "Less than a second"),
        (-3, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (59, "59 seconds"),
        (59.99, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (364 * 86400, "12 months"),
        (730 * 86400, "2 years"),
        (5 * 365 * 86400, "5 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(9000, "3 hours"), (16200, "5 hours")])
def test_human_duration_half_hour_rounds_up(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_human_duration_years_use_unrounded_hours() -> None:
    assert human_duration(3 * 365 * 86400 - 1000) == "2 years"


# ---- status_text, summary_doc, inspect_doc ---------------------------------------------


def _container(
    status: ContainerStatus = ContainerStatus.CREATED,
    *,
    spec: ContainerSpec | None = None,
    **state: Any,
) -> Container:
    return Container(
        id="0123456789ab" + "c" * 52,
        name="web",
        created="2026-11-27T19:52:40.500000000Z",
        image_id="sha256:" + "d" * 64,
        spec=spec or ContainerSpec(image="busybox", hostname="0123456789ab", cmd=("sleep", "60")),
        state=ContainerState(status=status, **state),
        runtime="runc",
        rw_layer="rw",
    )


@pytest.mark.parametrize(
    ("status", "state", "text"),
    [
        (ContainerStatus.CREATED, {}, "Created"),
        (ContainerStatus.RUNNING, {"started_at": STARTED}, "Up 5 minutes"),
        (ContainerStatus.PAUSED, {"started_at": STARTED}, "Up 5 minutes (Paused)"),
        (
            ContainerStatus.RESTARTING,
            {"exit_code": 1, "finished_at": STARTED},
            "Restarting (1) 5 minutes ago",
        ),
        (ContainerStatus.REMOVING, {}, "Removal In Progress"),
        (ContainerStatus.DEAD, {}, "Dead"),
        (
            ContainerStatus.EXITED,
            {"exit_code": 137, "finished_at": STARTED},
            "Exited (137) 5 minutes ago",
        ),
        (
            ContainerStatus.EXITED,
            {"exit_code": 0, "finished_at": STARTED},
            "Exited (0) 5 minutes ago",
        ),
    ],
)
def test_status_text(status: ContainerStatus, state: dict[str, Any], text: str) -> None:
    now = STARTED_NS + 5 * 60 * SEC + 7 * SEC
    assert status_text(_container(status, **state), now) == text


def test_status_text_just_started() -> None:
    c = _container(ContainerStatus.RUNNING, started_at=STARTED)
    assert status_text(c, STARTED_NS + SEC // 2) == "Up Less than a second"
    assert status_text(c, STARTED_NS + 3600 * SEC) == "Up About an hour"


def test_summary_doc_shape() -> None:
    spec = ContainerSpec(
        image="busybox:latest",
        hostname="h",
        entrypoint=("/entry",),
        cmd=("sh", "-c", "echo hi"),
        labels={"a": "1"},
        host=HostSpec(network_mode="bridge"),
    )
    c = _container(ContainerStatus.CREATED, spec=spec)
    doc = summary_doc(c)
    assert doc["Id"] == c.id
    assert doc["Names"] == ["/web"]
    assert doc["Image"] == "busybox:latest"
    assert doc["ImageID"] == "sha256:" + "d" * 64
    assert doc["Command"] == "/entry sh -c 'echo hi'"
    assert doc["Created"] == parse_ns("2026-11-27T19:52:40Z") // SEC
    assert isinstance(doc["Created"], int)
    assert doc["Labels"] == {"a": "1"}
    assert doc["State"] == "created"
    assert doc["Status"] == "Created"
    assert doc["HostConfig"] == {"NetworkMode": "bridge"}
    assert doc["Ports"] == [] and doc["Mounts"] == []
    assert doc["NetworkSettings"] == {"Networks": {}}


def test_summary_doc_command_without_argv() -> None:
    c = _container(spec=ContainerSpec(image="i", hostname="h"))
    assert summary_doc(c)["Command"] == ""


def test_summary_doc_command_quoting_as_dockerd() -> None:
    c = _container(spec=ContainerSpec(image="i", hostname="h", cmd=("sh", "-c", "echo it's")))
    assert summary_doc(c)["Command"] == "sh -c 'echo it's'"


PATHS = {
    "resolv": "/r/resolv.conf",
    "hostname": "/r/hostname",
    "hosts": "/r/hosts",
    "log": "/r/ctr.log",
}


def test_inspect_doc_shape() -> None:
    spec = ContainerSpec(
        image="busybox", hostname="h", entrypoint=("/entry", "-v"), cmd=("run", "x")
    )
    c = _container(
        ContainerStatus.RUNNING, spec=spec, pid=4242, started_at=STARTED, restart_count=2
    )
    doc = inspect_doc(c, PATHS, {"UpperDir": "/u"})
    assert doc["Id"] == c.id
    assert doc["Name"] == "/web"
    assert doc["Created"] == "2026-11-27T19:52:40.500000000Z"
    assert doc["Path"] == "/entry"
    assert doc["Args"] == ["-v", "run", "x"]
    assert doc["Image"] == "sha256:" + "d" * 64
    assert doc["RestartCount"] == 2
    assert doc["ResolvConfPath"] == "/r/resolv.conf"
    assert doc["HostnamePath"] == "/r/hostname"
    assert doc["HostsPath"] == "/r/hosts"
    assert doc["LogPath"] == "/r/ctr.log"
    assert doc["GraphDriver"] == {"Name": "overlayfs", "Data": {"UpperDir": "/u"}}
    assert doc["HostConfig"]["Runtime"] == "runc"
    assert doc["Config"]["Image"] == "busybox"
    assert doc["Config"]["Entrypoint"] == ["/entry", "-v"]
    assert doc["Config"]["Cmd"] == ["run", "x"]
    state = doc["State"]
    assert set(state) == {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                          "ExitCode", "Error", "StartedAt", "FinishedAt"}  # fmt: skip
    assert state["Status"] == "running"
    assert state["Running"] is True and state["Paused"] is False
    assert state["Pid"] == 4242
    assert state["StartedAt"] == STARTED
    assert state["FinishedAt"] == "0001-01-01T00:00:00Z"


def test_inspect_doc_without_argv() -> None:
    doc = inspect_doc(_container(spec=ContainerSpec(image="i", hostname="h")), PATHS, {})
    assert doc["Path"] == "" and doc["Args"] == []
    assert doc["Config"]["Cmd"] is None and doc["Config"]["Entrypoint"] is None


@pytest.mark.parametrize(
    ("status", "running", "paused", "restarting", "dead"),
    [
        (ContainerStatus.CREATED, False, False, False, False),
        (ContainerStatus.RUNNING, True, False, False, False),
        (ContainerStatus.PAUSED, True, True, False, False),
        (ContainerStatus.RESTARTING, False, False, True, False),
        (ContainerStatus.REMOVING, False, False, False, False),
        (ContainerStatus.EXITED, False, False, False, False),
        (ContainerStatus.DEAD, False, False, False, True),
    ],
)
def test_inspect_state_flags(
    status: ContainerStatus, running: bool, paused: bool, restarting: bool, dead: bool
) -> None:
    state = inspect_doc(
        _container(status, pid=99, exit_code=3, oom_killed=True, error="e"), PATHS, {}
    )["State"]
    assert state["Status"] == status.value
    assert (state["Running"], state["Paused"], state["Restarting"], state["Dead"]) == (
        running, paused, restarting, dead,
    )  # fmt: skip
    assert state["Pid"] == (99 if running else 0)
    assert state["ExitCode"] == 3 and state["OOMKilled"] is True and state["Error"] == "e"


def test_inspect_masked_paths_follow_privileged() -> None:
    doc = inspect_doc(_container(), PATHS, {})
    assert "/proc/kcore" in doc["HostConfig"]["MaskedPaths"]
    assert "/proc/sys" in doc["HostConfig"]["ReadonlyPaths"]
    spec = ContainerSpec(image="i", hostname="h", host=HostSpec(privileged=True))
    doc = inspect_doc(_container(spec=spec), PATHS, {})
    assert doc["HostConfig"]["MaskedPaths"] is None and doc["HostConfig"]["ReadonlyPaths"] is None


def test_inspect_port_bindings_and_restart_policy() -> None:
    spec = ContainerSpec(
        image="i",
        hostname="h",
        host=HostSpec(
            port_bindings={"80/tcp": (("0.0.0.0", "8080"),)},
            restart_policy=RestartPolicy("on-failure", 2),
        ),
    )
    host = inspect_doc(_container(spec=spec), PATHS, {})["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_create_then_inspect_round_trip() -> None:
    body = {
        "Image": "busybox",
        "Env": ["A=1"],
        "Cmd": ["echo", "hi"],
        "HostConfig": {
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Memory": 64 * MB,
        },
    }
    c = _container(spec=parse_create(body, "h"))
    doc = inspect_doc(c, PATHS, {})
    assert doc["Config"]["Env"] == ["A=1"]
    assert doc["Config"]["Cmd"] == ["echo", "hi"]
    assert doc["HostConfig"]["PortBindings"] == body["HostConfig"]["PortBindings"]  # type: ignore[index]
    assert doc["HostConfig"]["Memory"] == 64 * MB


def test_format_ns_used_for_started() -> None:
    # sanity of the fixture: STARTED is what format_ns produces
    assert format_ns(STARTED_NS) == STARTED


# ---- API 1.50 details: omitempty fields, health, sizes, exec ids ----------------------


def _with_health(c: Container, health: Health | None) -> Container:
    from dataclasses import replace

    return replace(c, health=health)


def test_state_has_no_health_without_one() -> None:
    assert "Health" not in inspect_doc(_container(ContainerStatus.RUNNING), PATHS, {})["State"]


def test_state_health_with_its_log() -> None:
    probe = ProbeResult(start_ns=STARTED_NS, end_ns=STARTED_NS + 1500, exit_code=1, output="bad\n")
    c = _with_health(_container(ContainerStatus.RUNNING), Health(HealthStatus.UNHEALTHY, 3, (probe,)))
    health = inspect_doc(c, PATHS, {})["State"]["Health"]
    assert health == {
        "Status": "unhealthy",
        "FailingStreak": 3,
        "Log": [{"Start": STARTED, "End": "2026-11-27T19:52:41.000001500Z", "ExitCode": 1, "Output": "bad\n"}],
    }
    assert parse_ns(health["Log"][0]["End"]) == STARTED_NS + 1500


def test_state_health_starting_has_an_empty_log() -> None:
    c = _with_health(_container(ContainerStatus.RUNNING), Health())
    assert inspect_doc(c, PATHS, {})["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}


def test_healthcheck_fields_are_omitempty() -> None:
    spec = ContainerSpec(image="i", hostname="h", healthcheck=HealthConfig(test=("CMD-SHELL", "true")))
    assert inspect_doc(_container(spec=spec), PATHS, {})["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"]}
    full = HealthConfig(test=("CMD", "x"), interval_ns=SEC, timeout_ns=2 * SEC, start_period_ns=3 * SEC,
                        start_interval_ns=4 * SEC, retries=5)  # fmt: skip
    spec = ContainerSpec(image="i", hostname="h", healthcheck=full)
    assert inspect_doc(_container(spec=spec), PATHS, {})["Config"]["Healthcheck"] == {
        "Test": ["CMD", "x"], "Interval": SEC, "Timeout": 2 * SEC, "StartPeriod": 3 * SEC,
        "StartInterval": 4 * SEC, "Retries": 5,
    }  # fmt: skip


def test_config_omitempty_fields() -> None:
    config = inspect_doc(_container(), PATHS, {})["Config"]
    for key in ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress", "StopSignal",
                "StopTimeout", "Shell"):  # fmt: skip
        assert key not in config
    spec = ContainerSpec(image="i", hostname="h", mac_address="02:42:ac:11:00:02", stop_signal="SIGINT",
                         stop_timeout=0, exposed_ports=("80/tcp",), network_disabled=True, shell=("/bin/sh", "-c"))  # fmt: skip
    config = inspect_doc(_container(spec=spec), PATHS, {})["Config"]
    assert config["MacAddress"] == "02:42:ac:11:00:02" and config["StopSignal"] == "SIGINT"
    assert config["StopTimeout"] == 0  # a *int: zero is set, only nil is left out
    assert config["ExposedPorts"] == {"80/tcp": {}} and config["NetworkDisabled"] is True
    assert config["Shell"] == ["/bin/sh", "-c"]


def test_exec_ids_null_when_none() -> None:
    assert inspect_doc(_container(), PATHS, {})["ExecIDs"] is None
    assert inspect_doc(_container(), PATHS, {}, exec_ids=("e1", "e2"))["ExecIDs"] == ["e1", "e2"]


def test_inspect_sizes_only_when_asked_and_shown_when_zero() -> None:
    doc = inspect_doc(_container(), PATHS, {})
    assert "SizeRw" not in doc and "SizeRootFs" not in doc
    doc = inspect_doc(_container(), PATHS, {}, size_rw=0, size_root_fs=4096)
    assert doc["SizeRw"] == 0 and doc["SizeRootFs"] == 4096


def test_summary_sizes_are_omitempty() -> None:
    assert "SizeRw" not in summary_doc(_container()) and "SizeRootFs" not in summary_doc(_container())
    doc = summary_doc(_container(), size_rw=0, size_root_fs=4096)
    assert "SizeRw" not in doc and doc["SizeRootFs"] == 4096
    assert summary_doc(_container(), size_rw=12, size_root_fs=4096)["SizeRw"] == 12


def test_summary_host_config_annotations() -> None:
    spec = ContainerSpec(image="i", hostname="h", host=HostSpec(annotations={"a": "b"}))
    assert summary_doc(_container(spec=spec))["HostConfig"] == {"NetworkMode": "default", "Annotations": {"a": "b"}}


def test_mounts_list_binds_and_api_mounts_but_not_tmpfs_option() -> None:
    """dockerd's MountPoints come from Binds and HostConfig.Mounts; --tmpfs is not one."""
    body = {"Image": "i", "HostConfig": {"Binds": ["/a:/a:ro"], "Tmpfs": {"/run": "size=1m"},
                                         "Mounts": [{"Type": "tmpfs", "Target": "/t"},
                                                    {"Type": "bind", "Source": "/s", "Target": "/d"}]}}  # fmt: skip
    c = _container(spec=parse_create(body, "h"))
    mounts = inspect_doc(c, PATHS, {})["Mounts"]
    assert mounts == [
        {"Type": "bind", "Source": "/a", "Destination": "/a", "Mode": "ro", "RW": False, "Propagation": "rprivate"},
        {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": "/s", "Destination": "/d", "Mode": "", "RW": True, "Propagation": "rprivate"},
    ]
    assert summary_doc(c)["Mounts"] == mounts


def test_a_runtime_beside_hostconfig_is_taken_when_hostconfig_names_none() -> None:
    """docker-py sends create_container(runtime=...) as a top-level Runtime."""
    assert parse_create({"Image": "busybox", "Runtime": "runc"}, "h").host.runtime == "runc"
    both = {"Image": "busybox", "Runtime": "runc", "HostConfig": {"Runtime": "crun"}}
    assert parse_create(both, "h").host.runtime == "crun"
    assert parse_create({"Image": "busybox"}, "h").host.runtime == ""
