"""Pull progress lines: dockerd's sizes and bar (model/progress.py, api/schemas/progress.py)."""

from __future__ import annotations

import pytest

from dockyard.api.schemas.progress import error_doc, progress_doc
from dockyard.model.progress import Progress, human_size, layer_status, progress_bar


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (527, "527B"), (1000, "1kB"), (32768, "32.77kB"), (1068805, "1.069MB"), (999999, "1000kB"),
     (2_500_000_000, "2.5GB")],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_bar() -> None:
    assert progress_bar(32768, 1068805) == "[=>" + " " * 49 + "]  32.77kB/1.069MB"
    assert progress_bar(1068805, 1068805) == "[" + "=" * 50 + ">]  1.069MB/1.069MB"
    assert progress_bar(0, None) == ""
    assert progress_bar(2000, None) == "     2kB"
    assert progress_bar(3000, 2000).endswith("]      3kB")  # a current beyond the total: no total shown


def test_docs() -> None:
    assert progress_doc(Progress("Pulling from x/bb", "1")) == {"status": "Pulling from x/bb", "id": "1"}
    assert progress_doc(layer_status("Pull complete", "abc")) == {"status": "Pull complete", "progressDetail": {}, "id": "abc"}
    doc = progress_doc(layer_status("Downloading", "abc", 500, 1000))
    assert doc["progressDetail"] == {"current": 500, "total": 1000}
    assert doc["progress"].startswith("[" + "=" * 25 + ">")
    assert list(doc) == ["status", "progressDetail", "progress", "id"]
    assert progress_doc(Progress("Digest: sha256:1")) == {"status": "Digest: sha256:1"}
    assert error_doc("boom") == {"errorDetail": {"message": "boom"}, "error": "boom"}
