"""model/imageentries: `docker images`' selection (dockerd 28's rules), without a store."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.filters import parse_filters
from dockyard.model.imageentries import ImageEntry, select_images
from dockyard.model.images import parse_image_config


def _entry(n: int, tags: tuple[str, ...] = (), parent: str = "", labels: dict[str, str] | None = None) -> ImageEntry:
    labels_json = ", ".join(f'"{k}": "{v}"' for k, v in (labels or {}).items())
    raw = ('{"architecture": "amd64", "os": "linux", "created": "2026-01-0%dT00:00:00Z", '
           '"config": {"Labels": {%s}}, "rootfs": {"type": "layers", "diff_ids": []}, "n": %d}' % (n, labels_json, n)).encode()  # fmt: skip
    image = parse_image_config(raw, f"sha256:{n:064x}")
    return ImageEntry(image, tags, parent, "", 0)


BASE = _entry(1, ("docker.io/library/base:1",))
STEP = _entry(2, parent=BASE.id)  # an intermediate image: untagged, with a child
HEAD = _entry(3, ("docker.io/library/app:1", "docker.io/library/app:2"), parent=STEP.id, labels={"tier": "web"})
LOOSE = _entry(4)  # dangling: untagged, no child
ALL = [BASE, STEP, HEAD, LOOSE]


def _ids(filters: str = "", include_all: bool = False) -> list[str]:
    created = {"base:1": 1 << 60, "app:1": 3 << 60}
    found = select_images(ALL, parse_filters(filters), include_all, lambda name: created.get(name, 0), 0)
    return [e.id for e in found]


def test_intermediate_images_only_with_all_and_newest_first() -> None:
    assert _ids() == [LOOSE.id, HEAD.id, BASE.id]
    assert _ids(include_all=True) == [LOOSE.id, HEAD.id, STEP.id, BASE.id]


def test_dangling_lists_heads_without_a_tag() -> None:
    assert _ids('{"dangling": ["true"]}', include_all=True) == [LOOSE.id]
    assert _ids('{"dangling": ["false"]}') == [HEAD.id, BASE.id]


def test_reference_keeps_only_the_matching_tags() -> None:
    [app] = select_images(ALL, parse_filters('{"reference": ["app:2"]}'), False, lambda _: 0, 0)
    assert app.tags == ("docker.io/library/app:2",)
    assert _ids('{"reference": ["*:1"]}') == [HEAD.id, BASE.id]


def test_label_and_unknown_filters() -> None:
    assert _ids('{"label": ["tier=web"]}') == [HEAD.id]
    with pytest.raises(InvalidArgument):
        _ids('{"colour": ["red"]}')
