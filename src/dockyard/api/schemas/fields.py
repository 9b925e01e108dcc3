"""Readers of Docker's JSON fields that refuse what Go's decoder would refuse: a number
for a string, a fraction or a value beyond int64 for an integer (dockerd answers 400)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dockyard.errors import InvalidArgument

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_EXPECTED = {"string": "a string", "bool": "a boolean", "int64": "an integer (int64)", "int": "an integer (int64)",
             "uint16": "an integer from 0 to 65535", "uint32": "an integer from 0 to 4294967295",
             "uint64": "an integer (uint64)", "uint": "an integer (uint64)", "int32": "an integer (int32)"}  # fmt: skip


def type_error(field: str, value: Any, go_type: str) -> InvalidArgument:
    """Go's decoder would fail here ("cannot unmarshal ... of type int64"); we say which field."""
    shown = f"number {value}" if _go_type(value) == "number" else _go_type(value)
    return InvalidArgument(f"invalid {field}: expected {_EXPECTED.get(go_type, go_type)}, got {shown}")


class GoObject(Mapping[str, Any]):
    """A JSON object read as Go's encoding/json fills a struct: a field name matches exactly,
    or else case-insensitively (docker-py sends `detachKeys` where the field is DetachKeys)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self._folded: dict[str, str] | None = None

    def __getitem__(self, key: str) -> Any:
        if key in self._raw:
            return self._raw[key]
        if self._folded is None:
            self._folded = {}
            for name in self._raw:
                self._folded.setdefault(name.casefold(), name)
        return self._raw[self._folded[key.casefold()]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {what}: expected an object")
    return GoObject(value)


def string(value: Any, field: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise type_error(field, value, "string")
    return value


def strs(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {what}: expected a list of strings")
    return tuple(value)


def opt_strs(value: Any, what: str) -> tuple[str, ...] | None:
    return None if value is None else strs(value, what)


def str_map(value: Any, field: str) -> dict[str, str]:
    """A JSON object of strings (Labels, Tmpfs, Sysctls, ...)."""
    out = {}
    for key, item in obj(value, field).items():
        if not isinstance(item, str):
            raise type_error(field, item, "string")
        out[str(key)] = item
    return out


def integer(value: Any, field: str, default: int = 0, go_type: str = "int64") -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(field, value, go_type)
    if isinstance(value, float) and not value.is_integer():
        raise type_error(field, value, go_type)
    number = int(value)
    low, high = (0, 2**64 - 1) if go_type.startswith("uint") else (INT64_MIN, INT64_MAX)
    if go_type == "uint16":
        low, high = 0, 2**16 - 1
    elif go_type == "uint32":
        low, high = 0, 2**32 - 1
    elif go_type == "int32":
        low, high = -(2**31), 2**31 - 1
    if not low <= number <= high:
        raise type_error(field, value, go_type)
    return number


def opt_integer(value: Any, field: str, go_type: str = "int64") -> int | None:
    return None if value is None else integer(value, field, go_type=go_type)


def boolean(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise type_error(field, value, "bool")
    return value


def opt_boolean(value: Any, field: str) -> bool | None:
    return None if value is None else boolean(value, field)


def _struct_map(value: Any, field: str) -> None:
    """A Go map[string]struct{} (ExposedPorts, Volumes): each value an object, or null."""
    for item in obj(value, field).values():
        if item is not None and not isinstance(item, dict):
            raise InvalidArgument(f"invalid {field}: expected an object of objects")


def _str_list(value: Any, field: str) -> None:
    """A Go []string: a list of strings, or null (a lone string is refused, as Go does)."""
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise InvalidArgument(f"invalid {field}: expected a list of strings")


_CONFIG_STRINGS = ("Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal")
_CONFIG_BOOLS = ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "ArgsEscaped",
                 "NetworkDisabled")  # fmt: skip
_HEALTH_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


def container_config(value: Any, what: str = "config") -> Mapping[str, Any]:
    """A container.Config document (a commit's config, an image config from a client), type-checked
    field by field as Go's decoder would before anything trusts its types; returned as read."""
    doc = obj(value, what)
    for name in _CONFIG_STRINGS:
        string(doc.get(name), name)
    for name in _CONFIG_BOOLS:
        boolean(doc.get(name), name)
    for name in ("Cmd", "Entrypoint", "Shell"):  # strslice: a string or a list of strings
        strs(doc.get(name), name)
    for name in ("Env", "OnBuild"):
        _str_list(doc.get(name), name)
    str_map(doc.get("Labels"), "Labels")
    for name in ("ExposedPorts", "Volumes"):
        _struct_map(doc.get(name), name)
    opt_integer(doc.get("StopTimeout"), "StopTimeout", go_type="int")
    health = obj(doc.get("Healthcheck"), "Healthcheck")
    _str_list(health.get("Test"), "Healthcheck.Test")
    for name in _HEALTH_DURATIONS:
        integer(health.get(name), f"Healthcheck.{name}")
    integer(health.get("Retries"), "Healthcheck.Retries", go_type="int")
    return doc
