"""The keeping of crun's compiled seccomp programs (runtime/seccompfilters.py)."""

from __future__ import annotations

import base64
from pathlib import Path

from dockyard.runtime.seccompfilters import CompiledFilters, filter_key, valid_program

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}  # fmt: skip
PROGRAM = bytes(range(8)) * 3


def test_key_ignores_key_order_but_not_content() -> None:
    reordered = {k: PROFILE[k] for k in reversed(list(PROFILE))}
    assert filter_key("crun", PROFILE) == filter_key("crun", reordered)
    assert filter_key("crun", PROFILE) != filter_key("crun-2", PROFILE)
    other = {**PROFILE, "defaultAction": "SCMP_ACT_KILL"}
    assert filter_key("crun", PROFILE) != filter_key("crun", other)


def test_only_whole_programs_of_a_loadable_size_are_valid() -> None:
    assert valid_program(PROGRAM)
    assert not valid_program(b"")
    assert not valid_program(PROGRAM[:-1])
    assert not valid_program(b"\0" * 8 * 4097)


def test_first_use_asks_to_keep_then_later_uses_get_the_program(tmp_path: Path) -> None:
    filters = CompiledFilters("/usr/bin/crun", tmp_path / "kept")
    first = filters.use_for(PROFILE)
    assert first.bpf is None
    written = tmp_path / "seccomp.bpf"
    written.write_bytes(PROGRAM)
    filters.keep(first.key, written)
    again = filters.use_for(PROFILE)
    assert again.key == first.key and base64.b64decode(again.bpf or "") == PROGRAM
    # A daemon started later (same runtime) finds it on disk.
    assert base64.b64decode(CompiledFilters("/usr/bin/crun", tmp_path / "kept").use_for(PROFILE).bpf or "") == PROGRAM


def test_a_torn_or_missing_program_is_not_kept(tmp_path: Path) -> None:
    filters = CompiledFilters("/usr/bin/crun", tmp_path / "kept")
    key = filters.use_for(PROFILE).key
    filters.keep(key, tmp_path / "absent")
    torn = tmp_path / "torn"
    torn.write_bytes(PROGRAM[:-3])
    filters.keep(key, torn)
    assert filters.use_for(PROFILE).bpf is None
    (tmp_path / "kept").mkdir(exist_ok=True)
    (tmp_path / "kept" / key).write_bytes(b"junk")  # damaged on disk: compiled again
    assert CompiledFilters("/usr/bin/crun", tmp_path / "kept").use_for(PROFILE).bpf is None
