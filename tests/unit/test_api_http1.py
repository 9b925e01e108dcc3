"""api/http1: requests cut out of a byte stream, bodies framed, Go's refusals, response heads."""

from __future__ import annotations

import pytest

from dockyard.api.http1 import (
    CLOSED,
    END,
    NEED_DATA,
    BadChunk,
    ProtocolError,
    RequestHead,
    RequestReader,
    Signal,
    TruncatedBody,
    chunk_prefix,
    header_block,
    plain,
    status_line,
)

Event = RequestHead | bytes | Signal


def events(reader: RequestReader) -> list[Event]:
    """Every event up to the first NEED_DATA or CLOSED (included)."""
    out: list[Event] = []
    while True:
        event = reader.next_event()
        out.append(event)
        if event is NEED_DATA or event is CLOSED:
            return out


def requests(raw: bytes, *, step: int | None = None) -> list[tuple[RequestHead, bytes]]:
    """Each request in `raw` with its whole body, `raw` given at once or `step` bytes at a time."""
    reader = RequestReader()
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    out: list[tuple[RequestHead, bytes]] = []
    body = bytearray()
    head: RequestHead | None = None
    for piece in [*pieces, b""]:
        reader.receive(piece)
        for event in events(reader):
            if isinstance(event, RequestHead):
                head = event
                if not event.has_body:
                    out.append((event, b""))
                    head = None
            elif isinstance(event, bytes):
                body += event
            elif event is END:
                assert head is not None
                out.append((head, bytes(body)))
                body.clear()
                head = None
    return out


def refusal(raw: bytes) -> bytes:
    reader = RequestReader()
    reader.receive(raw)
    with pytest.raises(ProtocolError) as caught:
        events(reader)
    return caught.value.answer


GET = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"


# ---- heads -----------------------------------------------------------------------------


def test_a_head_is_read_whole() -> None:
    reader = RequestReader()
    reader.receive(b"GET /v1.41/info?all=1 HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: abc\r\nUser-Agent: a\r\n"
                   b"user-agent:  b \t\r\n\r\n")  # fmt: skip
    head = reader.next_event()
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version) == ("GET", b"/v1.41/info?all=1", "1.1")
    assert head.headers == {"host": "d", "x-registry-auth": "abc", "user-agent": "b"}  # the last wins
    assert (head.length, head.chunked, head.has_body, head.keep_alive) == (None, False, False, True)
    assert not head.upgrade and not head.expect_continue
    assert reader.next_event() is NEED_DATA


@pytest.mark.parametrize("step", [1, 2, 7, 64])
def test_bytes_in_any_pieces_make_the_same_requests(step: int) -> None:
    raw = (GET + b"POST /a HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n\r\nhello"
           + b"POST /b HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
           + b"DELETE /c HTTP/1.1\r\nHost: d\r\n\r\n")  # fmt: skip
    assert [(h.method, h.target, body) for h, body in requests(raw, step=step)] == [
        ("GET", b"/_ping", b""), ("POST", b"/a", b"hello"), ("POST", b"/b", b"abcde"), ("DELETE", b"/c", b""),
    ]  # fmt: skip
    assert requests(raw, step=step) == requests(raw)


def test_a_request_pipelined_behind_a_chunked_body_is_found_where_it_is() -> None:
    reader = RequestReader()
    reader.receive(b"POST /b HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n" + GET)
    got = events(reader)
    assert [type(e).__name__ for e in got[:3]] == ["RequestHead", "bytes", "Signal"]
    assert got[1:3] == [b"x", END]
    assert isinstance(got[3], RequestHead) and got[3].target == b"/_ping"


def test_empty_lines_before_a_request_are_skipped() -> None:
    [(head, _)] = requests(b"\r\n\r\n" + GET)
    assert head.target == b"/_ping"


def test_a_connection_ended_between_requests_is_closed() -> None:
    reader = RequestReader()
    reader.receive(GET)
    reader.receive(b"")
    assert isinstance(reader.next_event(), RequestHead)
    assert reader.next_event() is CLOSED


def test_a_connection_ended_inside_a_head_is_400() -> None:
    reader = RequestReader()
    reader.receive(b"GET /_ping HTTP/1.1\r\nHo")
    assert reader.next_event() is NEED_DATA
    reader.receive(b"")
    with pytest.raises(ProtocolError) as caught:
        reader.next_event()
    assert caught.value.answer == plain("400 Bad Request")


def test_connection_close_and_http_1_0_end_the_connection() -> None:
    [(head, _)] = requests(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    assert not head.keep_alive
    [(head, _)] = requests(b"GET / HTTP/1.0\r\n\r\n")  # no Host needed before 1.1
    assert (head.version, head.keep_alive) == ("1.0", False)
    [(head, _)] = requests(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not head.keep_alive  # as h11 did: one request per HTTP/1.0 connection


def test_upgrade_and_expect_continue() -> None:
    reader = RequestReader()
    reader.receive(b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                   b"Content-Length: 2\r\n\r\n{}raw stream bytes")  # fmt: skip
    head = reader.next_event()
    assert isinstance(head, RequestHead) and head.upgrade
    assert [reader.next_event(), reader.next_event()] == [b"{}", END]
    assert reader.leftover() == b"raw stream bytes"
    [(head, _)] = requests(b"POST / HTTP/1.1\r\nHost: d\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")
    assert head.expect_continue


def test_equal_repeated_content_lengths_are_one_as_in_go() -> None:
    raw = b"POST /e HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nContent-Length:  2\r\n\r\nab" + GET
    for step in (None, 1, 5):
        got = requests(raw, step=step)
        assert [(h.target, h.length, b) for h, b in got] == [(b"/e", 2, b"ab"), (b"/_ping", None, b"")]


@pytest.mark.parametrize("step", [None, 1, 3])
def test_what_llhttp_refuses_and_go_reads(step: int | None) -> None:
    raw = (b"get /a HTTP/1.1\r\nHost: d\r\n\r\n"  # any token is a method
           b"PURGE /b HTTP/1.1\nHost: d\nX-A: 1\n\n"  # lines ended by a bare LF
           b"POST /c HTTP/1.1\r\nHost: d\nContent-Length: 2\r\nContent-Length: 2\n\r\nab"
           + GET)  # fmt: skip
    got = requests(raw, step=step)
    assert [(h.method, h.target, h.headers.get("x-a"), b) for h, b in got] == [
        ("get", b"/a", None, b""), ("PURGE", b"/b", "1", b""), ("POST", b"/c", None, b"ab"), ("GET", b"/_ping", None, b""),
    ]  # fmt: skip


def test_chunked_wins_over_content_length_as_in_go() -> None:
    [(head, body)] = requests(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"1\r\nx\r\n0\r\n\r\n")  # fmt: skip
    assert (head.chunked, head.length, body) == (True, None, b"x")


_400 = plain("400 Bad Request")


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (b"GARBAGE\r\n\r\n", _400),
        (b"G(T / HTTP/1.1\r\nHost: d\r\n\r\n", _400),
        (b"GET  / HTTP/1.1\r\nHost: d\r\n\r\n", _400),
        (b"GET / HTTP/1.1 \r\nHost: d\r\n\r\n", _400),
        (b"GET /a b HTTP/1.1\r\nHost: d\r\n\r\n", _400),
        (b"GET /a\x00b HTTP/1.1\r\nHost: d\r\n\r\n", _400),
        ("GET /é HTTP/1.1\r\nHost: d\r\n\r\n".encode(), _400),
        (b"GET / HTTP/1.1\r\nHost: d\r\nNoColon\r\n\r\n", _400),
        (b"GET / HTTP/1.1\r\nHost: d\r\nX : a\r\n\r\n", _400),
        (b"GET / HTTP/1.1\r\nHost: d\r\nX: a\x00b\r\n\r\n", _400),
        (b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", _400),
        (b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: -1\r\n\r\n", _400),
        (b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 1e3\r\n\r\n", _400),
        (b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 99999999999999999999999\r\n\r\n", _400),
        (b"GET /_ping\r\n\r\n", _400),
        (b"GET / HTTP/1.1\r\n\r\n", plain("400 Bad Request: missing required Host header")),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", plain("400 Bad Request: too many Host headers")),
        (b"GET / HTTP/2.0\r\nHost: d\r\n\r\n", plain("505 HTTP Version Not Supported: unsupported protocol version")),
        (b"GET / HTTP/3.1\r\nHost: d\r\n\r\n", plain("505 HTTP Version Not Supported: unsupported protocol version")),
        (b"GET / HTTP/0.9\r\nHost: d\r\n\r\n", plain("505 HTTP Version Not Supported: unsupported protocol version")),
        (b"GET / HTTP/1.1\nHost: d\nX: a\x00\n\n", _400),
        (b"G(T / HTTP/1.1\nHost: d\n\n", _400),
        (b"POST / HTTP/1.1\nHost: d\nContent-Length: 2\nContent-Length: 3\n\nab", _400),
        (b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n",
         plain("501 Not Implemented", "Unsupported transfer encoding")),
        (b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         plain("501 Not Implemented", "Unsupported transfer encoding")),
        (b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         plain("501 Not Implemented", "Unsupported transfer encoding")),
        (b"GET / HTTP/1.1\r\nHost: d\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n", plain("431 Request Header Fields Too Large")),
        (b"GET /" + b"a" * (1 << 20), plain("431 Request Header Fields Too Large")),  # no end needed to know
    ],
    ids=["garbage", "not-a-token-method", "two-spaces", "space-after-version", "space-in-path", "nul-in-path", "utf8-in-path", "no-colon",
         "space-before-colon", "nul-in-value", "two-lengths", "negative-length", "length-not-a-number",
         "huge-length", "http09", "no-host", "two-hosts", "http2", "http3", "explicit-http09",
         "bare-lf-nul", "bare-lf-bad-method", "bare-lf-two-lengths", "gzip", "gzip-chunked",
         "two-codings", "1MB-header", "1MB-target"],
)  # fmt: skip
def test_gos_refusals(raw: bytes, answer: bytes) -> None:
    assert refusal(raw) == answer


def test_garbage_is_refused_before_its_head_ends() -> None:
    reader = RequestReader()
    reader.receive(b"GAR(BAGE /")
    with pytest.raises(ProtocolError):
        reader.next_event()


def test_a_big_head_in_small_pieces_is_refused_at_the_limit() -> None:
    reader = RequestReader(max_head=10_000)
    reader.receive(b"GET / HTTP/1.1\r\nHost: d\r\n")
    with pytest.raises(ProtocolError) as caught:
        for _ in range(2000):
            reader.receive(b"X-A: b\r\n")
            assert reader.next_event() is NEED_DATA
    assert caught.value.answer == plain("431 Request Header Fields Too Large")


# ---- bodies ----------------------------------------------------------------------------


def _body_events(head: bytes, body: bytes, *, eof: bool = False) -> list[Event]:
    reader = RequestReader()
    reader.receive(head + body)
    if eof:
        reader.receive(b"")
    got = events(reader)
    assert isinstance(got[0], RequestHead)
    return got[1:]


CHUNKED = b"POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"-2\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2\r\n{}\r\nq\r\n", b"\r\n",
     b"2 ;x\r\n{}\r\n", b"1" * 17 + b"\r\n", b"2\n{}\r\n0\r\n\r\n", b"2\r\n{}\n0\r\n\r\n", b"0x2\r\n{}\r\n",
     b"2" + b";" * 5000 + b"\r\n", b"0\r\nno colon\r\n\r\n", b"0\r\nX Y: 1\r\n\r\n"],
    ids=["hex", "negative", "no-crlf-after-data", "q", "empty-size", "space-before-ext", "17-digits",
         "bare-lf-size", "bare-lf-data", "0x", "long-line", "trailer-without-colon", "trailer-bad-name"],
)  # fmt: skip
def test_bad_chunks(body: bytes) -> None:
    reader = RequestReader()
    reader.receive(CHUNKED + body)
    assert isinstance(reader.next_event(), RequestHead)
    with pytest.raises(BadChunk):
        events(reader)


def test_chunks_with_extensions_whitespace_and_trailers() -> None:
    got = _body_events(CHUNKED, b"3;name=value\r\nabc\r\n00A \r\n0123456789\r\n000\r\nX-T: 1\r\nX-U: 2\r\n\r\n")
    assert got == [b"abc", b"0123456789", END, NEED_DATA]


def test_a_body_is_given_no_further_than_it_goes() -> None:
    reader = RequestReader()
    reader.receive(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\n\r\nab")
    assert isinstance(reader.next_event(), RequestHead)
    assert [reader.next_event(), reader.next_event()] == [b"ab", NEED_DATA]
    reader.receive(b"cdGET")
    assert [reader.next_event(), reader.next_event(), reader.next_event()] == [b"cd", END, NEED_DATA]
    assert reader.body_received == 4 and reader.buffered == 3


@pytest.mark.parametrize("framing", [b"Content-Length: 10\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_a_body_cut_by_the_end_of_the_connection(framing: bytes) -> None:
    reader = RequestReader()
    reader.receive(b"POST / HTTP/1.1\r\nHost: d\r\n" + framing + b"\r\n" + (b"a\r\nabc" if b"chunked" in framing else b"abc"))
    reader.receive(b"")
    assert isinstance(reader.next_event(), RequestHead)
    assert reader.next_event() == b"abc"
    with pytest.raises(TruncatedBody):
        reader.next_event()


def test_nothing_is_decoded_before_it_is_asked_for() -> None:
    reader = RequestReader()
    reader.receive(b"POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000)
    assert isinstance(reader.next_event(), RequestHead)
    assert reader.buffered == 100_000 and reader.in_body


# ---- responses -------------------------------------------------------------------------


def test_status_lines() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(101, "UPGRADED") == b"HTTP/1.1 101 UPGRADED\r\n"
    assert status_line(299) == b"HTTP/1.1 299 \r\n"


def test_header_block_refuses_what_would_split_a_response() -> None:
    assert header_block([("A", "1"), ("B-C", "x y")]) == b"A: 1\r\nB-C: x y\r\n"
    for name, value in (("A", "1\r\nX: injected"), ("A", "1\n"), ("A\r\n", "1"), ("A", "\0")):
        with pytest.raises(ValueError):
            header_block([(name, value)])


def test_chunk_prefix() -> None:
    assert chunk_prefix(255) == b"ff\r\n"
