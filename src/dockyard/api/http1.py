"""HTTP/1.1 on the server side, without I/O: request heads and bodies in, response heads out.

llhttp (through httptools, in C) reads each request head: the request line, the header
syntax, Content-Length and Transfer-Encoding. This module cuts the byte stream into heads
(a head ends at its first blank line) and frames the bodies itself (Content-Length counts,
chunked decoding below), so llhttp is never fed a byte past the head it is reading. That is
on purpose: httptools says where a message ended inside the bytes it was given only for an
Upgrade, and both the requests a client pipelines after a chunked body and the bytes a
hijacking client sends right behind its request must be found where they are.

`RequestReader` is pull-style: `receive` bytes (b"" at EOF), then take `next_event()`s:
a `RequestHead`, its body as `bytes` pieces, `END` once the body is in; `NEED_DATA` when
more bytes are needed, `CLOSED` when the client ended the connection between requests.
Nothing beyond what the consumer pulls is decoded, so the I/O shell decides how much to hold.

Where llhttp and Go's net/http (dockerd's server) differ, Go wins: what llhttp lets through
and Go refuses is checked here (one Host, one "chunked" coding, the request line's shape),
and a head llhttp refuses that Go reads (bare-LF lines, an unknown method, a repeated equal
Content-Length) is parsed again, rewritten. A refusal is the plain-text answer Go writes
before it closes (`ProtocolError.answer`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import NamedTuple

import httptools

MAX_HEAD = 1 << 20  # Go's http.DefaultMaxHeaderBytes: a longer request head gets 431
_MAX_CHUNK_LINE = 4096  # Go's maxLineLength for a chunk-size line
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token


class Signal(enum.Enum):
    NEED_DATA = "need data"
    END = "end of body"
    CLOSED = "connection closed"


NEED_DATA = Signal.NEED_DATA
END = Signal.END
CLOSED = Signal.CLOSED


class ProtocolError(Exception):
    """A request head that cannot be served; `answer` is what to write before closing."""

    def __init__(self, answer: bytes, detail: str) -> None:
        super().__init__(detail)
        self.answer = answer


class BodyError(Exception):
    """A request body that cannot be read to its end."""


class BadChunk(BodyError):
    """Broken chunked framing (Go: "malformed chunked encoding")."""


class TruncatedBody(BodyError):
    """The stream ended before the body did."""


class RequestHead(NamedTuple):
    """One request's head. Immutable; a NamedTuple rather than a frozen dataclass because
    it is made once per request on the fast path, where a frozen __init__ costs ~3 us."""

    method: str
    target: bytes
    version: str  # "1.1", "1.0"
    headers: Mapping[str, str]  # lower-case names; of a repeated header, the last
    length: int | None  # Content-Length; None when chunked or absent
    chunked: bool
    keep_alive: bool  # False: the connection ends after the answer
    expect_continue: bool

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length)

    @property
    def upgrade(self) -> bool:
        """The client asked to take the connection over (Connection: Upgrade + Upgrade)."""
        return "upgrade" in self.headers and "upgrade" in self.headers.get("connection", "").lower()


def plain(status: str, text: str | None = None) -> bytes:
    """Go's plain-text refusal of a request it cannot read."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{status if text is None else text}").encode()  # fmt: skip


BAD_REQUEST = plain("400 Bad Request")
_TOO_LARGE = plain("431 Request Header Fields Too Large")
_NOT_IMPLEMENTED = plain("501 Not Implemented", "Unsupported transfer encoding")
_NO_HOST = plain("400 Bad Request: missing required Host header")
_TWO_HOSTS = plain("400 Bad Request: too many Host headers")
_BAD_VERSION = plain("505 HTTP Version Not Supported: unsupported protocol version")


class _Collector:
    """httptools' callbacks for one head; only those set here are called (no per-body calls)."""

    __slots__ = ("complete", "fields", "keep_alive", "method", "parser", "url", "version")

    def __init__(self) -> None:
        self.parser: httptools.HttpRequestParser | None = None
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.method = b""
        self.version = ""
        self.keep_alive = False

    def reset(self) -> None:
        self.url = b""
        self.fields = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        # Read now: once a message without a body is complete, llhttp forgets its flags.
        parser = self.parser
        assert parser is not None
        self.method = parser.get_method()
        self.version = parser.get_http_version()
        self.keep_alive = parser.should_keep_alive()
        self.complete = True


def _new_parser(collector: _Collector) -> httptools.HttpRequestParser:
    parser = httptools.HttpRequestParser(collector)
    collector.parser = parser
    # Go takes Content-Length beside Transfer-Encoding (chunked wins) and any HTTP/x.y,
    # answering 505 for what is not 1.x; llhttp refuses both unless told.
    parser.set_dangerous_leniencies(lenient_chunked_length=True, lenient_version=True)
    return parser


class _State(enum.Enum):
    HEAD = "head"
    LENGTH = "length"  # a Content-Length body
    CHUNK_SIZE = "chunk size"
    CHUNK_DATA = "chunk data"
    CHUNK_CRLF = "chunk crlf"
    TRAILER = "trailer"
    DONE = "done"  # the body is in; END is next


class RequestReader:
    """One connection's requests, in the order they came."""

    def __init__(self, max_head: int = MAX_HEAD) -> None:
        self._max_head = max_head
        self._buffer = bytearray()
        self._whole = b""  # what came last, while the buffer was empty: not copied into it yet
        self._eof = False
        self._state = _State.HEAD
        self._fed = 0  # bytes of the buffered head already given to llhttp
        self._refused: str | None = None  # why llhttp refused a head Go may read (see _rewrite)
        self._method: bytes | None = None  # a method llhttp does not know, from _rewrite
        self._collector = _Collector()
        self._parser = _new_parser(self._collector)
        self._remaining = 0  # of the Content-Length body, or of the current chunk
        self._trailer = 0  # bytes of trailer lines seen
        self.body_received = 0  # of the current request's body

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken: what the client sent ahead."""
        return len(self._buffer) + len(self._whole)

    @property
    def in_body(self) -> bool:
        return self._state is not _State.HEAD

    def receive(self, data: bytes) -> None:
        """Bytes from the client; b"" once it closed its side."""
        if not data:
            self._eof = True
        elif self._buffer or self._whole:
            self._merge()
            self._buffer += data
        else:
            self._whole = data  # kept as it came: a body piece can leave without a copy

    def _merge(self) -> None:
        if self._whole:
            self._buffer += self._whole
            self._whole = b""

    def leftover(self) -> bytes:
        """Everything received after the current request (a hijacked stream's first bytes)."""
        if not self._buffer:
            data, self._whole = self._whole, b""
            return data
        self._merge()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def next_event(self) -> RequestHead | bytes | Signal:
        state, whole = self._state, self._whole
        if state is _State.HEAD and not whole and not self._buffer:  # between requests
            return CLOSED if self._eof else NEED_DATA
        if whole and (state is _State.LENGTH or state is _State.CHUNK_DATA) and len(whole) <= self._remaining:
            self._whole = b""  # all of it is body: as it is
            self._remaining -= len(whole)
            self.body_received += len(whole)
            if self._remaining == 0:
                self._state = _State.DONE if state is _State.LENGTH else _State.CHUNK_CRLF
            return whole
        if state is _State.HEAD:
            return self._next_head()
        self._merge()
        return self._next_body()

    # ---- heads -------------------------------------------------------------------------

    def _next_head(self) -> RequestHead | Signal:
        whole = self._whole
        if whole and not self._buffer and self._fed == 0 and self._refused is None:
            # The usual case: a whole head arrived in one piece. Read where it lies.
            stop = whole.find(b"\r\n\r\n") + 4
            if 4 <= stop <= self._max_head and not whole.startswith(b"\r\n") and self._feed_whole(whole, stop):
                self._whole = whole[stop:]
                return self._took_head(whole)
        self._merge()
        buffer, fed = self._buffer, self._fed
        if fed == 0:
            while buffer.startswith(b"\r\n"):  # empty lines before a request line (RFC 9112 2.2)
                del buffer[:2]
        if self._refused is None:
            end = buffer.find(b"\r\n\r\n", max(0, fed - 3))
            stop = len(buffer) if end < 0 else end + 4
        else:  # the end of a head with bare LFs, for _rewrite
            found = _BLANK_LINE.search(buffer, max(0, fed - 3))
            end, stop = (-1, len(buffer)) if found is None else (found.start(), found.end())
        if stop > self._max_head:
            raise ProtocolError(_TOO_LARGE, "request head too large")
        if stop > fed and self._refused is None:
            self._feed(buffer if fed == 0 and stop == len(buffer) else memoryview(buffer)[fed:stop], stop)
            if self._refused is not None:  # its end is to be found again, bare LFs and all
                self._fed = 0
                return self._next_head()
        self._fed = stop
        if end < 0:
            if self._eof:
                if buffer:
                    raise ProtocolError(BAD_REQUEST, "the connection ended inside a request head")
                return CLOSED
            return NEED_DATA
        raw = buffer if self._refused is None else self._rewrite(bytes(buffer[:stop]))
        head = self._took_head(raw)
        del buffer[:stop]
        return head

    def _feed_whole(self, data: bytes, stop: int) -> bool:
        """Give llhttp the head at the start of `data`; False where it refused it (then the
        general path reads it again, from the buffer, and decides)."""
        try:
            self._parser.feed_data(data if stop == len(data) else memoryview(data)[:stop])
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            self._collector.reset()
            self._parser = _new_parser(self._collector)
            return False
        return True

    def _took_head(self, raw: bytes | bytearray) -> RequestHead:
        """The head llhttp has just read (its bytes start `raw`); ready for what follows."""
        if not self._collector.complete:  # llhttp saw no end of a head where we did
            raise ProtocolError(BAD_REQUEST, "malformed request head")
        head = self._head(raw[: raw.find(b"\r\n")])
        self._fed = 0
        self._collector.reset()
        if head.has_body or not head.keep_alive or head.upgrade:
            # llhttp now waits for a body it will not see, or has stopped: a fresh one. After
            # a head alone, it is where it started and is kept (a third of a ping's parsing).
            self._parser = _new_parser(self._collector)
        self.body_received = 0
        if head.chunked:
            self._state = _State.CHUNK_SIZE
        elif head.length:
            self._state = _State.LENGTH
            self._remaining = head.length
        return head

    def _feed(self, data: bytes | bytearray | memoryview, stop: int = 0) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the head is complete; what follows is the body or the raw stream, ours
        except httptools.HttpParserError as exc:
            reason = str(exc)
            if self._refused is None and (
                "Duplicate Content-Length" in reason
                or (isinstance(exc, httptools.HttpParserInvalidMethodError) and _token_so_far(self._buffer))
                or _BARE_LF.search(self._buffer, 0, stop) is not None
            ):
                self._refused = reason  # maybe Go reads it: decided once the whole head is in
                return
            raise ProtocolError(_refusal(reason), reason) from None

    def _rewrite(self, raw: bytes) -> bytes:
        """Parse again, as Go reads it, a head llhttp refused: lines may end in a bare LF,
        a repeated Content-Length of one value is that one, a method is any token (llhttp
        knows a list). The head as llhttp is given it, with CRLFs."""
        lines: list[bytes] = []
        length = None
        for line in _LINE_END.split(raw)[:-2]:
            name, colon, rest = line.partition(b":")
            if not lines:  # the request line
                method, space, rest = line.partition(b" ")
                if _TOKEN.fullmatch(method) is None or not space:
                    raise ProtocolError(BAD_REQUEST, self._refused or "")
                self._method = method
                line = b"GET " + rest  # the method means nothing to the framing of a request
            elif colon and name.lower() == b"content-length":
                if length is None:
                    length = rest.strip(b" \t")
                elif rest.strip(b" \t") != length:
                    raise ProtocolError(BAD_REQUEST, "two different Content-Lengths")
                else:
                    continue
            lines.append(line)
        self._refused = None
        self._collector.reset()
        self._parser = _new_parser(self._collector)
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        self._feed(head)
        return head

    def _head(self, request_line: bytes | bytearray) -> RequestHead:
        collector = self._collector
        version = collector.version
        if request_line.count(b" ") != 2:  # Go: METHOD SP target SP version, nothing else
            raise ProtocolError(BAD_REQUEST, "malformed request line")
        if not version.startswith("1."):
            raise ProtocolError(_BAD_VERSION, f"HTTP/{version}")
        headers: dict[str, str] = {}
        hosts = 0
        codings: list[bytes] = []
        for name, value in collector.fields:
            key = name.decode("latin-1").lower()
            if key == "host":
                hosts += 1
            elif key == "transfer-encoding":
                codings.append(value)
            headers[key] = value.rstrip(b" \t").decode("latin-1")  # llhttp keeps trailing blanks
        if hosts > 1:
            raise ProtocolError(_TWO_HOSTS, "more than one Host header")
        if hosts == 0 and version != "1.0":
            raise ProtocolError(_NO_HOST, "no Host header")
        chunked = bool(codings)
        if chunked and (len(codings) > 1 or codings[0].strip().lower() != b"chunked"):
            raise ProtocolError(_NOT_IMPLEMENTED, f"transfer coding {codings!r}")
        length = None
        if not chunked and "content-length" in headers:
            length = int(headers["content-length"])  # llhttp let only digits through
        method, self._method = self._method or collector.method, None
        http10 = version == "1.0"
        return RequestHead(  # positional: a third of the cost of keywords, made per request
            method.decode("ascii"),
            collector.url,
            version,
            headers,
            length,
            chunked,
            collector.keep_alive and not http10,
            "expect" in headers and headers["expect"].lower() == "100-continue" and not http10,
        )

    # ---- bodies ------------------------------------------------------------------------

    def _next_body(self) -> bytes | Signal:
        while True:
            state, buffer = self._state, self._buffer
            if state is _State.LENGTH or state is _State.CHUNK_DATA:
                if not buffer:
                    return self._starved()
                n = min(self._remaining, len(buffer))
                if n == len(buffer):
                    data = bytes(buffer)
                    buffer.clear()
                else:
                    data = bytes(memoryview(buffer)[:n])
                    del buffer[:n]
                self._remaining -= n
                self.body_received += n
                if self._remaining == 0:
                    self._state = _State.DONE if state is _State.LENGTH else _State.CHUNK_CRLF
                return data
            if state is _State.DONE:
                self._state = _State.HEAD
                return END
            line = self._line()
            if line is None:
                return self._starved()
            if state is _State.CHUNK_SIZE:
                size = _chunk_size(line)
                if size == 0:
                    self._state = _State.TRAILER
                    self._trailer = 0
                else:
                    self._state, self._remaining = _State.CHUNK_DATA, size
            elif state is _State.CHUNK_CRLF:
                if line:
                    raise BadChunk("no CRLF after chunk data")
                self._state = _State.CHUNK_SIZE
            elif not line:  # the empty line after the trailer: the body is in
                self._state = _State.HEAD
                return END
            else:
                self._trailer += len(line) + 2
                name, colon, _ = line.partition(b":")
                if not colon or _TOKEN.fullmatch(name) is None:
                    raise BadChunk("malformed trailer line")  # Go's ReadMIMEHeader refuses it
                if self._trailer > self._max_head:
                    raise BadChunk("trailer too large")

    def _line(self) -> bytes | None:
        """One CRLF-ended line of chunk framing (without the CRLF), or None until it is in."""
        end = self._buffer.find(b"\r\n", 0, _MAX_CHUNK_LINE + 2)
        if end < 0:
            if len(self._buffer) > _MAX_CHUNK_LINE or b"\n" in self._buffer:
                raise BadChunk("chunk line too long or not ended by CRLF")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        if b"\n" in line:  # a bare LF (Go >= 1.24.2 refuses it: request smuggling)
            raise BadChunk("bare LF in chunk framing")
        return line

    def _starved(self) -> Signal:
        if self._eof:
            raise TruncatedBody("the connection ended inside a request body")
        return NEED_DATA


def _token_so_far(buffer: bytearray) -> bool:
    """The request line starts with what may still be a method Go takes (any token)."""
    found = _TOKEN.match(buffer)
    return found is not None and (found.end() == len(buffer) or buffer[found.end()] == 0x20)


def _chunk_size(line: bytes) -> int:
    """Go's chunk-size line: 1-16 hex digits, then an extension after ';' that is ignored."""
    size = line.rstrip(b" \t").split(b";", 1)[0]
    if not 0 < len(size) <= 16 or size.strip(b"0123456789abcdefABCDEF"):
        raise BadChunk(f"bad chunk size {size[:20]!r}")
    return int(size, 16)


def _refusal(reason: str) -> bytes:
    """What Go answers for what llhttp refused (the reasons are llhttp's own words)."""
    if "Transfer-Encoding" in reason:  # Go: any coding but one "chunked" is not implemented
        return _NOT_IMPLEMENTED
    return BAD_REQUEST


# ---- responses -----------------------------------------------------------------------

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
_STATUS_LINES: dict[int, bytes] = {}
_UNSAFE = re.compile(r"[\r\n\0]")


def status_line(status: int, reason: str | None = None) -> bytes:
    if reason is None:
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    try:
        phrase = HTTPStatus(status).phrase if reason is None else reason
    except ValueError:
        phrase = ""
    line = f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
    if reason is None:
        _STATUS_LINES[status] = line
    return line


def header_block(headers: Iterable[tuple[str, str]]) -> bytes:
    """`Name: value` lines; a CR, LF or NUL in either would split the response: refused."""
    lines = []
    for name, value in headers:
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise ValueError(f"invalid response header {name!r}: {value[:80]!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def chunk_prefix(size: int) -> bytes:
    return b"%x\r\n" % size
