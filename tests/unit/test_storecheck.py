"""model/storecheck.py: findings and the repair plan from a view of the store."""

from __future__ import annotations

from dockyard.model.storecheck import Finding, IndexFacts, LayerFacts, StoreView, check

A, B, C, D = ("sha256:" + x * 64 for x in "abcd")
IMG1, IMG2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _view(**changes: object) -> StoreView:
    base: dict[str, object] = {
        # IMG1 = [A], IMG2 = [A, B-on-A]; chain ids are the diff ids for the test's sake.
        "images": {IMG1: (A,), IMG2: (A, B)},
        "layers": {A: LayerFacts(A, "da", 0), B: LayerFacts(B, "db", 1)},
        "dirs": {"da": IndexFacts(True, A), "db": IndexFacts(True, B)},
        "blobs": frozenset({IMG1, IMG2}),
        "container_images": frozenset(),
        "container_dirs": frozenset(),
    }
    base.update(changes)
    return StoreView(**base)  # type: ignore[arg-type]


def test_a_consistent_store_is_clean() -> None:
    plan = check(_view())
    assert plan.clean
    assert plan.remove_images == plan.remove_layers == plan.remove_dirs == plan.remove_blobs == ()


def test_orphans_are_reported_and_removed() -> None:
    plan = check(_view(
        dirs={"da": IndexFacts(True, A), "db": IndexFacts(True, B), "stray": IndexFacts(True, "")},
        blobs=frozenset({IMG1, IMG2, C, D}),
        layers={A: LayerFacts(A, "da", 0), B: LayerFacts(B, "db", 1), C: LayerFacts(C, "dc", 0)},
    ))
    kinds = {(p.kind, p.subject) for p in plan.problems}
    assert (Finding.ORPHAN_DIR, "stray") in kinds
    assert (Finding.ORPHAN_BLOB, D) in kinds
    assert (Finding.ORPHAN_BLOB, C) not in kinds  # C's row takes it for its old tar
    assert (Finding.ORPHAN_LAYER, C) in kinds
    assert (Finding.MISSING_DIR, "dc") in kinds
    assert plan.remove_images == ()  # the images themselves are sound
    assert plan.remove_layers == (C,)
    assert plan.remove_dirs == ("stray",)
    assert plan.remove_blobs == (C, D)  # C's row goes, and with it the need for its tar


def test_a_missing_dir_breaks_the_images_on_it_children_first() -> None:
    plan = check(_view(dirs={"db": IndexFacts(True, B)}))
    assert (Finding.MISSING_DIR, "da") in {(p.kind, p.subject) for p in plan.problems}
    assert set(plan.remove_images) == {IMG1, IMG2}
    assert plan.remove_layers == (B, A)  # the child row before its parent
    assert plan.remove_dirs == ("db",)
    assert plan.remove_blobs == (IMG1, IMG2)


def test_bad_index_and_legacy_tars() -> None:
    # B's index is for other bytes; A has no index but its old tar blob: sound.
    plan = check(_view(dirs={"da": IndexFacts(True, ""), "db": IndexFacts(True, C)}, blobs=frozenset({IMG1, IMG2, A})))
    problems = {(p.kind, p.subject) for p in plan.problems}
    assert (Finding.BAD_INDEX, "db") in problems
    assert (Finding.BROKEN_IMAGE, IMG2) in problems and (Finding.BROKEN_IMAGE, IMG1) not in problems
    assert plan.remove_images == (IMG2,)
    assert plan.remove_layers == (B,)
    assert A not in plan.remove_blobs  # still the only copy of A's tar


def test_an_indexed_layer_no_longer_needs_its_old_tar_blob() -> None:
    plan = check(_view(blobs=frozenset({IMG1, IMG2, A})))
    assert [(p.kind, p.subject) for p in plan.problems] == [(Finding.ORPHAN_BLOB, A)]
    assert plan.remove_blobs == (A,)


def test_a_broken_image_a_container_uses_is_kept() -> None:
    plan = check(_view(blobs=frozenset({IMG2}), container_images=frozenset({IMG1}), container_dirs=frozenset({"rw"}),
                       dirs={"da": IndexFacts(True, A), "db": IndexFacts(True, B), "rw": IndexFacts(True, "")}))  # fmt: skip
    assert (Finding.MISSING_BLOB, IMG1) in {(p.kind, p.subject) for p in plan.problems}
    assert plan.kept_broken == (IMG1,) and plan.remove_images == ()
    assert "rw" not in plan.remove_dirs
    assert (Finding.ORPHAN_DIR, "rw") not in {(p.kind, p.subject) for p in plan.problems}
