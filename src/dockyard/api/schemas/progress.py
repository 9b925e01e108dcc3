"""Progress records as dockerd's JSON stream lines (pull, push)."""

from __future__ import annotations

from typing import Any

from dockyard.model.progress import Progress, PushResult, progress_bar


def progress_doc(p: Progress | PushResult) -> dict[str, Any]:
    if isinstance(p, PushResult):
        return {"progressDetail": {}, "aux": {"Tag": p.tag, "Digest": p.digest, "Size": p.size}}
    doc: dict[str, Any] = {"status": p.status}
    if p.detail:
        detail: dict[str, int] = {}
        if p.current is not None:
            detail["current"] = p.current
        if p.total is not None:
            detail["total"] = p.total
        doc["progressDetail"] = detail
        if p.current is not None:
            doc["progress"] = progress_bar(p.current, p.total)
    if p.id:
        doc["id"] = p.id
    return doc


def error_doc(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}
