"""dockerd's json-file log format, written from conmon's k8s-file lines and read back.

A record is one line, keys in dockerd's order, `log` left out when empty:
    {"log":"text\\n","stream":"stdout","time":"2026-12-01T10:00:00.123456789Z"}
escaped as Go's jsonlog writes it (`<>&` as \\u003c..., control characters as \\u00XX
except \\n and \\r, each invalid UTF-8 byte as \\ufffd, U+2028/2029 escaped), the time in
UTC as Go's RFC3339Nano (no trailing zeros in the fraction). A partial line (conmon's
`P`) is a record whose log has no trailing newline, as dockerd's partial messages.

Both directions work on a whole buffer of lines at a time, because Python pays per call:
escaping runs over the buffer with bytes methods, and reading splits the buffer and
slices each line by position, with json.loads kept for the lines that need it.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Callable

from dockyard.model.logs import LogRecord, stamp_ns
from dockyard.model.times import format_ns, parse_ns

# ---- writing -----------------------------------------------------------------------------

# Anything Go's writer would not copy as it is (the \n between lines is left alone).
_SPECIAL = re.compile(rb'[\x00-\x09\x0b-\x1f"\\<>&\x80-\xff]')
_CONTROL = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f]")
_CONTROL_ESCAPES = {bytes([b]): b"\\u00%02x" % b for b in range(0x20)}
# A run of valid multi-byte UTF-8 sequences, or one byte that starts none.
_UTF8 = re.compile(
    rb"(?:[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2})+|[\x80-\xff]"
)


def _invalid_byte(match: re.Match[bytes]) -> bytes:
    run = match.group()
    return run if len(run) > 1 else b"\\ufffd"


def escape(data: bytes) -> bytes:
    """Go's jsonlog string escaping of `data` (no quotes added). Newlines are kept as they
    are, so a buffer of many lines can be escaped in one call and split afterwards."""
    if _SPECIAL.search(data) is None:
        return data
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")  # first: the escapes below add backslashes
    if b'"' in data:
        data = data.replace(b'"', b'\\"')
    if b"<" in data:
        data = data.replace(b"<", b"\\u003c")
    if b">" in data:
        data = data.replace(b">", b"\\u003e")
    if b"&" in data:
        data = data.replace(b"&", b"\\u0026")
    if b"\r" in data:
        data = data.replace(b"\r", b"\\r")
    if _CONTROL.search(data) is not None:
        data = _CONTROL.sub(lambda m: _CONTROL_ESCAPES[m.group()], data)
    if not data.isascii():
        if b"\xe2\x80\xa8" in data:
            data = data.replace(b"\xe2\x80\xa8", b"\\u2028")
        if b"\xe2\x80\xa9" in data:
            data = data.replace(b"\xe2\x80\xa9", b"\\u2029")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = _UTF8.sub(_invalid_byte, data)
    return data


def go_time(ns: int) -> bytes:
    """Unix nanoseconds -> Go's RFC3339Nano in UTC: `2026-12-01T10:00:00.12Z`."""
    fixed = format_ns(ns)  # 2026-12-01T10:00:00.120000000Z
    fraction = fixed[20:29].rstrip("0")
    return (fixed[:19] + ("." + fraction if fraction else "") + "Z").encode()


class _Irregular(Exception):
    """A spool line that is not laid out as conmon writes it."""


# conmon's k8s-file line: `2026-11-27T19:52:41.652377680+00:00 stdout F text`
# (35 characters of time, then stream, tag, text): the first 45 bytes are the prefix.
_PREFIX_LEN = 45
_STREAMS = (b"stdout", b"stderr")


class SpoolEncoder:
    """Turns conmon's k8s-file lines into json-file lines.

    conmon stamps every line of one read with the same time, so the tail of a record
    (`","stream":"stdout","time":"..."}`) repeats: it is made once per distinct prefix and
    kept in a small cache.
    """

    _CACHE_MAX = 4096

    def __init__(self) -> None:
        self._suffixes: dict[bytes, bytes] = {}

    def encode(self, chunk: bytes) -> tuple[bytes, int]:
        """Whole k8s-file lines (the chunk ends with a newline) -> json-file lines, and how
        many spool lines were unreadable and left out."""
        escaped = escape(chunk)
        lines = escaped.split(b"\n")
        if lines[-1]:
            raise ValueError("the chunk must end with a newline")
        lines.pop()
        get = self._suffixes.get
        suffix = self._suffix
        try:
            out = b"".join([b'{"log":"' + line[45:] + (get(line[:45]) or suffix(line[:45])) for line in lines])
        except _Irregular:
            return self._encode_slowly(lines)
        if b'{"log":"","' in out:  # an empty partial record: dockerd leaves `log` out
            out = out.replace(b'{"log":"","', b'{"')
        return out, 0

    def _suffix(self, prefix: bytes) -> bytes:
        if (
            len(prefix) != _PREFIX_LEN
            or prefix[35:36] != b" "
            or prefix[36:42] not in _STREAMS
            or prefix[42:43] != b" "
            or prefix[43:44] not in (b"F", b"P")
            or prefix[44:45] != b" "
        ):
            raise _Irregular
        ns = parse_ns(prefix[:35].decode("ascii", "replace"))
        if ns == 0:
            raise _Irregular
        newline = b"\\n" if prefix[43:44] == b"F" else b""
        made = newline + b'","stream":"' + prefix[36:42] + b'","time":"' + go_time(ns) + b'"}\n'
        if len(self._suffixes) >= self._CACHE_MAX:
            self._suffixes.clear()
        self._suffixes[prefix] = made
        return made

    def _encode_slowly(self, lines: list[bytes]) -> tuple[bytes, int]:
        out: list[bytes] = []
        skipped = 0
        for line in lines:
            parts = line.split(b" ", 3)
            if len(parts) < 3 or parts[1] not in _STREAMS or parts[2] not in (b"F", b"P"):
                skipped += 1
                continue
            ns = parse_ns(parts[0].decode("ascii", "replace"))
            if ns == 0:
                skipped += 1
                continue
            text = parts[3] if len(parts) == 4 else b""
            if parts[2] == b"F":
                text += b"\\n"
            head = b'{"log":"' + text + b'","' if text else b'{"'
            out.append(head + b'stream":"' + parts[1] + b'","time":"' + go_time(ns) + b'"}\n')
        return b"".join(out), skipped


def encode_record(stream: str, data: bytes, ns: int) -> bytes:
    """One record, as dockerd's json-file writes it (for tests and one-off writes)."""
    log = escape(data).replace(b"\n", b"\\n")
    head = b'{"log":"' + log + b'","' if log else b'{"'
    return head + b'stream":"' + stream.encode() + b'","time":"' + go_time(ns) + b'"}\n'


# ---- reading -----------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone \\ud800 in a foreign file: Go reads it as U+FFFD
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _unescape(log: bytes) -> bytes | None:
    try:
        text = json.loads(b'"' + log + b'"')
    except (ValueError, UnicodeDecodeError):
        try:
            text = json.loads('"' + log.decode("utf-8", "replace") + '"')
        except ValueError:
            return None
    return _text_bytes(text) if isinstance(text, str) else None


def decode_line(line: bytes) -> LogRecord | None:
    """Any json-file line (keys in any order, attrs, escapes): the general, slow reader."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        try:
            doc = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return None
    if not isinstance(doc, dict):
        return None
    stream = doc.get("stream")
    stamp = doc.get("time")
    log = doc.get("log", "")
    if stream not in ("stdout", "stderr") or not isinstance(stamp, str) or not isinstance(log, str):
        return None
    raw_stamp = stamp.encode("ascii", "replace")
    if stamp_ns(raw_stamp) == 0:
        return None
    attrs: tuple[tuple[str, str], ...] = ()
    found = doc.get("attrs")
    if isinstance(found, dict):
        attrs = tuple(sorted((str(k), str(v)) for k, v in found.items()))
    return LogRecord(stream, _text_bytes(log), raw_stamp, attrs)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_STREAM_KEY = b'","stream":"'
_TIME_KEY = b'","time":"'


# Our own plainest records: no escapes but a final \n (full lines) or none (conmon's
# partial lines, one per read buffer it filled). For short lines one regex over the
# whole buffer beats slicing line by line; long lines are quicker sliced (memchr).
_PLAIN = re.compile(
    rb'^\{"log":"([^"\\\n]*)(\\n)?","stream":"(std(?:out|err))","time":"([0-9]{4}-[^"\n]*)"\}$', re.MULTILINE
)
_PLAIN_MAX_LINE = 256
_NAMES = {b"stdout": "stdout", b"stderr": "stderr"}
_new = tuple.__new__  # builds a LogRecord without the Python-level __new__


# Our plainest records, for reads that want runs, not records (no -t, --details, since,
# until or tail): the log, and the real newline ending the line when the log ends with an
# escaped one (a conditional group), so a run is one flat join with no unescaping pass.
# Any other line is caught whole by the last alternative: one pass tells both.
_PLAIN_RUN = re.compile(
    rb'^(?:\{"log":"([^"\\\n]*+)(\\n)?","stream":"(std(?:out|err))","time":"[0-9]{4}-[^"\n]*+"\}(?(2)(\n)|\n)'
    rb"|(.*\n))",
    re.MULTILINE,
)
_RUN_STREAM = operator.itemgetter(2)
_RUN_DATA = operator.itemgetter(0, 3)  # the log and, for a full line, its newline
_RUN_OTHER = operator.itemgetter(4)


def decode_runs(buffer: bytes) -> list[LogRecord] | None:
    """The buffer as runs of one stream, each joined into one record without a time; None
    unless every line is in our plainest layout (then `decode` reads it). A third less work
    than record by record: the joining stays in C."""
    if not (buffer.isascii() or _valid_utf8(buffer)):
        return None
    found = _PLAIN_RUN.findall(buffer)
    if not found or len(buffer) >= len(found) * _PLAIN_MAX_LINE or any(map(_RUN_OTHER, found)):
        return None
    names = _NAMES
    flat = itertools.chain.from_iterable
    return [
        _new(LogRecord, (names[stream], b"".join(flat(map(_RUN_DATA, run))), b"", ()))
        for stream, run in itertools.groupby(found, _RUN_STREAM)
    ]


def decode(buffer: bytes, on_skip: Callable[[bytes], None] | None = None) -> list[LogRecord]:
    """The records in `buffer`, whole json-file lines (a last line without its newline is
    ignored). Lines in our own layout are sliced by position; only a log with a backslash
    other than its final \\n goes through json.loads; other lines take the general reader.
    Lines nothing can read are left out (and passed to `on_skip`)."""
    count = buffer.count(b"\n")
    if count and len(buffer) < count * _PLAIN_MAX_LINE and (buffer.isascii() or _valid_utf8(buffer)):
        found = _PLAIN.findall(buffer)
        if len(found) == count:
            names = _NAMES
            return [_new(LogRecord, (names[s], log + b"\n" if nl else log, t, ())) for log, nl, s, t in found]
    lines = buffer.split(b"\n")
    lines.pop()
    out: list[LogRecord] = []
    append = out.append
    names_get = _NAMES.get
    for line in lines:
        # {"log":"<log>","stream":"stdout","time":"<time>"}
        i = line.rfind(_STREAM_KEY)
        if i >= 8 and line[i + 18 : i + 28] == _TIME_KEY and line[:8] == b'{"log":"' and line[-2:] == b'"}':
            name = names_get(line[i + 12 : i + 18])
            stamp = line[i + 28 : -2]
            if name is not None and stamp[10:11] == b"T":
                log = line[8:i]
                if log.isascii() or _valid_utf8(log):
                    if log[-2:] == b"\\n" and log.find(b"\\", 0, -2) < 0:
                        append(_new(LogRecord, (name, log[:-2] + b"\n", stamp, ())))
                        continue
                    data = _unescape(log) if b"\\" in log else log
                else:
                    data = _unescape(log)  # raw invalid UTF-8 (not ours): as Go reads it
                if data is not None:
                    append(_new(LogRecord, (name, data, stamp, ())))
                    continue
        if not line:
            continue  # an empty line: nothing was lost
        record = decode_line(line)
        if record is not None:
            append(record)
        elif on_skip is not None:
            on_skip(line)
    return out
