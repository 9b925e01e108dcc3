"""`docker run` options are in force inside the container, and bad values are a 400 that
names them and leaves no container behind. A real daemon, the real docker CLI, runc."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon


def run(daemon: Daemon, *args: str) -> str:
    """`docker run --rm <args>` and its stdout."""
    return daemon.out("run", "--rm", *args)


def sh(daemon: Daemon, image: str, script: str, *options: str) -> str:
    return run(daemon, *options, image, "sh", "-c", script)


def test_read_only_rootfs(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "touch /x 2>&1; echo rc=$?; touch /tmp/y 2>&1; echo", "--read-only")
    assert "Read-only file system" in out and "rc=1" in out


def test_shm_size(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "df -k /dev/shm | tail -1", "--shm-size", "8m")
    assert out.split()[1] == "8192"


def test_ulimit_nofile(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "ulimit -n; ulimit -Hn", "--ulimit", "nofile=512:1024")
    assert out.split() == ["512", "1024"]


def test_memory_limit_and_swap(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes "
             "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
             "--memory", "64m", "--memory-swap", "96m", "--memory-reservation", "32m")  # fmt: skip
    assert out.split() == [str(64 << 20), str(96 << 20), str(32 << 20)]


def test_cpus_and_shares(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
             "/sys/fs/cgroup/cpu/cpu.shares", "--cpus", "0.5", "--cpu-shares", "512")  # fmt: skip
    assert out.split() == ["50000", "100000", "512"]


def test_cpuset_cpus(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /sys/fs/cgroup/cpuset/cpuset.cpus", "--cpuset-cpus", "0")
    assert out == "0"


def test_pids_limit(daemon: Daemon, busybox: str) -> None:
    assert sh(daemon, busybox, "cat /sys/fs/cgroup/pids/pids.max", "--pids-limit", "20") == "20"


def test_init_is_pid_1(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "ps -o pid,args | sed -n 2p", "--init")
    pid, args = out.split(None, 1)
    assert pid == "1" and args.startswith("/sbin/docker-init -- sh")


def test_group_add(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "id -G", "--group-add", "nogroup", "--group-add", "1234")
    assert sorted(out.split(), key=int) == ["0", "1234", "65534"]


def test_sysctl(daemon: Daemon, busybox: str) -> None:
    assert sh(daemon, busybox, "cat /proc/sys/kernel/shmmax", "--sysctl", "kernel.shmmax=65536") == "65536"


def test_device(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "ls -l /dev/mynull | cut -c1; echo hi > /dev/mynull && echo ok", "--device",
             "/dev/null:/dev/mynull")  # fmt: skip
    assert out.split() == ["c", "ok"]


def test_add_host_dns_and_domainname(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "grep db /etc/hosts; grep nameserver /etc/resolv.conf; cat /proc/sys/kernel/domainname",
             "--add-host", "db:10.1.2.3", "--dns", "10.9.9.9", "--domainname", "example.org")  # fmt: skip
    assert out.splitlines() == ["10.1.2.3\tdb", "nameserver 10.9.9.9", "example.org"]


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dy-bind-"))
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def test_mount_bind_readonly_and_tmpfs(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    (host_dir / "f").write_text("from host\n")
    out = sh(daemon, busybox, "cat /in/f; touch /in/g 2>&1; grep ' /scratch ' /proc/mounts",
             "--mount", f"type=bind,source={host_dir},target=/in,readonly",
             "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1770")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "from host"
    assert "Read-only file system" in lines[1]
    assert "tmpfs /scratch tmpfs" in lines[2] and "size=1024k" in lines[2] and "mode=1770" in lines[2]
    assert not (host_dir / "g").exists()


def test_mount_shows_in_inspect(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    cid = daemon.out("create", "--mount", f"type=bind,src={host_dir},dst=/in", busybox, "true")
    try:
        doc = json.loads(daemon.out("inspect", cid))[0]
        assert doc["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": str(host_dir), "Target": "/in"}]
        assert doc["Mounts"] == [{"Type": "bind", "Source": str(host_dir), "Destination": "/in", "Mode": "",
                                  "RW": True, "Propagation": "rprivate"}]  # fmt: skip
    finally:
        daemon.docker("rm", "-f", cid)


def test_pid_uts_ipc_host(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, f"test -d /proc/{os.getpid()} && echo pid-host; hostname; readlink /proc/self/ns/ipc",
             "--pid", "host", "--uts", "host", "--ipc", "host")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "pid-host"
    assert lines[1] == socket.gethostname()
    assert lines[2] == os.readlink("/proc/self/ns/ipc")


def test_no_new_privileges_and_caps(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "grep -E 'NoNewPrivs|CapEff' /proc/self/status",
             "--security-opt", "no-new-privileges", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN")  # fmt: skip
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert fields["NoNewPrivs"] == "1"
    eff = int(fields["CapEff"], 16)
    assert eff >> 12 & 1 == 1  # CAP_NET_ADMIN
    assert eff & 1 == 0  # CAP_CHOWN dropped


def test_privileged_gets_the_bounding_set(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "grep CapEff /proc/self/status; ls /dev/loop0", "--privileged")
    own = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd"))
    assert out.splitlines()[0].split()[1] == own.split()[1]
    assert out.splitlines()[1] == "/dev/loop0"


def test_stop_signal_and_timeout_in_inspect(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("create", "--stop-signal", "SIGUSR1", "--stop-timeout", "3", "--ulimit", "nproc=100:200",
                     "--memory", "64m", "--oom-kill-disable", busybox, "true")  # fmt: skip
    try:
        doc = json.loads(daemon.out("inspect", cid))[0]
        assert doc["Config"]["StopSignal"] == "SIGUSR1" and doc["Config"]["StopTimeout"] == 3
        host = doc["HostConfig"]
        assert host["Ulimits"] == [{"Name": "nproc", "Hard": 200, "Soft": 100}]
        assert host["Memory"] == 64 << 20 and host["MemorySwap"] == 128 << 20
        assert host["OomKillDisable"] is True
    finally:
        daemon.docker("rm", "-f", cid)


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    name = f"dy-test-parent-{os.getpid()}"
    try:
        yield name
    finally:
        for ctrl in Path("/sys/fs/cgroup").iterdir():
            leftover = ctrl / name
            if leftover.is_dir():
                leftover.rmdir()


def test_cgroup_parent_and_cgroupns(daemon: Daemon, busybox: str, cgroup_parent: str) -> None:
    out = sh(daemon, busybox, "grep :pids: /proc/self/cgroup", "--cgroup-parent", cgroup_parent)
    assert out.startswith(f"8:pids:/{cgroup_parent}/") or f":pids:/{cgroup_parent}/" in out
    assert sh(daemon, busybox, "grep :pids: /proc/self/cgroup", "--cgroupns", "private").endswith(":pids:/")


def test_oom_score_adj_and_ipc_none(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /proc/self/oom_score_adj; test -e /dev/shm || echo no-shm",
             "--oom-score-adj", "100", "--ipc", "none")  # fmt: skip
    assert out.splitlines() == ["100", "no-shm"]


def test_joining_a_container_namespace_needs_it_running(daemon: Daemon, busybox: str) -> None:
    """The engine passes the other container's namespace path to write_bundle; without one
    (the other container is not running) the start is refused with dockerd's words."""
    other = daemon.out("create", busybox, "true")
    try:
        result = daemon.docker("run", "--rm", "--ipc", f"container:{other}", busybox, "true", check=False)
        assert result.returncode != 0
        assert f"cannot join IPC of a non running container: {other}" in result.stderr.decode()
    finally:
        daemon.docker("rm", "-f", other)


# ---- bad values: a 400 with the words, and nothing left behind --------------------------


BAD = [
    (["--cap-add", "BOGUS"], 'invalid CapAdd: unknown capability: "CAP_BOGUS"'),
    (["--stop-signal", "BOGUS"], "Invalid signal: BOGUS"),
    (["--add-host", "db:x"], 'invalid IP address in add-host: "x"'),
    (["--log-driver", "bogus"], "logger: no log driver named 'bogus' is registered"),
    (["-w", "rel/dir"], "the working directory 'rel/dir' is invalid, it needs to be an absolute path"),
    (["--hostname", "h" * 70], "is too long (maximum 64 bytes)"),
    (["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit"),
    (["--sysctl", "kernel.pid_max=100"], "sysctl 'kernel.pid_max=100' is not allowed"),
    (["--security-opt", "bogus=1"], 'invalid --security-opt 2: "bogus=1"'),
    (["--ipc", "bogus"], "invalid IPC mode: bogus"),
    (["--storage-opt", "size=1G"], "--storage-opt is supported only for overlay"),
    (["--mount", "type=volume,src=a/b,dst=/v"], '"a/b" includes invalid characters for a local volume name'),
    (["--cpu-period", "100"], "CPU cfs period can not be less than 1ms"),
]


@pytest.mark.parametrize(("options", "words"), BAD)
def test_bad_value_is_refused_at_create(daemon: Daemon, busybox: str, options: list[str], words: str) -> None:
    before = daemon.out("ps", "-aq", "--no-trunc")
    result = daemon.docker("create", *options, busybox, "true", check=False)
    assert result.returncode != 0
    assert words in result.stderr.decode()
    assert daemon.out("ps", "-aq", "--no-trunc") == before


# What the CLI would already refuse itself, sent as docker-py (or any API client) sends it.
API_BAD = [
    ({}, {"ShmSize": -1}, "SHM size can not be less than 0"),
    ({}, {"UsernsMode": "private"}, "user namespaces are not supported"),
    ({}, {"DeviceCgroupRules": ["x 1:3 rwm"]}, "invalid device cgroup rule format: 'x 1:3 rwm'"),
    ({}, {"Memory": 2**63}, "invalid Memory: expected an integer (int64)"),
    ({}, {"PidsLimit": 1.5}, "invalid PidsLimit: expected an integer (int64)"),
    ({}, {"Tmpfs": {"/x": 5}}, "invalid Tmpfs: expected a string"),
    ({}, {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}, "DeviceRequests (--gpus) are not supported"),
    ({}, {"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
    ({}, {"VolumeDriver": "flocker"}, "VolumeDriver (--volume-driver) is not supported yet"),
    ({"Env": ["=x"]}, {}, "invalid environment variable: =x"),
    ({"Env": ["A=\0"]}, {}, "invalid environment variable: A=\0"),
    ({"WorkingDir": "rel"}, {}, "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ({"Hostname": "h" * 256}, {}, "is too long (maximum 64 bytes)"),
]


@pytest.mark.parametrize(("config", "host_config", "words"), API_BAD)
def test_bad_body_is_400(daemon: Daemon, busybox: str, config: dict[str, object], host_config: dict[str, object],
                         words: str) -> None:  # fmt: skip
    import docker.errors

    before = daemon.out("ps", "-aq", "--no-trunc")
    client = daemon.client()
    try:
        body = {"Image": busybox, "Cmd": ["true"], **config, "HostConfig": host_config}
        with pytest.raises(docker.errors.APIError) as info:
            client.api._result(client.api._post_json(client.api._url("/containers/create"), data=body), True)
        assert info.value.status_code == 400
        assert words in str(info.value.explanation)
    finally:
        client.close()
    assert daemon.out("ps", "-aq", "--no-trunc") == before


def test_a_volume_entry_a_bind_covers_is_no_anonymous_volume(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    """docker-py sends Config.Volumes for its binds' targets too: the bind is what counts."""
    api = daemon.client().api
    host_config = api.create_host_config(binds={str(host_dir): {"bind": "/mnt", "mode": "ro"}})
    cid = api.create_container(busybox, ["true"], volumes=["/mnt"], host_config=host_config)["Id"]
    try:
        assert [m["Destination"] for m in api.inspect_container(cid)["Mounts"]] == ["/mnt"]
    finally:
        api.remove_container(cid)


HOST_BAD = [
    (["--mount", "type=bind,src=/nonexistent-dy,dst=/x"],
     'invalid mount config for type "bind": bind source path does not exist: /nonexistent-dy'),
    (["--ulimit", "nofile=10:99999999"], "above the daemon's inherited hard limit"),
    (["--cpus", "64"], "range of CPUs is from 0.01 to"),
    (["--cpuset-cpus", "63"], "Requested CPUs are not available - requested 63"),
    (["--device", "/dev/nonexistent-dy"], 'adding custom device "/dev/nonexistent-dy"'),
]  # fmt: skip


@pytest.mark.parametrize(("options", "words"), HOST_BAD)
def test_what_the_host_cannot_give_is_refused(daemon: Daemon, busybox: str, options: list[str], words: str) -> None:
    """Checked against the host at create (engine.admission.check_on_host): a 400 before
    anything is made (write_bundle checks again at each start: the host may change)."""
    before = daemon.out("ps", "-aq", "--no-trunc")
    result = daemon.docker("create", *options, busybox, "true", check=False)
    assert result.returncode != 0
    assert words in result.stderr.decode()
    assert daemon.out("ps", "-aq", "--no-trunc") == before


def test_joining_a_running_containers_namespaces(daemon: Daemon, busybox: str) -> None:
    other = daemon.out("run", "-d", "--name", "ns-owner", "--ipc", "shareable", busybox, "sleep", "300")
    try:
        ipc = daemon.out("exec", other, "readlink", "/proc/self/ns/ipc")
        pid = daemon.out("exec", other, "readlink", "/proc/self/ns/pid")
        joined = daemon.out("run", "--rm", "--ipc", "container:ns-owner", "--pid", "container:ns-owner", busybox,
                            "sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; ps -o comm | grep -c sleep")  # fmt: skip
        assert joined.splitlines() == [ipc, pid, "1"]
        cid = daemon.out("create", "--ipc", "container:ns-owner", busybox, "true")
        try:
            assert daemon.out("inspect", "--format", "{{.HostConfig.IpcMode}}", cid) == f"container:{other}"
        finally:
            daemon.docker("rm", cid)
        missing = daemon.docker("run", "--rm", "--ipc", "container:nosuch-dy", busybox, "true", check=False)
        assert missing.returncode != 0 and "nosuch-dy" in missing.stderr.decode()
    finally:
        daemon.docker("rm", "-f", other)


def test_joining_a_private_ipc_namespace_is_refused(daemon: Daemon, busybox: str) -> None:
    """dockerd shares an IPC namespace only from a donor made `shareable` (or the host's)."""
    donor = daemon.out("run", "-d", busybox, "sleep", "300")  # the default: private
    try:
        result = daemon.docker("run", "--rm", "--ipc", f"container:{donor}", busybox, "true", check=False)
        assert result.returncode != 0
        assert f"container {donor}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in result.stderr.decode()
        assert daemon.out("run", "--rm", "--pid", f"container:{donor}", busybox, "sh", "-c", "ps -o comm | grep -c sleep") == "1"
    finally:
        daemon.docker("rm", "-f", donor)


def test_docker_py_shapes(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    """docker-py's own encodings of the options (Ulimit, Mount, devices, mem_limit ...)."""
    import docker.types

    (host_dir / "f").write_text("py\n")
    script = ("ulimit -n; cat /in/f; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /proc/sys/kernel/msgmax; "
              "ls /dev/mynull; grep NoNewPrivs /proc/self/status")  # fmt: skip
    client = daemon.client()
    try:
        out = client.containers.run(
            busybox, ["sh", "-c", script],
            remove=True, init=True, mem_limit="32m", ulimits=[docker.types.Ulimit(name="nofile", soft=256, hard=512)],
            mounts=[docker.types.Mount("/in", str(host_dir), type="bind", read_only=True)],
            devices=["/dev/null:/dev/mynull:rwm"], sysctls={"kernel.msgmax": "4096"},
            security_opt=["no-new-privileges:true"], cpu_period=100000, cpu_quota=50000, oom_score_adj=50,
        )  # fmt: skip
        assert out.decode().split("\n")[:6] == ["256", "py", str(32 << 20), "4096", "/dev/mynull", "NoNewPrivs:\t1"]
    finally:
        client.close()
