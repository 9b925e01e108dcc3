"""The runtime's command line (runtime/oci.py): how a launched runtime is called, its flags."""

from __future__ import annotations

import pytest

from dockyard.runtime.oci import OciRuntime, is_crun, update_args
from dockyard.runtime.spec import Resources

HELPER = "/opt/dy/libexec/dockyard/dockyard-nounified"


def test_a_runtime_without_launcher_is_called_directly() -> None:
    rt = OciRuntime("runc", "/usr/sbin/runc", "/run/dy/runc", ("--debug",))
    assert rt.executable == "/usr/sbin/runc"
    assert rt.global_args == ("--root", "/run/dy/runc", "--debug")


def test_a_launched_runtime_puts_its_path_first_among_the_arguments() -> None:
    # conmon runs `-r` with the --runtime-arg values right after it: the helper then execs crun.
    rt = OciRuntime("crun", "/usr/bin/crun", "/run/dy/crun", ("--debug",), (HELPER, "--flag"))
    assert rt.executable == HELPER
    assert rt.global_args == ("--flag", "/usr/bin/crun", "--root", "/run/dy/crun", "--debug")


@pytest.mark.parametrize(("path", "crun"), [("/usr/bin/crun", True), ("crun", True), ("/usr/sbin/runc", False),
                                            ("/opt/crun-1.9/bin/krun", False)])  # fmt: skip
def test_is_crun(path: str, crun: bool) -> None:
    assert is_crun(path) is crun


def test_pids_can_be_left_out_when_there_is_no_limit() -> None:
    # For crun on cgroup v1, which writes -1 as it is (the kernel wants "max").
    assert update_args(Resources(memory=1 << 26), lift_pids=False) == ("--memory", "67108864")
    assert update_args(Resources(pids_limit=0), lift_pids=False) == ()
    assert update_args(Resources(pids_limit=7), lift_pids=False) == ("--pids-limit", "7")
    assert update_args(Resources(pids_limit=0)) == ("--pids-limit", "-1")
