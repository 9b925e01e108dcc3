"""Detach keys: the key sequence that leaves an attach or exec session without ending it.

The spec is dockerd's (moby/term `ToBytes`): comma-separated keys, each either one ASCII
character, `ctrl-@`, `ctrl-a`..`ctrl-z`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`, `ctrl-_`
(bytes 0..31 in that order) or `DEL` (127). Default `ctrl-p,ctrl-q`.

`DetachScan` scans what the client types: it passes on every byte that is not part of
the sequence, holds back a partial match, and says when the whole sequence was typed.
Unlike moby's escapeProxy, a byte that breaks a partial match is itself checked as the start
of a new match, so `ctrl-p ctrl-p ctrl-q` detaches (the first `ctrl-p` is passed on): the rule
is simply "everything before the first occurrence of the sequence goes through".
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL_NAMES = ("@", *"abcdefghijklmnopqrstuvwxyz", "[", "\\", "]", "^", "_")
_NAMED: dict[str, int] = {f"ctrl-{name}": code for code, name in enumerate(_CTRL_NAMES)}
_NAMED["DEL"] = 127


def key_bytes(spec: str) -> bytes:
    """moby's ToBytes: the bytes a spec names; ValueError names the first unknown key."""
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1 and key.isascii():
            codes.append(ord(key))
        elif key in _NAMED:
            codes.append(_NAMED[key])
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(codes)


@dataclass(frozen=True)
class DetachKeys:
    sequence: bytes
    spec: str  # as given (or the default), for inspect output

    def scan(self) -> DetachScan:
        """A fresh scanner for one session's stdin."""
        return DetachScan(self.sequence)


def parse_detach_keys(spec: str) -> DetachKeys:
    """The session's keys; empty means dockerd's default. dockerd's wording for attach
    (400); exec create words it `Invalid escape keys (%s) provided`."""
    if not spec:
        return DetachKeys(key_bytes(DEFAULT_DETACH_KEYS), DEFAULT_DETACH_KEYS)
    try:
        return DetachKeys(key_bytes(spec), spec)
    except ValueError:
        raise InvalidArgument(f"Invalid detach keys ({spec}) provided") from None


@dataclass(frozen=True)
class Scanned:
    passed: bytes  # forward these to the container's stdin, in order
    detached: bool  # the sequence was typed: detach now; bytes after it are dropped
    next: DetachScan  # the scanner for the following chunk


@dataclass(frozen=True)
class DetachScan:
    """Scanner state: `held` leading bytes of the sequence typed and not yet passed on."""

    sequence: bytes
    held: int = 0

    def feed(self, chunk: bytes) -> Scanned:
        keys = self.sequence
        if not keys:
            return Scanned(chunk, False, self)
        out = bytearray()
        held = self.held
        i, end = 0, len(chunk)
        while i < end:
            if held == 0:
                # Fast path for pasted text: jump to the next byte that could start the sequence.
                j = chunk.find(keys[0], i)
                if j < 0:
                    out += chunk[i:]
                    break
                out += chunk[i:j]
                i = j
            byte = chunk[i]
            i += 1
            if byte == keys[held]:
                held += 1
                if held == len(keys):
                    return Scanned(bytes(out), True, DetachScan(keys))
                continue
            seen = keys[:held] + bytes((byte,))
            keep = _longest_prefix_suffix(keys, seen)
            out += seen[: len(seen) - keep]
            held = keep
        return Scanned(bytes(out), False, DetachScan(keys, held))

    def flush(self) -> bytes:
        """At the client's EOF: the held bytes were typed, not a detach; pass them on."""
        return self.sequence[: self.held]


def _longest_prefix_suffix(keys: bytes, seen: bytes) -> int:
    """The longest k < len(keys) such that keys[:k] ends `seen` (sequences are a few bytes)."""
    for k in range(min(len(seen), len(keys) - 1), 0, -1):
        if seen.endswith(keys[:k]):
            return k
    return 0
