"""`docker cp` and `docker diff` on the wire: the X-Docker-Container-Path-Stat header, the
archive query flags, and the /changes document."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from dockyard.model.filechanges import FileChange
from dockyard.model.pathstat import PathStat, go_time

PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


def path_stat_json(stat: PathStat) -> dict[str, Any]:
    """dockerd's container.PathStat JSON (field order as Go marshals it)."""
    return {
        "name": stat.name,
        "size": stat.size,
        "mode": stat.mode,
        "mtime": go_time(stat.mtime_ns),
        "linkTarget": stat.link_target,
    }


def path_stat_header(stat: PathStat) -> str:
    """The header value: base64 (standard, padded) of the compact JSON."""
    body = json.dumps(path_stat_json(stat), separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(body.encode()).decode("ascii")


def changes_json(changes: Sequence[FileChange]) -> list[dict[str, Any]] | None:
    """GET /containers/{id}/changes: `null` when nothing changed, as dockerd's nil slice."""
    if not changes:
        return None
    return [{"Path": c.path, "Kind": int(c.kind)} for c in changes]


def query_bool(value: str | None) -> bool:
    """dockerd's httputils.BoolValue: anything but "", "0", "no", "false", "none" is true."""
    if value is None:
        return False
    return value.strip().lower() not in ("", "0", "no", "false", "none")
