"""docker history rows as dockerd builds them: layer sizes by step, ids down the parents."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.images import HistoryEntry, HistoryItem, Image, ImageConfig, image_history


def _image(history: tuple[HistoryEntry, ...], layers: int) -> Image:
    return Image(
        id="sha256:" + "c" * 64, raw_config=b"{}", created="2024-01-02T03:04:05Z", author="", architecture="amd64",
        os="linux", config=ImageConfig(), diff_ids=tuple(f"sha256:{i:064x}" for i in range(layers)),
        history=history,
    )  # fmt: skip


def test_sizes_follow_the_non_empty_steps_and_ids_the_parents() -> None:
    history = (
        HistoryEntry("2024-01-01T00:00:00Z", "ADD rootfs", comment="base"),
        HistoryEntry("2024-01-02T00:00:00Z", "ENV A=1", empty_layer=True),
        HistoryEntry("2024-01-03T00:00:00Z", "RUN make"),
    )
    rows = image_history(_image(history, 2), [1000, 14], [("sha256:" + "c" * 64, ("app:1",)), ("sha256:" + "b" * 64, ())])
    assert rows == (
        HistoryItem("sha256:" + "c" * 64, "2024-01-03T00:00:00Z", "RUN make", ("app:1",), 14, ""),
        HistoryItem("sha256:" + "b" * 64, "2024-01-02T00:00:00Z", "ENV A=1", (), 0, ""),
        HistoryItem("<missing>", "2024-01-01T00:00:00Z", "ADD rootfs", (), 1000, "base"),
    )


def test_no_history_is_no_rows_and_too_many_layers_is_an_error() -> None:
    assert image_history(_image((), 1), [5], [("sha256:" + "c" * 64, ())]) == ()
    with pytest.raises(InvalidArgument, match="too many non-empty layers in History section"):
        image_history(_image((HistoryEntry(), HistoryEntry()), 1), [5], [])
