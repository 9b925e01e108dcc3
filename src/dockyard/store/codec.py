"""Frozen dataclasses <-> JSON text for SQLite columns, driven by their type hints.

Our own record format, not Docker's wire shape: field names are the Python names.
Unknown keys are ignored and missing ones take the field default, so adding a
field to a record needs no migration.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import ipaddress
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_ADDRESSES = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_NETWORKS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_INTERFACES = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)
_IP_TYPES = (*_ADDRESSES, *_NETWORKS)  # interfaces are addresses too


_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names (None: not a dataclass), looked up once per class."""
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return None


def encode(value: Any) -> Any:
    cls: type = type(value)
    if cls in _PLAIN:  # most values: answered before any other test
        return value
    names = _field_names(cls)
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _IP_TYPES):
        return str(value)  # "10.0.0.2", "10.0.0.0/24", "10.0.0.2/24" (an interface)
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"), sort_keys=True)


def loads(cls: type[T], text: str) -> T:
    return typing.cast(T, decode(cls, json.loads(text)))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, raw: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if raw is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], raw)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        kwargs = {
            f.name: decode(hints[f.name], raw[f.name])
            for f in dataclasses.fields(tp)
            if isinstance(raw, dict) and f.name in raw
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(raw)
    # A union of both versions decodes through its first member: parse by the text, not the type.
    if tp in _INTERFACES:
        return ipaddress.ip_interface(raw)
    if tp in _NETWORKS:
        return ipaddress.ip_network(raw)
    if tp in _ADDRESSES:
        return ipaddress.ip_address(raw)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in raw)
        return tuple(decode(a, v) for a, v in zip(args, raw, strict=True))
    if origin in (Mapping, dict, typing.Mapping):
        _, value_type = typing.get_args(tp)
        return {k: decode(value_type, v) for k, v in raw.items()}
    return raw
