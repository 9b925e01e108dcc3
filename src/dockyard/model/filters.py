"""The `filters=` query parameter of list and prune endpoints.

Clients send a JSON object of key -> values, in the current map form
`{"label": {"k=v": true}}` or the legacy (API < 1.22) list form `{"label": ["k=v"]}`.
Matching rules and error wording follow dockerd's filters package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.model import times
from dockyard.model.dockerfile import parse_go_duration


def _frozen(fields: Mapping[str, frozenset[str]]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType(dict(fields))


@dataclass(frozen=True)
class Filters:
    """Parsed filters: each key maps to the set of values asked for."""

    fields: Mapping[str, frozenset[str]] = field(default_factory=lambda: _frozen({}))

    @staticmethod
    def of(fields: Mapping[str, Iterable[str]]) -> Filters:
        """Build filters from plain values (handy for the engine and for tests)."""
        return Filters(_frozen({k: frozenset(v) for k, v in fields.items()}))

    def __bool__(self) -> bool:
        return bool(self.fields)

    def keys(self) -> frozenset[str]:
        return frozenset(self.fields)

    def values(self, key: str) -> frozenset[str]:
        return self.fields.get(key, frozenset())

    def has(self, key: str) -> bool:
        return key in self.fields

    def validate(self, allowed: Iterable[str]) -> None:
        """Refuse keys the endpoint does not know, with dockerd's message."""
        accepted = frozenset(allowed)
        for key in sorted(self.fields):
            if key not in accepted:
                raise InvalidArgument(f"invalid filter '{key}'")

    def match_exact(self, key: str, value: str) -> bool:
        """True if there is no filter on `key` or `value` is one of its values."""
        wanted = self.fields.get(key)
        return not wanted or value in wanted

    def match_prefix(self, key: str, value: str) -> bool:
        """Like match_exact, but a filter value may also be a prefix of `value` (ids)."""
        wanted = self.fields.get(key)
        return not wanted or any(value.startswith(w) for w in wanted)

    def match_regex(self, key: str, value: str) -> bool:
        """Like match_exact, but filter values may also be regular expressions searched in
        `value` (dockerd's `name=` filter); invalid expressions just do not match."""
        wanted = self.fields.get(key)
        if not wanted or value in wanted:
            return True
        for pattern in wanted:
            try:
                if re.search(pattern, value):
                    return True
            except re.error:
                continue
        return False

    def match_labels(self, labels: Mapping[str, str], key: str = "label") -> bool:
        """Check `label` filters ("k" must exist, "k=v" must be equal; all must hold).

        `label!` filters (as prune sends them for `--filter label!=...`) exclude an object
        when all of them hold, the same rule dockerd's prune uses.
        """
        if not _match_kv_list(self.fields.get(key), labels):
            return False
        negated = self.fields.get(key + "!")
        return negated is None or not _match_kv_list(negated, labels)

    def bool_value(self, key: str) -> bool | None:
        """A boolean filter such as dangling=true: None when absent; true/1 or false/0."""
        wanted = self.fields.get(key)
        if wanted is None:
            return None
        if not wanted:
            raise InvalidArgument(f"invalid filter '{key}'")
        is_true = "true" in wanted or "1" in wanted
        is_false = "false" in wanted or "0" in wanted
        if is_true == is_false:
            # Neither, or both: dockerd names every value it got.
            raise InvalidArgument(f"invalid filter '{key}={','.join(sorted(wanted))}'")
        return is_true


def _match_kv_list(wanted: frozenset[str] | None, sources: Mapping[str, str]) -> bool:
    if not wanted:
        return True
    for item in wanted:
        name, sep, value = item.partition("=")
        if name not in sources:
            return False
        if sep and sources[name] != value:
            return False
    return True


def _values_of(key: str, raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if isinstance(raw, dict):
        values = set()
        for value, enabled in raw.items():
            if not isinstance(enabled, bool):
                raise InvalidArgument(
                    f"invalid filter: values of '{key}' must map strings to booleans"
                )
            # {"v": false} is how a client says "not this value": leave it out.
            if enabled:
                values.add(value)
        return frozenset(values)
    if isinstance(raw, list):
        if not all(isinstance(v, str) for v in raw):
            raise InvalidArgument(f"invalid filter: values of '{key}' must be strings")
        return frozenset(raw)
    raise InvalidArgument(f"invalid filter: values of '{key}' must be an object or a list")


def parse_filters(raw: str | None) -> Filters:
    """Parse the `filters` query parameter; an absent or empty one means no filters."""
    if not raw:
        return Filters()
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filter: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid filter: filters must be a JSON object")
    return Filters(_frozen({key: _values_of(key, value) for key, value in doc.items()}))


def parse_time_filter(value: str, now_ns: int) -> int:
    """`until=`: a unix time, an RFC 3339 time, or a Go duration back from `now_ns` -> ns."""
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    stamp = times.parse_ns(value)
    if stamp:
        return stamp
    if "-" in value:
        # Go's GetTimestamp also takes "2006-01-02", "2006-01-02T15", "2006-01-02T15:04" and
        # zone-less times, in the daemon's zone.
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            moment = moment if moment.tzinfo else moment.astimezone()
            return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    try:
        return now_ns - parse_go_duration(value)
    except InvalidArgument:
        raise InvalidArgument(f"invalid filter 'until={value}'") from None
