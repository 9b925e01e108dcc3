"""Which OCI runtimes `docker info` offers, the default start-up picks, and `--runtime` per
container: the fastest that works here is the default unless the user chose one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dockyard.config import RuntimeOption, RuntimeOrigin
from dockyard.runtime.catalog import plan_runtimes, probe_host
from tests.conftest import Daemon


def _expected() -> tuple[str, set[str]]:
    """What the daemon must say on this host: its default and the runtimes it offers."""
    options = {
        name: RuntimeOption(name, shutil.which(name) or f"/usr/bin/{name}", origin=RuntimeOrigin.BUILTIN)
        for name in ("runc", "crun")
    }
    plan = plan_runtimes(options, None, probe_host(options))
    return plan.default, set(plan.runtimes)


def _info(d: Daemon) -> dict[str, object]:
    return json.loads(d.out("info", "--format", "{{json .}}"))  # type: ignore[no-any-return]


def _import(d: Daemon, tar: bytes) -> None:
    d.docker("import", "--change", 'CMD ["sh"]', "-", "busybox:latest", input=tar)


def test_info_reports_the_chosen_default_and_the_working_runtimes(daemon: Daemon) -> None:
    default, offered = _expected()
    info = _info(daemon)
    assert info["DefaultRuntime"] == default
    runtimes = info["Runtimes"]
    assert isinstance(runtimes, dict) and set(runtimes) == offered
    for name in offered:
        assert runtimes[name]["path"] == shutil.which(name)  # the runtime itself, not how it is launched
    assert daemon.out("info", "--format", "{{.DefaultRuntime}}") == default


def test_a_container_gets_the_default_and_another_runtime_on_request(daemon: Daemon, busybox: str) -> None:
    default, offered = _expected()
    for asked in ["", *sorted(offered)]:
        options = ["--runtime", asked] if asked else []
        cid = daemon.out("run", "-d", *options, busybox, "sleep", "30")
        try:
            assert daemon.out("inspect", "-f", "{{.HostConfig.Runtime}}", cid) == (asked or default)
            # The state the runtime keeps is where that runtime's own calls find it.
            assert (daemon.exec_root / "runtime" / (asked or default) / cid).is_dir()
            assert daemon.out("exec", cid, "echo", "ok") == "ok"
        finally:
            daemon.docker("rm", "-f", cid)
        assert not (daemon.exec_root / "runtime" / (asked or default) / cid).exists()


def test_the_users_default_wins(daemon_factory, busybox_tar: bytes) -> None:
    _, offered = _expected()
    d: Daemon = daemon_factory(start=False)
    d.start("--default-runtime", "runc")
    info = _info(d)
    assert info["DefaultRuntime"] == "runc"
    assert set(info["Runtimes"]) == offered  # type: ignore[arg-type]
    _import(d, busybox_tar)
    d.docker("run", "--name", "dflt", "busybox", "true")
    assert d.out("inspect", "-f", "{{.HostConfig.Runtime}}", "dflt") == "runc"
    if "crun" in offered:
        assert d.out("run", "--rm", "--runtime", "crun", "busybox", "echo", "crun") == "crun"


def test_daemon_json_default_runtime_wins(daemon_factory, busybox_tar: bytes) -> None:
    d: Daemon = daemon_factory({"default-runtime": "runc"})
    assert _info(d)["DefaultRuntime"] == "runc"


def test_a_configured_crun_is_launched_as_the_builtin_one(daemon_factory, busybox_tar: bytes) -> None:
    _, offered = _expected()
    if "crun" not in offered:
        pytest.skip("crun cannot work on this host")
    crun = shutil.which("crun")
    d: Daemon = daemon_factory({"runtimes": {"fast": {"path": crun}}, "default-runtime": "fast"})
    info = _info(d)
    assert info["DefaultRuntime"] == "fast"
    assert info["Runtimes"]["fast"] == {"path": crun}  # type: ignore[index]
    _import(d, busybox_tar)
    out = d.out("run", "--rm", "--memory", "32m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert out == str(32 << 20)
    assert Path(d.exec_root / "runtime" / "fast").is_dir()
