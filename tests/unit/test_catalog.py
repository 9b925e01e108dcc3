"""Which runtimes work on a host, how each is run, and the default (runtime/catalog.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import DaemonConfig, RuntimeOption, RuntimeOrigin
from dockyard.linux.cgroups import CgroupLayout
from dockyard.runtime.catalog import (
    NOUNIFIED,
    RuntimeHost,
    RuntimePlan,
    find_nounified,
    plan_runtimes,
    probe_host,
)

RUNC = RuntimeOption("runc", "/usr/sbin/runc", origin=RuntimeOrigin.BUILTIN)
CRUN = RuntimeOption("crun", "/usr/bin/crun", origin=RuntimeOrigin.BUILTIN)
BUILTIN = {"runc": RUNC, "crun": CRUN}
HELPER = "/opt/dy/libexec/dockyard/dockyard-nounified"
BOTH = frozenset({RUNC.path, CRUN.path})


def host(
    layout: CgroupLayout = CgroupLayout.HYBRID,
    controllers: tuple[str, ...] = ("hugetlb",),
    executables: frozenset[str] = BOTH,
    helper: str | None = HELPER,
) -> RuntimeHost:
    return RuntimeHost(layout, controllers, executables, helper)


def launchers(plan: RuntimePlan) -> dict[str, tuple[str, ...]]:
    return {name: option.launcher for name, option in plan.runtimes.items()}


def test_hybrid_host_with_the_helper_runs_crun_through_it_and_makes_it_the_default() -> None:
    plan = plan_runtimes(BUILTIN, None, host())
    assert plan.default == "crun"
    assert launchers(plan) == {"runc": (), "crun": (HELPER,)}
    assert plan.problems == {}


@pytest.mark.parametrize("layout", [CgroupLayout.V2, CgroupLayout.V1])
def test_crun_runs_directly_where_the_host_is_not_hybrid(layout: CgroupLayout) -> None:
    plan = plan_runtimes(BUILTIN, None, host(layout=layout, controllers=()))
    assert plan.default == "crun"
    assert launchers(plan) == {"runc": (), "crun": ()}


def test_hybrid_host_whose_v2_side_holds_no_controller_needs_no_helper() -> None:
    plan = plan_runtimes(BUILTIN, None, host(controllers=(), helper=None))
    assert plan.default == "crun"
    assert launchers(plan) == {"runc": (), "crun": ()}


def test_without_the_helper_crun_is_not_offered_and_runc_is_the_default() -> None:
    plan = plan_runtimes(BUILTIN, None, host(helper=None))
    assert plan.default == "runc"
    assert set(plan.runtimes) == {"runc"}
    assert plan.problems["crun"] == (
        "crun refuses this hybrid cgroup host (cgroup v2 controllers: hugetlb) "
        f"and {NOUNIFIED} is not installed (dev/setup builds it)"
    )


def test_a_missing_binary_is_not_offered() -> None:
    plan = plan_runtimes(BUILTIN, None, host(executables=frozenset({RUNC.path})))
    assert plan.default == "runc"
    assert set(plan.runtimes) == {"runc"}
    assert plan.problems == {"crun": "/usr/bin/crun is not an executable file"}


def test_the_users_choice_wins_over_the_fastest() -> None:
    plan = plan_runtimes(BUILTIN, "runc", host())
    assert plan.default == "runc"
    assert launchers(plan) == {"runc": (), "crun": (HELPER,)}  # crun stays selectable per container


def test_a_requested_runtime_that_cannot_work_is_kept_for_its_own_error() -> None:
    plan = plan_runtimes(BUILTIN, "crun", host(helper=None))
    assert plan.default == "crun"
    assert launchers(plan) == {"runc": (), "crun": ()}
    assert "crun" in plan.problems


def test_a_configured_runtime_is_kept_even_when_it_cannot_work() -> None:
    options = {**BUILTIN, "kata": RuntimeOption("kata", "/opt/kata")}
    plan = plan_runtimes(options, None, host())
    assert plan.runtimes["kata"] == options["kata"]
    assert plan.problems == {"kata": "/opt/kata is not an executable file"}
    assert plan.default == "crun"


def test_a_configured_crun_gets_the_helper_and_keeps_its_arguments() -> None:
    mine = RuntimeOption("fast", "/opt/bin/crun", ("--debug",))
    plan = plan_runtimes({**BUILTIN, "fast": mine}, "fast", host(executables=BOTH | {mine.path}))
    assert plan.default == "fast"
    assert plan.runtimes["fast"] == RuntimeOption("fast", "/opt/bin/crun", ("--debug",), launcher=(HELPER,))


def test_when_nothing_works_runc_stays_for_its_error() -> None:
    plan = plan_runtimes(BUILTIN, None, host(executables=frozenset(), helper=None))
    assert plan.default == "runc"
    assert set(plan.runtimes) == {"runc"}
    assert set(plan.problems) == {"runc", "crun"}


def test_only_configured_runtimes_none_preferred() -> None:
    mine = {"mine": RuntimeOption("mine", "/opt/mine")}
    plan = plan_runtimes(mine, None, host(executables=frozenset({"/opt/mine"})))
    assert plan.runtimes == mine
    assert plan.default == "runc"  # as before: no preferred runtime is configured


def test_apply_gives_the_config_its_runtimes_and_default() -> None:
    config = DaemonConfig(runtimes=BUILTIN)
    resolved = plan_runtimes(BUILTIN, None, host()).apply(config)
    assert resolved.default_runtime == "crun"
    assert resolved.runtimes["crun"].launcher == (HELPER,)
    assert resolved.runtimes["crun"].path == "/usr/bin/crun"  # what docker info reports
    assert resolved.requested_runtime is None and resolved.data_root == config.data_root


def test_resolving_twice_changes_nothing() -> None:
    once = plan_runtimes(BUILTIN, None, host())
    twice = plan_runtimes(once.runtimes, None, host())
    assert twice == once


# ---- the helper on disk ------------------------------------------------------------------


def _helper(directory: Path, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / NOUNIFIED
    path.write_bytes(b"\x7fELF")
    path.chmod(mode)
    return path


def test_find_nounified_takes_the_first_installed(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    helper = _helper(second)
    assert find_nounified((first, second)) == str(helper)
    assert find_nounified((tmp_path / "none",)) is None


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o644])
def test_find_nounified_ignores_a_helper_others_could_change_or_not_executable(tmp_path: Path, mode: int) -> None:
    _helper(tmp_path / "a", mode)
    assert find_nounified((tmp_path / "a",)) is None


def test_find_nounified_ignores_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a" / NOUNIFIED).mkdir(parents=True)
    assert find_nounified((tmp_path / "a",)) is None


def test_probe_host_sees_executables(tmp_path: Path) -> None:
    tool = tmp_path / "crun"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    facts = probe_host({"crun": RuntimeOption("crun", str(tool)), "gone": RuntimeOption("gone", str(tmp_path / "x"))})
    assert facts.executables == frozenset({str(tool)})
    assert facts.layout in set(CgroupLayout)
    if facts.layout is not CgroupLayout.HYBRID:
        assert facts.v2_controllers == ()
