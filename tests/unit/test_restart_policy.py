"""The restart decisions: pure functions of the policy and what happened."""

from __future__ import annotations

import pytest

from dockyard.model.containers import RestartPolicy, restart_delay


@pytest.mark.parametrize(
    ("policy", "code", "restarts", "by_user", "expected"),
    [
        (RestartPolicy("no"), 1, 0, False, False),
        (RestartPolicy(""), 1, 0, False, False),
        (RestartPolicy("always"), 0, 5, False, True),
        (RestartPolicy("always"), 0, 0, True, False),
        (RestartPolicy("unless-stopped"), 1, 0, False, True),
        (RestartPolicy("unless-stopped"), 1, 0, True, False),
        (RestartPolicy("on-failure"), 0, 0, False, False),
        (RestartPolicy("on-failure"), 2, 100, False, True),
        (RestartPolicy("on-failure", 3), 2, 2, False, True),
        (RestartPolicy("on-failure", 3), 2, 3, False, False),
        (RestartPolicy("on-failure", 3), 137, 0, True, False),
    ],
)
def test_should_restart(policy: RestartPolicy, code: int, restarts: int, by_user: bool, expected: bool) -> None:
    assert policy.should_restart(code, restarts, by_user) is expected


@pytest.mark.parametrize(
    ("policy", "code", "manual", "expected"),
    [
        (RestartPolicy("always"), 0, True, True),  # always: even after a manual stop
        (RestartPolicy("unless-stopped"), 0, True, False),
        (RestartPolicy("unless-stopped"), 0, False, True),
        (RestartPolicy("on-failure"), 1, False, True),
        (RestartPolicy("on-failure"), 0, False, False),
        (RestartPolicy("on-failure"), 1, True, False),
        (RestartPolicy("no"), 1, False, False),
    ],
)
def test_on_daemon_start(policy: RestartPolicy, code: int, manual: bool, expected: bool) -> None:
    assert policy.on_daemon_start(code, manual) is expected


def test_backoff_doubles_caps_and_resets() -> None:
    delay = restart_delay(0.0, 0.1)
    assert delay == 0.1
    delays = [delay := restart_delay(delay, 0.1) for _ in range(12)]
    assert delays[:3] == [0.2, 0.4, 0.8]
    assert delays[-1] == 60.0
    assert restart_delay(60.0, 10.0) == 0.1  # a healthy run resets the back-off
