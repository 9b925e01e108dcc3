"""State.Health in dockerd's shape."""

from __future__ import annotations

from typing import Any

from dockyard.model.health import Health
from dockyard.model.times import format_ns


def health_doc(health: Health) -> dict[str, Any]:
    return {
        "Status": health.status.value,
        "FailingStreak": health.failing_streak,
        "Log": [
            {"Start": format_ns(r.start_ns), "End": format_ns(r.end_ns), "ExitCode": r.exit_code, "Output": r.output}
            for r in health.log
        ],
    }
