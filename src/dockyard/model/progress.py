"""Progress of a pull or a push, one record per line of dockerd's JSON stream."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """A status line. `id` is a layer's short digest (or the tag, for "Pulling from");
    `detail` says whether the line carries progressDetail, with current/total when known."""

    status: str
    id: str = ""
    current: int | None = None
    total: int | None = None
    detail: bool = False


@dataclass(frozen=True)
class PushResult:
    """The aux line that ends a pushed tag (dockerd's types.PushResult)."""

    tag: str
    digest: str
    size: int


def layer_status(status: str, layer_id: str, current: int | None = None, total: int | None = None) -> Progress:
    return Progress(status, layer_id, current, total, detail=True)


_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float) -> str:
    """go-units' HumanSize: decimal units, four significant digits ("32.77kB", "1.069MB")."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_UNITS[unit]}"


def progress_bar(current: int, total: int | None) -> str:
    """dockerd's `progress` text: a 50-column bar and the sizes, as its JSONProgress renders
    it for a client that gave no terminal width."""
    if current <= 0 and (total is None or total <= 0):
        return ""
    if total is None or total <= 0:
        return f"{human_size(current):>8}"
    filled = min(int(current / total * 100) // 2, 50)
    bar = f"[{'=' * filled}>{' ' * (50 - filled)}] "
    if current > total:
        return bar + f"{human_size(current):>8}"
    return bar + f"{human_size(current):>8}/{human_size(total)}"
