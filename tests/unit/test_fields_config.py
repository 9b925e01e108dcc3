"""api.schemas.fields.container_config: a container.Config from a client, type-checked as Go decodes it."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.api.schemas.fields import container_config
from dockyard.errors import InvalidArgument
from dockyard.model.images import image_config_from_json

GOOD: dict[str, Any] = {
    "User": "u", "Env": ["A=1"], "Cmd": "sh", "Entrypoint": ["/bin/sh", "-c"], "Shell": None, "WorkingDir": "/w",
    "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/v": None}, "StopSignal": "TERM",
    "OnBuild": [], "StopTimeout": 3, "Tty": False,
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 3},
}  # fmt: skip


def test_a_good_config_passes_through_and_converts() -> None:
    doc = container_config(GOOD)
    assert image_config_from_json(doc).exposed_ports == ("80/tcp",)
    assert container_config(None) == {}
    assert container_config({"env": ["A=1"]})["Env"] == ["A=1"]  # Go's case-insensitive field names


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Cmd", 1e300, "invalid Cmd: expected a list of strings"),
        ("Env", "A=1", "invalid Env: expected a list of strings"),
        ("Env", [1], "invalid Env: expected a list of strings"),
        ("Labels", "abc", "invalid Labels: expected an object"),
        ("Labels", {"a": 1}, "invalid Labels: expected a string, got number 1"),
        ("ExposedPorts", "abc", "invalid ExposedPorts: expected an object"),
        ("ExposedPorts", {"80/tcp": 1}, "invalid ExposedPorts: expected an object of objects"),
        ("Volumes", [1], "invalid Volumes: expected an object"),
        ("OnBuild", True, "invalid OnBuild: expected a list of strings"),
        ("User", 5, "invalid User: expected a string, got number 5"),
        ("Tty", "yes", "invalid Tty: expected a boolean, got string"),
        ("StopTimeout", 1.5, "invalid StopTimeout: expected an integer (int64), got number 1.5"),
        ("Healthcheck", [], "invalid Healthcheck: expected an object"),
        ("Healthcheck", {"Interval": "1s"}, "invalid Healthcheck.Interval: expected an integer (int64), got string"),
        ("Healthcheck", {"Test": "true"}, "invalid Healthcheck.Test: expected a list of strings"),
        ("Healthcheck", {"Retries": 2**70}, ("invalid Healthcheck.Retries: expected an integer (int64), got number "
                                             "1180591620717411303424")),
    ],
)  # fmt: skip
def test_wrong_types_are_invalid_arguments(field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        container_config({**GOOD, field: value})
    assert caught.value.message == message


@pytest.mark.parametrize("value", ["abc", 1, [], True])
def test_a_config_must_be_an_object(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="invalid config: expected an object"):
        container_config(value)
