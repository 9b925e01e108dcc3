"""`GET /containers/{id}/top` documents: dockerd's ContainerTopResponse."""

from __future__ import annotations

from typing import Any

from dockyard.model.top import Top


def top_document(top: Top) -> dict[str, Any]:
    return {"Processes": [list(row) for row in top.processes], "Titles": list(top.titles)}
