"""runtime.jsonlog: dockerd's json-file records, written from conmon's k8s-file lines and
read back. The escaping is checked against a direct port of Go's jsonlog writer
(ffjsonWriteJSONBytesAsString), rune by rune, over every byte and many random inputs."""

from __future__ import annotations

import json
import random

import pytest

from dockyard.model.logs import LogRecord
from dockyard.model.times import parse_ns
from dockyard.runtime.jsonlog import (
    SpoolEncoder,
    decode,
    decode_line,
    encode_record,
    escape,
    go_time,
)

# ---- the reference: Go's writer, ported one rune at a time --------------------------------


def _go_rune(data: bytes, i: int) -> int:
    """utf8.DecodeRune's size at i: 0 for RuneError of size 1."""
    first = data[i]
    size = 2 if 0xC2 <= first <= 0xDF else 3 if 0xE0 <= first <= 0xEF else 4 if 0xF0 <= first <= 0xF4 else 0
    if size == 0:
        return 0
    try:
        text = data[i : i + size].decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return size if len(text) == 1 else 0


def go_escape(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            if b >= 0x20 and b not in b'\\"<>&':
                out.append(b)
            elif b in b'\\"':
                out += b"\\" + bytes([b])
            elif b == 0x0A:
                out += b"\\n"
            elif b == 0x0D:
                out += b"\\r"
            else:
                out += b"\\u00%02x" % b
            i += 1
            continue
        size = _go_rune(data, i)
        if size == 0:
            out += b"\\ufffd"
            i += 1
        elif data[i : i + size] in ("\u2028".encode(), "\u2029".encode()):
            out += b"\\u202" + (b"8" if data[i + 2] == 0xA8 else b"9")
            i += size
        else:
            out += data[i : i + size]
            i += size
    return bytes(out)


def _ours(data: bytes) -> bytes:
    return escape(data).replace(b"\n", b"\\n")


@pytest.mark.parametrize("byte", range(256))
def test_every_byte_alone_and_in_text(byte: int) -> None:
    for data in (bytes([byte]), b"a" + bytes([byte]) + b"z", bytes([byte]) * 3 + "é".encode()):
        assert _ours(data) == go_escape(data)


@pytest.mark.parametrize(
    "data",
    [b"<b>&amp;</b>", b'say "hi"\\', b"tab\there\r\n", "ÿ é € 😀 中文".encode(), "a\u2028b\u2029c".encode(),
     b"\xe2\x82", b"\xe2\x82A", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xff\xfe",
     b"\xe2\xe2\x80\xa8", b"\x80\xbf", "\ufffd".encode(), b"\x7f\x00\x1b[0m", b""],
)  # fmt: skip
def test_escape_cases(data: bytes) -> None:
    assert _ours(data) == go_escape(data)


def test_escape_random_bytes() -> None:
    rng = random.Random(5)
    alphabet = b'ab\\"<>&\t\r\x00\x1f\x7f' + "é€😀\u2028".encode() + b"\x80\xbf\xc2\xe2\xf0\xf4\xff\xed\xa0"
    for _ in range(3000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        assert _ours(data) == go_escape(data), data


def test_escaped_text_is_json_that_reads_back() -> None:
    data = "x <y> & \"z\" \\ \t\x01 é 😀\u2028".encode()
    assert json.loads(b'"' + _ours(data) + b'"').encode() == data


# ---- time ----------------------------------------------------------------------------------

T = "2026-12-01T10:00:00"
T_NS = parse_ns(T + "Z")


@pytest.mark.parametrize(
    ("ns", "text"),
    [(T_NS, T + "Z"), (T_NS + 123456789, T + ".123456789Z"), (T_NS + 120_000_000, T + ".12Z"),
     (T_NS + 1, T + ".000000001Z"), (T_NS + 100, T + ".0000001Z"), (0, "1970-01-01T00:00:00Z")],
)  # fmt: skip
def test_go_time_is_rfc3339nano_utc(ns: int, text: str) -> None:
    assert go_time(ns) == text.encode()


# ---- spool lines -> records ------------------------------------------------------------------


def _spool(stamp: str, stream: str, tag: str, text: bytes) -> bytes:
    return f"{stamp} {stream} {tag} ".encode() + text + b"\n"


S0 = "2026-12-01T10:00:00.123456780+00:00"


def test_full_and_partial_lines_in_dockerds_layout() -> None:
    chunk = _spool(S0, "stdout", "F", b"hello") + _spool(S0, "stderr", "P", b"par") + _spool(S0, "stdout", "F", b"")
    out, skipped = SpoolEncoder().encode(chunk)
    assert skipped == 0
    assert out == (
        b'{"log":"hello\\n","stream":"stdout","time":"2026-12-01T10:00:00.12345678Z"}\n'
        b'{"log":"par","stream":"stderr","time":"2026-12-01T10:00:00.12345678Z"}\n'
        b'{"log":"\\n","stream":"stdout","time":"2026-12-01T10:00:00.12345678Z"}\n'
    )


def test_time_offsets_become_utc() -> None:
    out, _ = SpoolEncoder().encode(_spool("2026-12-01T11:30:00.000000000+01:30", "stdout", "F", b"x"))
    assert out == b'{"log":"x\\n","stream":"stdout","time":"2026-12-01T10:00:00Z"}\n'


def test_empty_partial_record_has_no_log_key() -> None:
    out, _ = SpoolEncoder().encode(_spool(S0, "stdout", "P", b""))
    assert out == b'{"stream":"stdout","time":"2026-12-01T10:00:00.12345678Z"}\n'


def test_escaping_inside_records() -> None:
    text = b'<a href="x">\t\xff'
    out, _ = SpoolEncoder().encode(_spool(S0, "stdout", "F", text))
    assert out == b'{"log":"' + go_escape(text + b"\n") + b'","stream":"stdout","time":"2026-12-01T10:00:00.12345678Z"}\n'


def test_irregular_lines_take_the_slow_path_and_bad_ones_are_counted() -> None:
    good = _spool(S0, "stdout", "F", b"ok")
    odd = b"2026-12-01T10:00:00Z stdout F short stamp\n"  # not conmon's fixed width
    bad = b"garbage\n" + b"2026-12-01T10:00:00Z stdin F x\n"
    out, skipped = SpoolEncoder().encode(good + odd + bad)
    assert skipped == 2
    assert [r.data for r in decode(out)] == [b"ok\n", b"short stamp\n"]


def test_chunk_must_end_with_a_newline() -> None:
    with pytest.raises(ValueError):
        SpoolEncoder().encode(b"2026 stdout F x")


def test_fast_and_slow_paths_agree() -> None:
    rng = random.Random(7)
    lines = []
    for i in range(2000):
        stamp = f"2026-12-01T10:00:{i % 60:02d}.{rng.randrange(10**9):09d}+00:00"
        text = bytes(rng.choice(b'ab "<\\\t\xc3\xa9\xff') for _ in range(rng.randrange(0, 30)))
        lines.append(_spool(stamp, rng.choice(["stdout", "stderr"]), rng.choice("FP"), text))
    chunk = b"".join(lines)
    encoder = SpoolEncoder()
    fast, _ = encoder.encode(chunk)
    slow, _ = encoder._encode_slowly(escape(chunk).split(b"\n")[:-1])
    assert fast == slow.replace(b'{"log":"","', b'{"')
    again, _ = encoder.encode(chunk)  # from the cache this time
    assert again == fast


def test_cache_stays_bounded() -> None:
    encoder = SpoolEncoder()
    for i in range(SpoolEncoder._CACHE_MAX + 10):
        encoder.encode(_spool(f"2026-12-01T10:00:00.{i:09d}+00:00", "stdout", "F", b"x"))
    assert len(encoder._suffixes) <= SpoolEncoder._CACHE_MAX


# ---- reading back ---------------------------------------------------------------------------


def test_decode_our_records() -> None:
    encoder = SpoolEncoder()
    texts = [b"plain", b'quote " and \\ back', b"\t<tag>&", "é😀".encode(), b"\xff\xfe", b""]
    chunk = b"".join(_spool(S0, "stderr" if i % 2 else "stdout", "F", t) for i, t in enumerate(texts))
    chunk += _spool(S0, "stdout", "P", b"no newline")
    out, _ = encoder.encode(chunk)
    records = decode(out)
    assert [r.data for r in records] == [b"plain\n", b'quote " and \\ back\n', b"\t<tag>&\n", "é😀\n".encode(),
                                         "\ufffd\ufffd\n".encode(), b"\n", b"no newline"]  # fmt: skip
    assert [r.stream for r in records][:3] == ["stdout", "stderr", "stdout"]
    assert all(r.stamp == b"2026-12-01T10:00:00.12345678Z" for r in records)


def test_decode_foreign_lines() -> None:
    lines = [
        b'{"time":"2026-12-01T10:00:00Z","stream":"stdout","log":"reordered\\n"}',
        b'{"log":"with attrs\\n","stream":"stderr","attrs":{"b":"2","a":"1"},"time":"2026-12-01T10:00:00.5Z"}',
        b'{"log":"tab\\tand \\/ \\u00e9 \\ud800\\n","stream":"stdout","time":"2026-12-01T10:00:00+01:00"}',
        b'{"stream":"stdout","time":"2026-12-01T10:00:00Z"}',
        b'{"log":"raw \xff byte\\n","stream":"stdout","time":"2026-12-01T10:00:00Z"}',
    ]
    records = decode(b"\n".join(lines) + b"\n")
    assert [r.data for r in records] == [b"reordered\n", b"with attrs\n", "tab\tand / é \ufffd\n".encode(), b"",
                                         "raw \ufffd byte\n".encode()]  # fmt: skip
    assert records[1].attrs == (("a", "1"), ("b", "2"))
    assert records[2].time_ns == parse_ns("2026-12-01T09:00:00Z")


def test_decode_skips_what_cannot_be_read() -> None:
    skipped: list[bytes] = []
    good = encode_record("stdout", b"ok\n", T_NS)
    buffer = b"junk\n\n" + good + b'{"log":"x","stream":"stdin","time":"2026-12-01T10:00:00Z"}\n'
    buffer += b'{"log":"x","stream":"stdout","time":"yesterday"}\n' + b"[1,2]\n" + good[:-5]  # a cut last line
    records = decode(buffer, skipped.append)
    assert [r.data for r in records] == [b"ok\n"]
    assert len(skipped) == 4
    assert decode_line(b'{"log":"\\x"}') is None


def test_encode_record_round_trip() -> None:
    rng = random.Random(3)
    for _ in range(500):
        data = bytes(rng.choice(b'ab\n"\\<\t\x00\xc3\xa9') for _ in range(rng.randrange(0, 20)))
        line = encode_record("stderr", data, T_NS + rng.randrange(10**9))
        (record,) = decode(line)
        expected = data.decode("utf-8", "replace").encode() if data else b""
        assert record == LogRecord("stderr", expected, record.stamp)
        assert json.loads(line)["stream"] == "stderr"


def test_whole_buffer_path_agrees_with_the_general_reader() -> None:
    rng = random.Random(11)
    lines = []
    for i in range(3000):
        text = "x" * rng.randrange(0, 60)
        log = text + ("\\n" if rng.random() < 0.8 else "")  # conmon's partial lines too
        stamp = f"2026-12-01T10:00:00.{i:09d}".rstrip("0") + "Z"
        stream = rng.choice(["stdout", "stderr"])
        lines.append(f'{{"log":"{log}","stream":"{stream}","time":"{stamp}"}}\n'.encode())
    records = decode(b"".join(lines))
    assert records == [decode_line(line) for line in lines]
    assert sum(1 for r in records if not r.data.endswith(b"\n")) > 300


def test_decode_runs_matches_decode_then_stream_runs() -> None:
    from dockyard.model.logs import stream_runs
    from dockyard.runtime.jsonlog import decode, decode_runs, encode_record

    t = 1_764_547_200_123_456_789
    lines = [("stdout", b"a\n"), ("stdout", b"part"), ("stdout", b"ial\n"), ("stderr", b"e1\n"),
             ("stderr", b"e2\n"), ("stdout", b"b\n")]  # fmt: skip
    buf = b"".join(encode_record(s, d, t + i) for i, (s, d) in enumerate(lines))
    runs = decode_runs(buf)
    assert runs is not None
    assert [(r.stream, r.data) for r in runs] == stream_runs(decode(buf))
    assert [(r.stream, r.data) for r in runs] == [("stdout", b"a\npartial\n"), ("stderr", b"e1\ne2\n"), ("stdout", b"b\n")]


def test_decode_runs_leaves_anything_else_to_decode() -> None:
    from dockyard.runtime.jsonlog import decode_runs, encode_record

    t = 1_764_547_200_000_000_000
    assert decode_runs(encode_record("stdout", b'say "hi"\n', t)) is None  # an escape
    assert decode_runs(encode_record("stdout", b"<tag>\n", t)) is None  # \u003c
    assert decode_runs(b'{"stream":"stdout","log":"x\\n","time":"2026-12-01T00:00:00Z"}\n') is None
    assert decode_runs(b"") is None


def test_decode_runs_refuses_a_buffer_with_one_foreign_line() -> None:
    from dockyard.runtime.jsonlog import decode_runs, encode_record

    t = 1_764_547_200_000_000_000
    plain = encode_record("stdout", b"a\n", t)
    foreign = b'{"log":"b\\n","time":"2026-12-01T00:00:00Z","stream":"stdout"}\n'
    assert decode_runs(plain + plain) is not None
    assert decode_runs(plain + foreign + plain) is None
    assert decode_runs(plain + b"garbage\n") is None
