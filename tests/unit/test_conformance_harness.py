"""dev/conformance's pure parts: the look-alike images and the outcome summary."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "dev" / "conformance"


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("dev_conformance", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


conformance = _load()


def _members(alpine: bool) -> dict[str, tarfile.TarInfo]:
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed")
    with tarfile.open(fileobj=io.BytesIO(conformance.rootfs_tar(alpine=alpine))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_alpine_lookalike_has_what_the_suite_runs() -> None:
    members = _members(alpine=True)
    # Commands docker-py's container/exec/healthcheck tests run inside TEST_IMG.
    for applet in ("sh", "cat", "echo", "sleep", "top", "ps", "printf", "env", "id", "whoami",
                   "pwd", "touch", "ls", "mkdir", "test", "wc", "true", "false"):
        assert members[f"bin/{applet}"].linkname == "busybox", applet
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode & 0o111
    assert members["var/opt"].isdir()  # exec_create(workdir='/var/opt')
    assert members["tmp"].mode == 0o1777


def test_alpine_lookalike_knows_alpines_users() -> None:
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed")
    with tarfile.open(fileobj=io.BytesIO(conformance.rootfs_tar(alpine=True))) as tar:
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        users = {line.split(":")[0]: line.split(":")[2] for line in passwd.read().decode().splitlines()}
    assert users["root"] == "0"
    assert users["postgres"] == "70"  # exec_create(user='postgres') expects `whoami` to say it


def test_busybox_lookalike_is_plain() -> None:
    members = _members(alpine=False)
    assert "bin/sh" in members and "sbin/nologin" not in members


def test_deselected_entries_have_a_kind_and_a_reason() -> None:
    kinds = {"networks", "volumes", "pull", "build", "transport", "swarm", "logs"}
    for nodeid, reason in conformance.DESELECTED.items():
        assert nodeid.startswith("tests/integration/") and "::" in nodeid, nodeid
        kind, _, why = reason.partition(": ")
        assert kind in kinds and why, (nodeid, reason)


def test_summary_counts_each_outcome_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = "tests/integration/api_container_test.py::T::"
    e = "tests/integration/api_exec_test.py::T::"
    report = tmp_path / "r.json"
    report.write_text(json.dumps({
        "results": [
            {"nodeid": c + "a", "when": "call", "outcome": "passed", "message": "", "duration": 0},
            {"nodeid": c + "b", "when": "call", "outcome": "failed", "message": "assert 0 != 0", "duration": 0},
            {"nodeid": c + "c", "when": "call", "outcome": "xfailed", "message": "", "duration": 0},
            {"nodeid": e + "d", "when": "setup", "outcome": "error", "message": "boom", "duration": 0},
        ],
        "deselected": [c + "z"],
    }))
    conformance.summarize(report, ("api_container_test", "api_exec_test"))
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("api_", "total"))}
    # passed failed error skipped xfailed xpassed deselected
    assert rows["api_container_test"] == ["1", "1", "0", "0", "1", "0", "1"]
    assert rows["api_exec_test"] == ["0", "0", "1", "0", "0", "0", "0"]
    assert "failed api_container_test.py::T::b: assert 0 != 0" in out
    assert out.rstrip().endswith("1 passed, 2 failed, 1 skipped")
