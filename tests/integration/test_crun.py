"""crun through the daemon on this host: cgroup limits really applied, seen from inside the
container, and every later runtime call (exec, pause, update, stop, rm, after a daemon
restart) finding the container where crun left it.

On a hybrid cgroup host crun runs through dockyard-nounified (runtime/catalog.py), in a
mount namespace without the v2 mount: it then manages the v1 hierarchies under the same
`/dockyard/<id>` paths runc uses. Skipped where crun cannot work here.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.config import RuntimeOption, RuntimeOrigin
from dockyard.linux.cgroups import CgroupLayout, cgroup_layout
from dockyard.runtime.catalog import plan_runtimes, probe_host
from tests.conftest import Daemon, busybox_rootfs_tar, make_daemon


def _crun_works() -> str:
    option = RuntimeOption("crun", shutil.which("crun") or "/usr/bin/crun", origin=RuntimeOrigin.BUILTIN)
    plan = plan_runtimes({"crun": option}, None, probe_host({"crun": option}))
    return plan.problems.get("crun", "" if "crun" in plan.runtimes else "crun is not offered")


pytestmark = pytest.mark.skipif(bool(_crun_works()), reason=f"crun cannot work here: {_crun_works()}")
HYBRID = cgroup_layout() is CgroupLayout.HYBRID


@pytest.fixture(scope="module")
def crun_daemon() -> Iterator[Daemon]:
    """A daemon whose default is crun, chosen by start-up (no --default-runtime)."""
    d = make_daemon()
    try:
        d.start()
        d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_rootfs_tar())
        yield d
    finally:
        try:
            d.remove_all_containers()
        finally:
            d.stop()
            d.cleanup()


def sh(d: Daemon, script: str, *options: str, check: bool = True) -> str:
    return d.docker("run", "--rm", *options, "busybox", "sh", "-c", script, check=check).stdout.decode()


def test_crun_is_the_default_and_runs_the_container(crun_daemon: Daemon) -> None:
    d = crun_daemon
    assert d.out("info", "--format", "{{.DefaultRuntime}}") == "crun"
    d.docker("run", "--name", "which", "busybox", "true")
    assert d.out("inspect", "-f", "{{.HostConfig.Runtime}}", "which") == "crun"
    d.docker("rm", "which")


def test_cgroups_are_the_v1_paths_runc_would_use(crun_daemon: Daemon) -> None:
    d = crun_daemon
    cid = d.out("run", "-d", "busybox", "sleep", "300")
    try:
        inside = d.out("exec", cid, "cat", "/proc/self/cgroup").splitlines()
        paths = {line.split(":")[1]: line.split(":", 2)[2] for line in inside}
        for controller in ("memory", "cpu", "pids", "freezer", "devices"):
            assert paths[controller] == f"/dockyard/{cid}", inside
        pid = d.out("inspect", "-f", "{{.State.Pid}}", cid)
        assert pid in Path(f"/sys/fs/cgroup/memory/dockyard/{cid}/cgroup.procs").read_text().split()
        if HYBRID:
            # crun never saw the v2 mount: the process stays in its monitor's v2 cgroup.
            assert paths[""] == "/"
    finally:
        d.docker("rm", "-f", cid)
    assert not Path(f"/sys/fs/cgroup/memory/dockyard/{cid}").exists()


def test_memory_limit_is_enforced_inside(crun_daemon: Daemon) -> None:
    d = crun_daemon
    limits = sh(d, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                "--memory", "32m", "--memory-swap", "32m").split()  # fmt: skip
    assert limits == [str(32 << 20), str(32 << 20)]
    # 64 MB in a shell variable does not fit in 32 MB: the kernel kills it.
    result = d.docker("run", "--name", "oom", "--memory", "32m", "--memory-swap", "32m", "busybox", "sh", "-c",
                      'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived ${#x}', check=False)  # fmt: skip
    try:
        assert result.returncode == 137, result.stdout + result.stderr
        assert b"survived" not in result.stdout
        state = json.loads(d.out("inspect", "-f", "{{json .State}}", "oom"))
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
    finally:
        d.docker("rm", "-f", "oom")


def test_pids_limit_is_enforced_inside(crun_daemon: Daemon) -> None:
    d = crun_daemon
    # Shell builtins only once the limit is reached (read, echo): a fork would fail.
    script = ("read max < /sys/fs/cgroup/pids/pids.max; (for i in $(seq 20); do sleep 30 & done) 2>/dev/null; "
              "read now < /sys/fs/cgroup/pids/pids.current; echo $max $now")  # fmt: skip
    limit, current = sh(d, script, "--pids-limit", "8").split()
    assert limit == "8"
    assert 4 < int(current) <= 8  # 20 sleeps were asked for: the forks beyond the limit failed


def test_cpu_limit_is_enforced_inside(crun_daemon: Daemon) -> None:
    d = crun_daemon
    script = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; "
              "a=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); timeout 1 sh -c 'while :; do :; done'; "
              "b=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); echo $((b - a))")  # fmt: skip
    quota, period, used_ns = sh(d, script, "--cpus", "0.5", check=False).split()
    assert (quota, period) == ("50000", "100000")
    # A busy loop for one second gets at most half a CPU (plus a period's slack).
    assert 0 < int(used_ns) < 700_000_000


def test_exec_pause_update_stop_and_rm_reach_the_container(crun_daemon: Daemon) -> None:
    d = crun_daemon
    cid = d.out("run", "-d", "--memory", "64m", "busybox", "sleep", "300")
    try:
        assert d.out("exec", cid, "echo", "in") == "in"
        missing = d.docker("exec", cid, "nosuch", check=False)
        assert missing.returncode == 127  # the CLI's own code, from runc's words
        assert b"executable file not found" in missing.stdout + missing.stderr
        d.docker("pause", cid)
        assert d.out("inspect", "-f", "{{.State.Status}}", cid) == "paused"
        freezer = Path(f"/sys/fs/cgroup/freezer/dockyard/{cid}/freezer.state")
        assert freezer.read_text().strip() == "FROZEN"
        d.docker("unpause", cid)
        assert freezer.read_text().strip() == "THAWED"
        d.docker("update", "--memory", "96m", "--memory-swap", "128m", cid)
        assert d.out("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(96 << 20)
        d.docker("stop", "-t", "1", cid)
        assert d.out("inspect", "-f", "{{.State.Status}}", cid) == "exited"
        d.docker("start", cid)  # the same container again: crun's old state was deleted
        assert d.out("exec", cid, "echo", "again") == "again"
    finally:
        d.docker("rm", "-f", cid)
    assert not (d.exec_root / "runtime" / "crun" / cid).exists()


def test_command_problems_keep_the_cli_exit_codes(crun_daemon: Daemon) -> None:
    d = crun_daemon
    for command, code in ((["nosuch"], 127), (["/no/such/binary"], 127), (["/etc/passwd"], 126), (["/tmp"], 126)):
        result = d.docker("run", "--rm", "busybox", *command, check=False)
        assert result.returncode == code, (command, result.stderr)
    assert d.out("ps", "-aq") == ""


def test_a_container_survives_a_daemon_restart_and_answers_to_crun(crun_daemon: Daemon) -> None:
    d = crun_daemon
    cid = d.out("run", "-d", "busybox", "sleep", "300")
    try:
        assert d.stop() == 0  # live-restore: the container keeps running
        d.start()
        assert d.out("inspect", "-f", "{{.State.Running}}", cid) == "true"
        assert d.out("exec", cid, "echo", "adopted") == "adopted"
        d.docker("pause", cid)
        d.docker("unpause", cid)
        d.docker("stop", "-t", "1", cid)
        assert d.out("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid) == "exited 137"
    finally:
        d.docker("rm", "-f", cid)


def test_later_containers_get_the_filter_crun_compiled_for_the_first(crun_daemon: Daemon) -> None:
    """crun compiles a profile once; later containers of that profile are handed the very
    program it loaded then (run.oci.seccomp_bpf_data), and it is in force in them."""
    d = crun_daemon
    ids = [d.out("run", "-d", "busybox", "sleep", "60") for _ in range(2)]
    other = d.out("run", "-d", "--cap-add", "SYS_ADMIN", "busybox", "sleep", "60")  # another profile
    try:
        state = d.exec_root / "runtime" / "crun"
        programs = [(state / i / "seccomp.bpf").read_bytes() for i in ids]
        assert programs[0] == programs[1] and len(programs[0]) % 8 == 0 and programs[0]
        config = json.loads((d.exec_root / "containers" / ids[1] / "config.json").read_text())
        assert base64.b64decode(config["annotations"]["run.oci.seccomp_bpf_data"]) == programs[0]
        assert "seccomp" in config["linux"]  # kept for runc and for what inspect shows
        assert (state / other / "seccomp.bpf").read_bytes() != programs[0]
        kept = list((d.exec_root / "seccomp" / "crun").iterdir())
        assert len(kept) >= 2
        status = d.out("exec", ids[1], "grep", "Seccomp:", "/proc/self/status")
        assert status.split() == ["Seccomp:", "2"]
        refused = d.docker("exec", ids[1], "unshare", "-r", "true", check=False)
        assert refused.returncode != 0 and b"Operation not permitted" in refused.stderr
    finally:
        d.docker("rm", "-f", *ids, other)
