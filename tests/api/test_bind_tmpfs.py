"""Bind mounts and tmpfs as dockerd gives them: a missing host path made for `-v` and refused
for `--mount`, propagation, `:z`/`:Z` ignored, read-only that is read-only, tmpfs size and mode."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.conftest import Daemon


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dybind-", dir="/tmp"))
    yield path
    for sub in sorted(path.rglob("*"), key=lambda p: len(str(p)), reverse=True):
        if sub.is_dir() and not sub.is_symlink():
            sub.rmdir()
        else:
            sub.unlink()
    path.rmdir()


def _name(what: str) -> str:
    return f"dybt-{what}-{os.urandom(3).hex()}"


def test_v_makes_a_missing_host_path(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    missing = host_dir / "not" / "there"
    daemon.docker("run", "--rm", "-v", f"{missing}:/x", busybox, "sh", "-c", "echo hi > /x/f")
    assert missing.is_dir()
    assert (missing / "f").read_text() == "hi\n"


def test_mount_refuses_a_missing_host_path_and_makes_nothing(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    missing = host_dir / "missing"
    name = _name("refused")
    made = daemon.docker("run", "--rm", "--name", name, "--mount", f"type=bind,source={missing},target=/x", busybox,
                         "true", check=False)  # fmt: skip
    assert made.returncode == 125
    assert f'invalid mount config for type "bind": bind source path does not exist: {missing}' in made.stderr.decode()
    assert not missing.exists()
    assert daemon.out("ps", "-aq", "--filter", f"name={name}") == ""


def test_bind_propagation_is_given_to_the_runtime(daemon: Daemon, busybox: str, host_dir: Path) -> None:
    name = _name("prop")
    daemon.docker("run", "-d", "--name", name, "--mount", f"type=bind,source={host_dir},target=/x,bind-propagation=rslave",
                  busybox, "sleep", "300")  # fmt: skip
    try:
        (doc,) = json.loads(daemon.out("inspect", name))
        (mount,) = doc["Mounts"]
        assert (mount["Type"], mount["Source"], mount["Propagation"], mount["RW"]) == ("bind", str(host_dir), "rslave", True)
        assert doc["HostConfig"]["Mounts"][0]["BindOptions"] == {"Propagation": "rslave"}
        spec = json.loads((daemon.exec_root / "containers" / doc["Id"] / "config.json").read_text())
        (entry,) = [m for m in spec["mounts"] if m["destination"] == "/x"]
        assert "rslave" in entry["options"] and "rprivate" not in entry["options"]
    finally:
        daemon.docker("rm", "-f", name)
    refused = daemon.docker("create", "--mount", f"type=bind,source={host_dir},target=/x,bind-propagation=sideways",
                            busybox, check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "invalid propagation mode: sideways" in refused.stderr.decode()


@pytest.mark.parametrize("label", ["z", "Z", "ro,z"])
def test_selinux_labels_are_accepted_and_ignored(daemon: Daemon, busybox: str, host_dir: Path, label: str) -> None:
    (host_dir / "f").write_text("content\n")
    assert daemon.out("run", "--rm", "-v", f"{host_dir}:/x:{label}", busybox, "cat", "/x/f") == "content"
    assert "the :z/:Z relabel is skipped" in daemon.log.read_text()


@pytest.mark.parametrize("how", ["-v", "--mount"])
def test_a_read_only_bind_is_read_only(daemon: Daemon, busybox: str, host_dir: Path, how: str) -> None:
    spec = ["-v", f"{host_dir}:/x:ro"] if how == "-v" else ["--mount", f"type=bind,source={host_dir},target=/x,readonly"]
    wrote = daemon.docker("run", "--rm", *spec, busybox, "sh", "-c", "echo x > /x/f", check=False)
    assert wrote.returncode != 0
    assert "Read-only file system" in wrote.stderr.decode()
    assert not (host_dir / "f").exists()


@pytest.mark.parametrize(
    "spec",
    [["--tmpfs", "/p:size=1m,mode=1770"], ["--mount", "type=tmpfs,target=/p,tmpfs-size=1m,tmpfs-mode=1770"]],
)
def test_tmpfs_gets_its_size_and_mode(daemon: Daemon, busybox: str, spec: list[str]) -> None:
    out = daemon.out("run", "--rm", *spec, busybox, "sh", "-c", "stat -c %a /p && df -k /p | tail -n 1")
    mode, df = out.splitlines()
    assert mode == "1770"
    assert df.split()[1] == "1024"  # 1K-blocks: 1 MiB


def test_tmpfs_options_exec(daemon: Daemon, busybox: str) -> None:
    api = daemon.client().api
    run = "cp /bin/busybox /t/busybox && /t/busybox echo ran"

    def attempt(options: list[list[str]] | None) -> tuple[int, str]:
        tmpfs: dict[str, object] = {"SizeBytes": 8 << 20}
        if options is not None:
            tmpfs["Options"] = options
        c = api.create_container(busybox, ["sh", "-c", run],
                                 host_config={"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": tmpfs}]})  # fmt: skip
        try:
            api.start(c["Id"])
            code = api.wait(c["Id"])["StatusCode"]
            return code, api.logs(c["Id"]).decode()
        finally:
            api.remove_container(c["Id"], force=True)

    assert attempt([["exec"]]) == (0, "ran\n")
    code, out = attempt(None)  # noexec by default, as dockerd
    assert code != 0 and "Permission denied" in out
    with pytest.raises(docker.errors.APIError) as caught:
        attempt([["suid"]])
    assert caught.value.status_code == 400
    assert 'invalid mount config for type "tmpfs": invalid option: suid' in caught.value.explanation
