"""The DNS wire format (RFC 1035, EDNS from RFC 6891), as much as a stub-facing resolver needs.

Pure: bytes in, values out, values in, bytes out. A query is parsed into a frozen `Query`
(one question and the EDNS OPT record, if any); answers are encoded with name compression
and truncated, TC set, to what the client can take (512 bytes over UDP without EDNS, its
advertised size with it, 65535 over TCP). A hostile packet — lengths past the end, pointer
loops, forward pointers, over-long names, many questions or records — raises one of the
typed errors below, never anything else: the server decides from the kind whether to
answer FORMERR/NOTIMP or to stay silent (a reply to garbage can be used to amplify).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from dockyard.errors import InvalidArgument

HEADER = struct.Struct("!HHHHHH")
UDP_PLAIN_LIMIT = 512  # RFC 1035 4.2.1, without EDNS
UDP_LIMIT = 65507  # the largest UDP payload over IPv4
TCP_LIMIT = 65535  # the two-byte length prefix
OUR_EDNS_SIZE = 1232  # what we advertise in our OPT (the 2020 DNS flag day's value)
MAX_NAME = 255  # octets on the wire, RFC 1035 2.3.4
MAX_LABEL = 63
MAX_HOPS = 64  # compression pointers followed in one name; a real one needs one or two

Name = tuple[bytes, ...]  # labels as sent, without the root label


class QType(enum.IntEnum):
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    ANY = 255


class QClass(enum.IntEnum):
    IN = 1
    ANY = 255


class Opcode(enum.IntEnum):
    QUERY = 0


class RCode(enum.IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    BADVERS = 16  # extended (RFC 6891 6.1.3): needs an OPT record to carry the upper bits


class Transport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"


# header flag bits
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
CD = 0x0010
DO = 0x8000  # in the OPT record's TTL field


class MessageError(InvalidArgument):
    """A packet that is not a DNS query we can read."""


class Unanswerable(MessageError):
    """No reply at all: shorter than a header, or a response (QR set) sent to us."""


@dataclass(frozen=True, slots=True)
class Header:
    id: int
    flags: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


class Rejected(MessageError):
    """A query with a readable header that we refuse: answered with `rcode` and no question."""

    def __init__(self, message: str, header: Header, rcode: RCode = RCode.FORMERR) -> None:
        super().__init__(message)
        self.header = header
        self.rcode = rcode


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int = 0
    dnssec_ok: bool = False


@dataclass(frozen=True, slots=True)
class Question:
    name: Name
    qtype: int
    qclass: int = QClass.IN

    @property
    def text(self) -> str:
        return name_text(self.name)


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    flags: int  # as received: opcode, RD and CD are echoed in the reply
    question: Question
    edns: Edns | None = None

    def limit(self, transport: Transport) -> int:
        """The largest reply this client takes over `transport` (dockerd: max(512, EDNS size))."""
        if transport is Transport.TCP:
            return TCP_LIMIT
        if self.edns is None:
            return UDP_PLAIN_LIMIT
        return min(max(UDP_PLAIN_LIMIT, self.edns.udp_size), UDP_LIMIT)


@dataclass(frozen=True, slots=True)
class Record:
    """An answer record: `data` is raw RDATA (A, AAAA) or a name (PTR), compressed on output."""

    name: Name
    rtype: int
    ttl: int
    data: bytes | Name
    rclass: int = QClass.IN


# ---- names ------------------------------------------------------------------------------


def name_text(name: Name) -> str:
    """Presentation form without the trailing dot; dots and odd bytes in labels escaped."""
    return ".".join(_label_text(label) for label in name)


def _label_text(label: bytes) -> str:
    out = []
    for byte in label:
        char = chr(byte)
        if char in ".\\":
            out.append("\\" + char)
        elif 0x21 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def name_from_text(text: str) -> Name:
    """Dotted text (no escapes: our names are hostnames) to labels; a trailing dot is the root."""
    text = text.removesuffix(".")
    if not text:
        return ()
    labels = tuple(part.encode("ascii") for part in text.split("."))
    if any(not label or len(label) > MAX_LABEL for label in labels):
        raise InvalidArgument(f"not a DNS name: {text!r}")
    if sum(len(label) + 1 for label in labels) + 1 > MAX_NAME:
        raise InvalidArgument(f"DNS name too long: {text!r}")
    return labels


def _read_name(data: bytes, offset: int) -> tuple[Name, int]:
    """Labels at `offset` and the offset after the name in place (pointers followed).

    A pointer must point strictly before itself, and each label read counts against the
    255-octet bound over the expanded name, so a loop ends within a few hundred steps; the hop
    count bounds pointer chains with no label between them.
    """
    labels: list[bytes] = []
    size = 1
    end = -1
    pos = offset
    hops = 0
    while True:
        if pos >= len(data):
            raise MessageError("name runs past the end of the message")
        length = data[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(data):
                raise MessageError("compression pointer runs past the end of the message")
            target = ((length & 0x3F) << 8) | data[pos + 1]
            hops += 1
            if target >= pos or hops > MAX_HOPS:
                raise MessageError("compression pointer does not point backwards")
            if end < 0:
                end = pos + 2
            pos = target
            continue
        if kind:
            raise MessageError(f"unknown label type 0x{kind:02x}")
        if length == 0:
            return tuple(labels), (end if end >= 0 else pos + 1)
        if pos + 1 + length > len(data):
            raise MessageError("label runs past the end of the message")
        size += length + 1
        if size > MAX_NAME:
            raise MessageError("name longer than 255 octets")
        labels.append(data[pos + 1 : pos + 1 + length])
        pos += 1 + length


# ---- parsing ------------------------------------------------------------------------------


def parse_header(data: bytes) -> Header:
    if len(data) < HEADER.size:
        raise Unanswerable("shorter than a DNS header")
    return Header(*HEADER.unpack_from(data))


def parse_query(data: bytes) -> Query:
    """One query, as a server accepts it (the checks of miekg/dns's default accept function,
    which dockerd's resolver uses): not a response, opcode QUERY, exactly one question, at
    most one answer and one authority record, at most two additional ones, one OPT at most."""
    header = parse_header(data)
    if header.flags & QR:
        raise Unanswerable("a response, not a query")
    if header.opcode != Opcode.QUERY:
        raise Rejected(f"opcode {header.opcode} not implemented", header, RCode.NOTIMP)
    if header.qdcount != 1:
        raise Rejected(f"{header.qdcount} questions, want 1", header)
    if header.ancount > 1 or header.nscount > 1 or header.arcount > 2:
        raise Rejected("too many records for a query", header)
    try:
        name, pos = _read_name(data, HEADER.size)
        if pos + 4 > len(data):
            raise MessageError("question runs past the end of the message")
        qtype, qclass = struct.unpack_from("!HH", data, pos)
        pos += 4
        edns = None
        for index in range(header.ancount + header.nscount + header.arcount):
            rr_name, pos = _read_name(data, pos)
            if pos + 10 > len(data):
                raise MessageError("record runs past the end of the message")
            rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", data, pos)
            pos += 10 + rdlength
            if pos > len(data):
                raise MessageError("record data runs past the end of the message")
            if rtype == QType.OPT:
                if edns is not None or rr_name or index < header.ancount + header.nscount:
                    raise MessageError("misplaced or repeated OPT record")
                edns = Edns(udp_size=rclass, version=(ttl >> 16) & 0xFF, dnssec_ok=bool(ttl & DO))
    except MessageError as exc:
        raise Rejected(exc.message, header) from None
    return Query(header.id, header.flags, Question(name, qtype, qclass), edns)


# ---- encoding -----------------------------------------------------------------------------


@dataclass
class _Writer:
    """Appends names with compression: each suffix written once, later ones point to it."""

    buf: bytearray = field(default_factory=bytearray)
    offsets: dict[tuple[bytes, ...], int] = field(default_factory=dict)

    def name(self, name: Name) -> None:
        for i in range(len(name)):
            suffix = tuple(label.lower() for label in name[i:])
            known = self.offsets.get(suffix)
            if known is not None:
                self.buf += struct.pack("!H", 0xC000 | known)
                return
            if len(self.buf) < 0x4000:  # a pointer holds 14 bits
                self.offsets[suffix] = len(self.buf)
            self.buf.append(len(name[i]))
            self.buf += name[i]
        self.buf.append(0)

    def record(self, record: Record) -> None:
        self.name(record.name)
        self.buf += struct.pack("!HHI", record.rtype, record.rclass, record.ttl)
        if isinstance(record.data, bytes):
            self.buf += struct.pack("!H", len(record.data)) + record.data
            return
        at = len(self.buf)
        self.buf += b"\0\0"
        self.name(record.data)
        struct.pack_into("!H", self.buf, at, len(self.buf) - at - 2)


def _opt_record(edns: Edns | None, rcode: int) -> bytes:
    if edns is None:
        return b""
    ttl = ((rcode >> 4) & 0xFF) << 24  # extended rcode, version 0, DO clear: we never sign
    return b"\0" + struct.pack("!HHIH", QType.OPT, OUR_EDNS_SIZE, ttl, 0)


def encode_response(
    query: Query,
    rcode: int = RCode.NOERROR,
    answers: Sequence[Record] = (),
    *,
    limit: int = UDP_PLAIN_LIMIT,
    recursion_available: bool = True,
) -> bytes:
    """The reply to `query`: its id, opcode, RD and CD echoed, the question repeated, then as
    many answers as fit in `limit` (TC set when some were left out, as miekg/dns's Truncate
    does). An OPT record answers an OPT record (RFC 6891 7), dockerd's resolver omits it."""
    opt = _opt_record(query.edns, rcode)
    writer = _Writer(bytearray(HEADER.size))
    writer.name(query.question.name)
    writer.buf += struct.pack("!HH", query.question.qtype, query.question.qclass)
    written = 0
    truncated = False
    for record in answers:
        mark = len(writer.buf)
        saved = dict(writer.offsets)
        writer.record(record)
        if len(writer.buf) + len(opt) > limit:
            del writer.buf[mark:]
            writer.offsets = saved
            truncated = True
            break
        written += 1
    writer.buf += opt
    flags = QR | (query.flags & (0x7800 | RD | CD)) | (rcode & 0xF)
    if recursion_available:
        flags |= RA
    if truncated:
        flags |= TC
    HEADER.pack_into(writer.buf, 0, query.id, flags, 1, written, 0, 1 if opt else 0)
    return bytes(writer.buf)


def encode_rejection(header: Header, rcode: int) -> bytes:
    """FORMERR/NOTIMP for a query we could not take: its header echoed, no sections."""
    flags = QR | (header.flags & (0x7800 | RD | CD)) | rcode
    return HEADER.pack(header.id, flags, 0, 0, 0, 0)


# ---- forwarding -------------------------------------------------------------------------


def with_id(message: bytes, message_id: int) -> bytes:
    """The same message under another id (a forwarded query gets a fresh one, its reply the
    client's again)."""
    return struct.pack("!H", message_id) + message[2:]


def reply_matches(reply: bytes, message_id: int, question: Question) -> bool:
    """Whether `reply` answers our forwarded query: a response, our id, the same question
    (case-insensitive, RFC 4343). A mismatch is dropped, as a spoofing attempt would be."""
    try:
        header = parse_header(reply)
        if not header.flags & QR or header.id != message_id or header.qdcount != 1:
            return False
        name, pos = _read_name(reply, HEADER.size)
    except MessageError:
        return False
    if pos + 4 > len(reply):
        return False
    qtype, qclass = struct.unpack_from("!HH", reply, pos)
    same_name = tuple(label.lower() for label in name) == tuple(label.lower() for label in question.name)
    return same_name and qtype == question.qtype and qclass == question.qclass


def reply_rcode(reply: bytes) -> int:
    return parse_header(reply).flags & 0xF


def reply_truncated(reply: bytes) -> bool:
    return bool(parse_header(reply).flags & TC)


def fit_reply(reply: bytes, query: Query, limit: int) -> bytes:
    """An upstream reply for the client, under the client's id. If it is larger than the
    client can take (an upstream ignoring our size), the client gets TC and the question,
    and asks again over TCP."""
    if len(reply) <= limit:
        return with_id(reply, query.id)
    trimmed = bytearray(encode_response(query, reply_rcode(reply), limit=limit))
    struct.pack_into("!H", trimmed, 2, HEADER.unpack_from(trimmed)[1] | TC)
    return bytes(trimmed)
