"""dockerd's isolation, checked from inside containers: what a container can and cannot do.

Every check runs in a real container of a real daemon (runc under conmon) and looks at what
the kernel says there (/proc/self/status, a syscall's errno, /dev, mounts), not at the
config.json we wrote. A small static probe (built with the host's gcc) makes the syscalls
busybox has no applet for.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from dockyard.linux.capabilities import CAPABILITY_BITS
from dockyard.model.hostconfig import DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS
from tests.conftest import Daemon

PROBE_IMAGE = "isoprobe:latest"
EPERM, EINVAL, EFAULT, ENOSYS, ENOKEY = 1, 22, 14, 38, 126

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Each probe makes one syscall with arguments whose answer, once it reaches the kernel,
   is not EPERM (EINVAL, EFAULT, ENOKEY or success): EPERM means seccomp stopped it. */
static long call(const char *name) {
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0, -3, 0);
    if (!strcmp(name, "add_key")) return syscall(SYS_add_key, "user", "dockyard-probe", "x", 1, -2);
    if (!strcmp(name, "request_key")) return syscall(SYS_request_key, "user", "dockyard-none", NULL, 0);
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 9999, NULL, 0);
    if (!strcmp(name, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "unshare")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "clone3")) return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "personality")) return syscall(SYS_personality, 0x40000);
    if (!strcmp(name, "personality_query")) return syscall(SYS_personality, 0xffffffff);
    if (!strcmp(name, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL);
    errno = 0;
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = call(argv[i]);
        if (r == -2 && errno == 0) printf("%s unknown\n", argv[i]);
        else if (r < 0) printf("%s %d\n", argv[i], errno);
        else printf("%s 0\n", argv[i]);
    }
    return 0;
}
"""

# A profile of our own: everything allowed but mkdir, which answers EACCES (errnoRet).
OWN_PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
}


def _mask(names: Iterable[str]) -> int:
    return sum(1 << CAPABILITY_BITS.index(n) for n in names)


DEFAULT_MASK = _mask(DEFAULT_CAPS)


@pytest.fixture(scope="module")
def probe(daemon: Daemon, busybox_tar: bytes) -> str:
    """An image with busybox and /probe."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build the syscall probe")
    work = Path(tempfile.mkdtemp(prefix="dy-iso-probe-"))
    try:
        (work / "probe.c").write_text(PROBE_C)
        built = subprocess.run(["gcc", "-static", "-O2", "-o", str(work / "probe"), str(work / "probe.c")],
                               check=False, capture_output=True, timeout=120)  # fmt: skip
        if built.returncode != 0:
            pytest.skip(f"cannot build a static probe: {built.stderr.decode(errors='replace')[-300:]}")
        buf = io.BytesIO(busybox_tar)
        buf.seek(0, io.SEEK_END)
        buf.seek(0)
        with tarfile.open(fileobj=buf, mode="a") as tar:
            tar.add(str(work / "probe"), arcname="probe")
        daemon.docker("import", "--change", 'CMD ["sh"]', "-", PROBE_IMAGE, input=buf.getvalue())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PROBE_IMAGE


@pytest.fixture
def profile_file() -> Iterator[Callable[[object], str]]:
    made: list[Path] = []

    def write(doc: object) -> str:
        fd, name = tempfile.mkstemp(prefix="dy-iso-profile-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        made.append(Path(name))
        return name

    yield write
    for path in made:
        path.unlink(missing_ok=True)


def sh(d: Daemon, image: str, script: str, *opts: str, check: bool = True) -> str:
    return d.docker("run", "--rm", *opts, image, "sh", "-c", script, check=check).stdout.decode()


def status(d: Daemon, image: str, *opts: str) -> dict[str, str]:
    out = sh(d, image, "cat /proc/self/status", *opts)
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def probes(d: Daemon, image: str, *names: str, opts: tuple[str, ...] = ()) -> dict[str, int]:
    out = d.docker("run", "--rm", *opts, image, "/probe", *names).stdout.decode()
    return {name: int(code) for name, code in (line.split() for line in out.splitlines())}


def daemon_bounding_set(d: Daemon) -> int:
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd")


# ---- seccomp -------------------------------------------------------------------------

BLOCKED = ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "unshare", "personality")


def test_default_container_runs_under_the_default_profile(daemon: Daemon, busybox: str) -> None:
    fields = status(daemon, busybox)
    assert fields["Seccomp"] == "2"
    assert fields["NoNewPrivs"] == "0"


def test_default_profile_answers_eperm(daemon: Daemon, probe: str) -> None:
    got = probes(daemon, probe, *BLOCKED, "clone3", "personality_query")
    assert {name: got[name] for name in BLOCKED} == dict.fromkeys(BLOCKED, EPERM)
    assert got["clone3"] == ENOSYS  # the profile's errnoRet: glibc falls back to clone
    assert got["personality_query"] == 0  # an allowed argument value (args conditions)


def test_unconfined_reaches_the_kernel(daemon: Daemon, probe: str) -> None:
    opts = ("--security-opt", "seccomp=unconfined")
    assert status(daemon, probe, *opts)["Seccomp"] == "0"
    got = probes(daemon, probe, *BLOCKED, "clone3", opts=opts)
    assert got == {"keyctl": got["keyctl"], "add_key": got["add_key"], "request_key": ENOKEY, "bpf": EINVAL,
                   "perf_event_open": EFAULT, "unshare": 0, "personality": 0, "clone3": EINVAL}  # fmt: skip
    assert got["keyctl"] != EPERM and got["add_key"] != EPERM


def test_unshare_and_mount_as_measured_in_the_issue(daemon: Daemon, busybox: str) -> None:
    script = "unshare -U -r -m sh -c 'mount -t tmpfs x /tmp && echo mounted' 2>&1; true"
    assert "Operation not permitted" in sh(daemon, busybox, script)
    assert "mounted" in sh(daemon, busybox, script, "--security-opt", "seccomp=unconfined")


def test_cap_sys_admin_opens_its_syscalls(daemon: Daemon, probe: str) -> None:
    """The profile's includes/excludes follow the container's capabilities."""
    opts = ("--cap-add", "SYS_ADMIN")
    assert status(daemon, probe, *opts)["Seccomp"] == "2"
    got = probes(daemon, probe, "mount", "clone3", "bpf", "keyctl", opts=opts)
    assert got["mount"] == 0 and got["clone3"] == EINVAL and got["bpf"] == EINVAL
    assert got["keyctl"] == EPERM  # not in any group: still blocked


def test_exec_runs_under_the_containers_profile(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", busybox, "sleep", "60")
    try:
        for extra in ((), ("--privileged",)):
            out = daemon.out("exec", *extra, cid, "grep", "Seccomp:", "/proc/self/status")
            assert out.split() == ["Seccomp:", "2"], extra
    finally:
        daemon.docker("rm", "-f", cid)


def test_own_profile_from_a_file(daemon: Daemon, probe: str, profile_file: Callable[[object], str]) -> None:
    """The CLI sends the file's content in SecurityOpt; the container runs under it."""
    opts = ("--security-opt", f"seccomp={profile_file(OWN_PROFILE)}")
    assert status(daemon, probe, *opts)["Seccomp"] == "2"
    out = sh(daemon, probe, "mkdir /made 2>&1; /probe keyctl", *opts)
    assert "Permission denied" in out  # errnoRet 13 from our rule
    assert "keyctl 0" in out  # the default profile is not there as well


def test_privileged_runs_unconfined_unless_it_names_a_profile(
    daemon: Daemon, busybox: str, profile_file: Callable[[object], str]
) -> None:
    assert status(daemon, busybox, "--privileged")["Seccomp"] == "0"
    own = ("--privileged", "--security-opt", f"seccomp={profile_file(OWN_PROFILE)}")
    assert status(daemon, busybox, *own)["Seccomp"] == "2"
    assert "Permission denied" in sh(daemon, busybox, "mkdir /made 2>&1; true", *own)


def test_bad_profile_is_refused_at_create(daemon: Daemon, busybox: str, profile_file: Callable[[object], str]) -> None:
    before = daemon.out("ps", "-aq")
    bad = profile_file({"defaultAction": "SCMP_ACT_BOGUS"})
    result = daemon.docker("run", "--rm", "--security-opt", f"seccomp={bad}", busybox, "true", check=False)
    assert result.returncode == 125
    assert "Decoding seccomp profile failed" in result.stderr.decode()
    both = profile_file({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                         "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})  # fmt: skip
    result = daemon.docker("create", "--security-opt", f"seccomp={both}", busybox, check=False)
    assert "both 'architectures' and 'archMap'" in result.stderr.decode()
    assert daemon.out("ps", "-aq") == before


def test_info_says_the_builtin_profile(daemon: Daemon) -> None:
    info = json.loads(daemon.out("info", "--format", "{{json .}}"))
    assert info["SecurityOptions"] == ["name=seccomp,profile=builtin"]
    assert not any("seccomp" in w for w in info.get("Warnings") or [])


# ---- daemon-wide defaults ------------------------------------------------------------


def test_daemon_profile_and_no_new_privileges(
    daemon_factory: Callable[..., Daemon], busybox_tar: bytes, profile_file: Callable[[object], str]
) -> None:
    path = profile_file(OWN_PROFILE)
    d = daemon_factory({"seccomp-profile": path, "no-new-privileges": True})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    fields = status(d, "busybox")
    assert (fields["Seccomp"], fields["NoNewPrivs"]) == ("2", "1")
    assert "Permission denied" in sh(d, "busybox", "mkdir /made 2>&1; true")
    assert status(d, "busybox", "--security-opt", "no-new-privileges=false")["NoNewPrivs"] == "0"
    builtin = sh(d, "busybox", "mkdir /made && unshare -U true 2>&1; true", "--security-opt", "seccomp=builtin")
    assert "Operation not permitted" in builtin and "Permission denied" not in builtin
    info = json.loads(d.out("info", "--format", "{{json .}}"))
    assert info["SecurityOptions"] == [f"name=seccomp,profile={path}", "name=no-new-privileges"]
    assert "WARNING: daemon is not using the default seccomp profile" in info["Warnings"]


def test_daemon_unconfined(daemon_factory: Callable[..., Daemon], busybox_tar: bytes) -> None:
    d = daemon_factory({"seccomp-profile": "unconfined"})
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_tar)
    assert status(d, "busybox")["Seccomp"] == "0"
    assert status(d, "busybox", "--security-opt", "seccomp=builtin")["Seccomp"] == "2"
    info = json.loads(d.out("info", "--format", "{{json .}}"))
    assert info["SecurityOptions"] == ["name=seccomp,profile=unconfined"]


def test_daemon_refuses_a_profile_it_cannot_read(daemon_factory: Callable[..., Daemon]) -> None:
    d = daemon_factory({"seccomp-profile": "/nonexistent/profile.json"}, start=False)
    with pytest.raises(AssertionError) as info:
        d.start()
    assert "opening seccomp profile (/nonexistent/profile.json) failed" in str(info.value)


# ---- capabilities --------------------------------------------------------------------


def test_default_capabilities(daemon: Daemon, busybox: str) -> None:
    fields = status(daemon, busybox)
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(fields[key], 16) == DEFAULT_MASK, key
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        (("--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"), (DEFAULT_MASK | _mask(["CAP_NET_ADMIN"])) & ~_mask(["CAP_CHOWN"])),
        (("--cap-drop", "ALL"), 0),
        (("--cap-drop", "ALL", "--cap-add", "chown"), _mask(["CAP_CHOWN"])),
    ],
)  # fmt: skip
def test_cap_add_and_drop(daemon: Daemon, busybox: str, opts: tuple[str, ...], expected: int) -> None:
    fields = status(daemon, busybox, *opts)
    assert int(fields["CapEff"], 16) == expected
    assert int(fields["CapBnd"], 16) == expected


def test_cap_add_all_and_privileged_get_the_bounding_set(daemon: Daemon, busybox: str) -> None:
    bounding = daemon_bounding_set(daemon)
    for opts in (("--cap-add", "ALL"), ("--privileged",)):
        fields = status(daemon, busybox, *opts)
        assert int(fields["CapEff"], 16) == bounding, opts
        assert int(fields["CapBnd"], 16) == bounding, opts


def test_capability_outside_the_bounding_set_is_a_clear_400(daemon: Daemon, busybox: str) -> None:
    if daemon_bounding_set(daemon) >> CAPABILITY_BITS.index("CAP_SYS_RESOURCE") & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE")
    result = daemon.docker("run", "--rm", "--cap-add", "SYS_RESOURCE", busybox, "true", check=False)
    assert result.returncode == 125
    assert 'not available in the current environment: "CAP_SYS_RESOURCE"' in result.stderr.decode()


# ---- masked and read-only paths, /dev ------------------------------------------------

# Per masked path that exists: its entries (a directory) or its bytes (a file).
_SIZES = (
    "for p in " + " ".join(MASKED_PATHS) + "; do [ -e $p ] || continue; "
    "if [ -d $p ]; then echo $p $(ls -A $p | wc -l); else echo $p $(cat $p 2>/dev/null | wc -c); fi; done"
)


def _sizes(out: str) -> dict[str, int]:
    return {p: int(n) for p, n in (line.split() for line in out.splitlines())}


def test_masked_paths_show_nothing(daemon: Daemon, busybox: str) -> None:
    """What a privileged container sees in each masked path (it has no masks), a default
    one does not: files read empty, directories list empty."""
    unmasked = _sizes(sh(daemon, busybox, _SIZES, "--privileged"))
    masked = _sizes(sh(daemon, busybox, _SIZES))
    with_content = {p for p, n in unmasked.items() if n}
    assert with_content, unmasked  # at least /proc/timer_list or /sys/firmware on any host
    for path in with_content:
        assert masked.get(path, 0) == 0, (path, masked.get(path))


def test_readonly_paths_are_read_only(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /proc/self/mountinfo; { echo x > /proc/sys/kernel/hostname; } 2>&1; true")
    assert "Read-only file system" in out
    options = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4].startswith("/"):
            options[fields[4]] = fields[5].split(",")
    present = [p for p in READONLY_PATHS if os.path.exists(p)]
    assert present
    for path in present:
        assert "ro" in options.get(path, []), (path, options.get(path))
    assert "ro" in options["/sys"]


def test_privileged_has_a_writable_sys_and_no_masks(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "cat /proc/self/mountinfo", "--privileged")
    mounts = {f[4]: f[5].split(",") for f in (line.split() for line in out.splitlines()) if len(f) > 5}
    assert "rw" in mounts["/sys"]
    assert "/proc/sys" not in mounts and "/proc/timer_list" not in mounts


def _expected_dev(daemon: Daemon, tty: bool) -> set[str]:
    names = {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
             "tty", "urandom", "zero"}  # fmt: skip
    runtime = daemon.docker("info", "--format", "{{.DefaultRuntime}}").stdout.decode().strip()
    if runtime == "crun" or os.path.exists("/proc/kcore"):
        names.add("core")  # the symlink to /proc/kcore: runc makes it where that exists, crun always
    if tty:
        names.add("console")
    return names


def test_dev_holds_only_the_standard_devices(daemon: Daemon, busybox: str) -> None:
    out = sh(daemon, busybox, "ls -A /dev; echo --; ls -A /dev/pts; echo --; stat -c '%n %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty")
    dev, pts, nodes = (part.split("\n") for part in out.strip().split("\n--\n"))
    assert set(dev) == _expected_dev(daemon, tty=False)
    assert pts == ["ptmx"]
    assert nodes == ["/dev/null 1:3", "/dev/zero 1:5", "/dev/full 1:7", "/dev/random 1:8",
                     "/dev/urandom 1:9", "/dev/tty 5:0"]  # fmt: skip
    script = "ls -A /dev | tr '\\n' ' '; echo; ls -A /dev/pts | tr '\\n' ' '"
    with_tty = daemon.docker("run", "--rm", "-t", busybox, "sh", "-c", script).stdout.decode()
    dev_line, pts_line = with_tty.replace("\r", "").strip().split("\n")
    assert set(dev_line.split()) == _expected_dev(daemon, tty=True)
    assert set(pts_line.split()) == {"0", "ptmx"}


def test_device_cgroup_allows_only_the_standard_devices(daemon: Daemon, busybox: str) -> None:
    """As under dockerd, where runc's own rules allow mknod of any node: a node can be
    made, but only the standard devices open."""
    out = sh(daemon, busybox, "mknod /tmp/sda b 8 0 && echo made; (: < /tmp/sda) 2>&1; "
                              "mknod /tmp/fuse c 10 229 && echo made; (: < /tmp/fuse) 2>&1; "
                              "mknod /tmp/null c 1 3 && echo made; (: < /tmp/null) 2>&1 && echo opened; true")  # fmt: skip
    assert out.count("made") == 3, out
    assert out.count("Operation not permitted") == 2, out
    assert out.count("opened") == 1, out


@pytest.mark.parametrize("opts", [("--device-cgroup-rule", "c 10:229 rwm"), ("--privileged",)])
def test_device_cgroup_rule_opens_a_device(daemon: Daemon, busybox: str, opts: tuple[str, ...]) -> None:
    out = sh(daemon, busybox, "mknod /tmp/fuse c 10 229 && echo made; (: < /tmp/fuse) 2>&1; true", *opts)
    assert "made" in out and "Operation not permitted" not in out


# ---- OOM -----------------------------------------------------------------------------


def test_oom_killed_container(daemon: Daemon, busybox: str) -> None:
    since = str(int(time.time()) - 1)
    name = f"dy-oom-{os.getpid()}"
    result = daemon.docker("run", "--name", name, "-m", "8m", busybox, "sh", "-c", "tail /dev/zero", check=False, timeout=120)
    try:
        assert result.returncode == 137, result.stderr.decode()
        state = json.loads(daemon.out("inspect", "--format", "{{json .State}}", name))
        assert state["OOMKilled"] is True and state["ExitCode"] == 137
        events = daemon.out("events", "--since", since, "--until", str(int(time.time()) + 1),
                            "--filter", f"container={name}", "--format", "{{.Action}}")  # fmt: skip
        assert "oom" in events.split()
        assert events.split().index("oom") < events.split().index("die")
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_not_oom_killed_container(daemon: Daemon, busybox: str) -> None:
    name = f"dy-nooom-{os.getpid()}"
    result = daemon.docker("run", "--name", name, "-m", "8m", busybox, "sh", "-c", "exit 137", check=False)
    try:
        assert result.returncode == 137
        assert daemon.out("inspect", "--format", "{{.State.OOMKilled}}", name) == "false"
    finally:
        daemon.docker("rm", "-f", name, check=False)


def test_privileged_says_what_it_could_not_grant(daemon: Daemon, busybox: str) -> None:
    """This host's bounding set lacks a capability (CAP_SYS_RESOURCE): dockerd's --privileged
    fails here; dockyard grants what the set holds and says so in the create warnings."""
    bounding = int(next(l for l in open("/proc/self/status") if l.startswith("CapBnd")).split()[1], 16)
    result = daemon.docker("create", "--privileged", busybox, "true")
    cid = result.stdout.decode().strip()
    try:
        if bounding.bit_count() < 41:  # not every capability the kernel knows is there
            assert b"WARNING:" in result.stderr and b"CAP_" in result.stderr
        else:
            assert b"WARNING:" not in result.stderr
    finally:
        daemon.docker("rm", cid)
