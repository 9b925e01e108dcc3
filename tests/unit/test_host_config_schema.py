"""HostConfig in (every option becomes part of the spec or a 400 naming it) and out (inspect)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api.schemas.containers import parse_create
from dockyard.api.schemas.host_config import host_config_doc, parse_host_config
from dockyard.errors import InvalidArgument
from dockyard.model.hostconfig import (
    DeviceMapping,
    DeviceRule,
    DeviceType,
    NamespaceKind,
    SecurityOptions,
    Ulimit,
)

MB = 1024 * 1024


def test_resources_are_parsed() -> None:
    h = parse_host_config({
        "Memory": 64 * MB, "MemoryReservation": 32 * MB, "MemorySwappiness": 10, "CpuPeriod": 50000,
        "CpuQuota": 25000, "CpusetCpus": "0", "CpusetMems": "0", "BlkioWeight": 300, "OomKillDisable": True,
        "OomScoreAdj": 100, "CgroupParent": "parent/child/", "PidsLimit": 20,
    })  # fmt: skip
    assert (h.memory, h.memory_swap, h.memory_reservation, h.memory_swappiness) == (64 * MB, 128 * MB, 32 * MB, 10)
    assert (h.cpu_period, h.cpu_quota, h.cpuset_cpus, h.cpuset_mems) == (50000, 25000, "0", "0")
    assert h.blkio_weight == 300 and h.oom_kill_disable is True and h.oom_score_adj == 100
    assert h.cgroup_parent == "parent/child" and h.pids_limit == 20


def test_dockerd_defaults() -> None:
    h = parse_host_config({"Memory": 64 * MB, "MemorySwappiness": -1, "PidsLimit": -1})
    assert h.memory_swap == 128 * MB  # as much swap as memory
    assert h.memory_swappiness is None and h.pids_limit is None
    assert parse_host_config({"PidsLimit": 0}).pids_limit is None
    assert parse_host_config({"Memory": 64 * MB, "MemorySwap": -1}).memory_swap == -1
    assert parse_host_config({}).oom_kill_disable is False
    assert parse_host_config({"ShmSize": 0}).shm_size == 64 * MB


def test_devices_ulimits_rules_security() -> None:
    h = parse_host_config({
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"},
                    {"PathOnHost": "/dev/zero", "PathInContainer": "", "CgroupPermissions": ""}],
        "DeviceCgroupRules": ["c 1:3 rwm"],
        "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}, {"Name": "nofile", "Soft": 10, "Hard": 20}],
        "SecurityOpt": ["no-new-privileges"],
    })  # fmt: skip
    assert h.devices == (DeviceMapping("/dev/null", "/dev/mynull", "rw"), DeviceMapping("/dev/zero", "/dev/zero", "rwm"))
    assert h.device_cgroup_rules == (DeviceRule(DeviceType.CHAR, 1, 3, "rwm"),)
    assert h.ulimits == (Ulimit("nofile", 10, 20),)  # the last of a name wins
    assert h.security == SecurityOptions(no_new_privileges=True)


def test_isolation_default_is_kept() -> None:
    assert host_config_doc(parse_host_config({"Isolation": "default"}), "runc")["Isolation"] == "default"
    assert host_config_doc(parse_host_config({}), "runc")["Isolation"] == ""


def test_namespace_modes_typed() -> None:
    h = parse_host_config({"IpcMode": "container:db", "PidMode": "host", "UTSMode": "host", "CgroupnsMode": "private"})
    assert h.ipc.kind is NamespaceKind.CONTAINER and h.ipc.container == "db"
    assert h.pid.kind is NamespaceKind.HOST and h.uts.kind is NamespaceKind.HOST
    assert h.cgroupns.kind is NamespaceKind.PRIVATE
    assert parse_host_config({}).ipc_mode == "private" and parse_host_config({}).cgroupns_mode == "host"


def test_init_only_with_own_pid_namespace() -> None:
    assert parse_host_config({"Init": True}).init_enabled
    assert not parse_host_config({"Init": True, "PidMode": "host"}).init_enabled
    assert not parse_host_config({}).init_enabled


def test_api_mounts() -> None:
    h = parse_host_config({"Mounts": [
        {"Type": "bind", "Source": "/src/", "Target": "/dst", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 * MB, "Mode": 0o1770}},
    ]})  # fmt: skip
    bind, tmpfs = h.mounts
    assert (bind.source, bind.destination, bind.read_only, bind.propagation) == ("/src", "/dst", True, "rslave")
    assert tmpfs.options == ("size=1m", "mode=1770")  # dockerd's suffix: the largest that divides


def test_volume_driver_options_are_kept_and_shown_back() -> None:
    doc = {"Type": "volume", "Source": "v1", "Target": "/v",
           "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}  # fmt: skip
    (m,) = parse_host_config({"Mounts": [doc]}).mounts
    assert m.volume_options == (("device", "tmpfs"), ("type", "tmpfs"))
    assert host_config_doc(parse_host_config({"Mounts": [doc]}), "runc")["Mounts"] == [doc]
    with pytest.raises(InvalidArgument, match='volume driver "nfsplugin" not found'):
        parse_host_config({"Mounts": [{**doc, "VolumeOptions": {"DriverConfig": {"Name": "nfsplugin"}}}]})


BAD_HOST = [
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MB, "MemorySwap": 32 * MB}, "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 32 * MB}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemorySwap": -2, "Memory": 64 * MB}, "invalid MemorySwap -2"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 8 * MB, "MemoryReservation": 16 * MB}, "Minimum memory limit can not be less than memory reservation limit"),
    ({"Memory": 2**63}, "invalid Memory: expected an integer (int64), got number 9223372036854775808"),
    ({"CpuShares": 2**64}, "invalid CpuShares: expected an integer (int64)"),
    ({"PidsLimit": 2**63}, "invalid PidsLimit: expected an integer (int64)"),
    ({"Memory": 1.5}, "invalid Memory: expected an integer (int64), got number 1.5"),
    ({"CpuShares": -1}, "invalid CPU shares (-1): value must be a positive integer"),
    ({"NanoCpus": 1_000_000_000, "CpuPeriod": 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 1_000_000_000, "CpuQuota": 100000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 100}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"CpuQuota": 100}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"BlkioWeight": 70000}, "invalid BlkioWeight: expected an integer from 0 to 65535"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"Tmpfs": {"/x": 5}}, "invalid Tmpfs: expected a string, got number 5"),
    ({"Sysctls": {"kernel.shmmax": 1}}, "invalid Sysctls: expected a string"),
    ({"Sysctls": {"kernel.pid_max": "1"}}, "sysctl 'kernel.pid_max=1' is not allowed"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"}, "not allowed in host network namespace"),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"}, "not allowed in the hosts ipc namespace"),
    ({"CapAdd": ["BOGUS"]}, 'invalid CapAdd: unknown capability: "CAP_BOGUS"'),
    ({"CapDrop": ["BOGUS"]}, 'invalid CapDrop: unknown capability: "CAP_BOGUS"'),
    ({"ExtraHosts": ["db:x"]}, 'invalid IP address in add-host: "x"'),
    ({"ExtraHosts": ["db"]}, 'bad format for add-host: "db"'),
    ({"Dns": ["nope"]}, "IP address is not correctly formatted: nope"),
    ({"LogConfig": {"Type": "bogus"}}, "logger: no log driver named 'bogus' is registered"),
    ({"LogConfig": {"Type": "syslog"}}, "logger: log driver 'syslog' is not supported by this daemon"),
    ({"SecurityOpt": ["x"]}, 'invalid --security-opt 1: "x"'),
    ({"SecurityOpt": ["bogus=1"]}, 'invalid --security-opt 2: "bogus=1"'),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "bogus"}, "invalid PID mode: bogus"),
    ({"UTSMode": "bogus"}, "invalid UTS mode: bogus"),
    ({"CgroupnsMode": "bogus"}, "invalid cgroup namespace mode: bogus"),
    ({"UsernsMode": "private"}, 'invalid UsernsMode "private"'),
    ({"StorageOpt": {"size": "1G"}}, "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"),
    ({"DeviceRequests": [{"Count": -1}]}, "DeviceRequests (--gpus) are not supported"),
    ({"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
    ({"VolumeDriver": "x"}, "VolumeDriver (--volume-driver) is not supported yet"),
    ({"Links": ["a:b:c"]}, "bad format for links: a:b:c"),
    ({"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}]}, "BlkioDeviceReadBps is not supported"),
    ({"IOMaximumBandwidth": 1}, "QoS maximum bandwidth configuration is not supported on linux"),
    ({"CpuCount": 1}, "CpuCount is only supported on Windows"),
    ({"CpuRealtimeRuntime": 1}, "CpuRealtimeRuntime is not supported by this daemon"),
    ({"MaskedPaths": []}, "MaskedPaths cannot be set by this daemon yet"),
    ({"CgroupParent": "../escape"}, "it must not leave the cgroup hierarchy"),
    ({"Annotations": {"": "x"}}, "the empty string is not permitted as an annotation key"),
    ({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "x"}]}, "invalid device mode: x"),
    ({"DeviceCgroupRules": ["x 1:3 rwm"]}, "invalid device cgroup rule format: 'x 1:3 rwm'"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 2, "Hard": 1}]}, "ulimit soft limit must be less than or equal to hard limit"),
    ({"Mounts": [{"Type": "volume", "Source": "v/w", "Target": "/v"}]}, '"v/w" includes invalid characters'),
    ({"Mounts": [{"Type": "bogus", "Target": "/v"}]}, 'invalid mount config for type "bogus": mount type unknown'),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "rel"}]}, "invalid mount path: 'rel' mount path must be absolute"),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/"}]}, "destination can't be '/'"),
    ({"Mounts": [{"Type": "bind", "Target": "/x"}]}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Mounts": [{"Type": "tmpfs", "Source": "/a", "Target": "/x"}]}, "field Source must not be specified"),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/x", "BindOptions": {"Propagation": "bad"}}]},
     "invalid propagation mode: bad"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/x", "BindOptions": {}}]}, None),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/x", "BindOptions": {"Propagation": "shared"}}]},
     "field BindOptions must not be specified"),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/x"}], "Binds": ["/b:/x"]}, "Duplicate mount point: /x"),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/x"}], "Tmpfs": {"/x": ""}}, "Duplicate mount point: /x"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "words"), BAD_HOST)
def test_bad_host_config(doc: dict[str, Any], words: str | None) -> None:
    if words is None:
        parse_host_config(doc)
        return
    with pytest.raises(InvalidArgument) as info:
        parse_host_config(doc)
    assert words in info.value.message


BAD_CONFIG = [
    ({"WorkingDir": "rel/dir"}, "the working directory 'rel/dir' is invalid, it needs to be an absolute path"),
    ({"Env": ["=x"]}, "invalid environment variable: =x"),
    ({"Env": ["A=1\0"]}, "invalid environment variable: A=1\0"),
    ({"Hostname": "h" * 65}, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
    ({"Hostname": "a b"}, "invalid hostname 'a b'"),
    ({"Domainname": "d" * 300}, "is too long (maximum 64 bytes)"),
    ({"StopSignal": "BOGUS"}, "Invalid signal: BOGUS"),
    ({"Hostname": "web", "HostConfig": {"UTSMode": "host"}}, "conflicting options: hostname and the UTS mode"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Test": ["CMD", "true"], "Retries": -1}}, "Retries in Healthcheck cannot be negative"),
    ({"Labels": {"a": 1}}, "invalid Labels: expected a string"),
    ({"Tty": "yes"}, "invalid Tty: expected a boolean"),
    ({"User": 0}, "invalid User: expected a string"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "words"), BAD_CONFIG)
def test_bad_config(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_create({"Image": "busybox", **doc}, "h")
    assert words in info.value.message


def test_config_values_are_cleaned() -> None:
    spec = parse_create({"Image": "busybox", "WorkingDir": "/a//b/../c/", "StopSignal": "SIGUSR1", "Domainname": "x.org"}, "h")
    assert spec.working_dir == "/a/c" and spec.stop_signal == "SIGUSR1" and spec.domainname == "x.org"


def test_inspect_shows_every_option() -> None:
    h = parse_host_config({
        "Memory": 64 * MB, "CpuPeriod": 50000, "CpuQuota": 25000, "CpusetCpus": "0", "BlkioWeight": 300,
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}],
        "DeviceCgroupRules": ["c 1:3 rwm"], "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 1024}],
        "OomScoreAdj": 10, "CgroupParent": "p", "CgroupnsMode": "private", "UsernsMode": "host",
        "Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b"}], "Annotations": {"k": "v"},
        "MemorySwappiness": 5, "Init": True,
    })  # fmt: skip
    doc = host_config_doc(h, "runc")
    assert doc["Memory"] == 64 * MB and doc["MemorySwap"] == 128 * MB and doc["MemorySwappiness"] == 5
    assert (doc["CpuPeriod"], doc["CpuQuota"], doc["CpusetCpus"], doc["BlkioWeight"]) == (50000, 25000, "0", 300)
    assert doc["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]
    assert doc["DeviceCgroupRules"] == ["c 1:3 rwm"]
    assert doc["Ulimits"] == [{"Name": "nofile", "Hard": 1024, "Soft": 512}]
    assert (doc["OomScoreAdj"], doc["CgroupParent"], doc["CgroupnsMode"], doc["UsernsMode"]) == (10, "p", "private", "host")
    assert doc["Mounts"] == [{"Type": "bind", "Source": "/a", "Target": "/b"}]
    assert doc["Annotations"] == {"k": "v"} and doc["Init"] is True and doc["Runtime"] == "runc"
    empty = host_config_doc(parse_host_config({}), "runc")
    assert "Mounts" not in empty and empty["OomKillDisable"] is False and empty["Ulimits"] == []
    assert empty["DeviceCgroupRules"] is None and empty["MemorySwappiness"] is None and "Init" not in empty


def test_inspect_has_the_swagger_fields() -> None:
    doc = host_config_doc(parse_host_config({"Mounts": [{"Type": "tmpfs", "Target": "/t"}], "Annotations": {"a": "b"},
                                             "Tmpfs": {"/x": ""}, "Sysctls": {"net.ipv4.ip_forward": "1"},
                                             "Init": False}), "runc")  # fmt: skip
    swagger = {
        "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
        "VolumeDriver", "VolumesFrom", "Mounts", "ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode",
        "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj",
        "PidMode", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "Tmpfs", "UTSMode",
        "UsernsMode", "ShmSize", "Sysctls", "Runtime", "Isolation", "MaskedPaths", "ReadonlyPaths", "CpuShares",
        "Memory", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
        "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests",
        "MemoryReservation", "MemorySwap", "MemorySwappiness", "NanoCpus", "OomKillDisable", "Init", "PidsLimit",
        "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth",
    }  # fmt: skip
    # StorageOpt is omitted by dockerd when empty, as here (a non-empty one is refused).
    assert swagger - set(doc) == set()


# These are `omitempty` in moby's HostConfig (api/types/container/hostconfig.go, v28.2.2).
OMITEMPTY = {"Tmpfs", "Sysctls", "Runtime", "Annotations", "Mounts", "Init", "StorageOpt", "KernelMemoryTCP"}


def test_omitempty_fields_are_left_out_when_empty() -> None:
    doc = host_config_doc(parse_host_config({}), "")
    assert OMITEMPTY & set(doc) == set()
    # ...but the others stay, with Go's zero values (null for a nil slice).
    assert doc["Binds"] is None and doc["CapAdd"] is None and doc["Links"] is None and doc["ShmSize"] == 64 * MB


def test_init_false_is_shown_as_given() -> None:
    """Init is a *bool: false is set (shown), only nil is left out."""
    assert host_config_doc(parse_host_config({"Init": False}), "runc")["Init"] is False
    assert "Init" not in host_config_doc(parse_host_config({"Init": None}), "runc")


def test_tmpfs_and_sysctls_shown_when_set() -> None:
    doc = host_config_doc(parse_host_config({"Tmpfs": {"/run": "size=1m"}, "Sysctls": {"net.ipv4.ip_forward": "1"}}), "crun")
    assert doc["Tmpfs"] == {"/run": "size=1m"} and doc["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert doc["Runtime"] == "crun"


def test_field_names_match_as_gos_decoder_matches_them() -> None:
    from dockyard.api.schemas.fields import obj

    doc = obj({"detachKeys": "ctrl-a", "DetachKeys": "ctrl-b", "memory": 1}, "body")
    assert doc["DetachKeys"] == "ctrl-b"  # an exact match first
    assert doc.get("Memory") == 1  # then any case
    assert doc.get("Nothing") is None and "MEMORY" in doc
