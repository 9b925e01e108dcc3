"""model/dnsmessage: queries parsed as a server takes them, replies checked with dnspython."""

from __future__ import annotations

import random
import struct
from ipaddress import ip_address

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from dockyard.model import dnsmessage as wire
from dockyard.model.dnsmessage import QType, Query, RCode, Record, Transport


def make_query(name: str = "web", rdtype: str = "A", *, edns: int | None = None, payload: int = 1232, want_dnssec: bool = False) -> bytes:
    qname = name if name.endswith(".") else name + "."
    if edns is None:
        return dns.message.make_query(qname, rdtype, use_edns=False).to_wire()
    return dns.message.make_query(qname, rdtype, use_edns=edns, payload=payload, want_dnssec=want_dnssec).to_wire()


def parse(data: bytes) -> Query:
    return wire.parse_query(data)


# ---- parsing -------------------------------------------------------------------------------


def test_parse_plain_query() -> None:
    raw = make_query("Web.MyNet", "AAAA")
    query = parse(raw)
    assert query.id == struct.unpack("!H", raw[:2])[0]
    assert query.question.name == (b"Web", b"MyNet")
    assert query.question.text == "Web.MyNet"
    assert query.question.qtype == QType.AAAA
    assert query.edns is None
    assert query.flags & wire.RD
    assert query.limit(Transport.UDP) == 512
    assert query.limit(Transport.TCP) == 65535


def test_parse_edns() -> None:
    query = parse(make_query("web", edns=0, payload=4096, want_dnssec=True))
    assert query.edns == wire.Edns(udp_size=4096, version=0, dnssec_ok=True)
    assert query.limit(Transport.UDP) == 4096
    assert parse(make_query("web", edns=0, payload=100)).limit(Transport.UDP) == 512  # never below 512
    assert parse(make_query("web", edns=0, payload=65535)).limit(Transport.UDP) == wire.UDP_LIMIT


def test_root_name() -> None:
    query = parse(make_query(".", "NS"))
    assert query.question.name == ()
    assert query.question.text == ""


def test_odd_bytes_are_escaped_in_text() -> None:
    name = dns.name.Name([b"a.b", b"\x00x\\", b""])
    raw = dns.message.make_query(name, "A").to_wire()
    assert parse(raw).question.text == "a\\.b.\\000x\\\\"


@pytest.mark.parametrize("data", [b"", b"\x00" * 11])
def test_shorter_than_a_header_gets_no_reply(data: bytes) -> None:
    with pytest.raises(wire.Unanswerable):
        parse(data)


def test_a_response_gets_no_reply() -> None:
    raw = bytearray(make_query())
    raw[2] |= 0x80
    with pytest.raises(wire.Unanswerable):
        parse(bytes(raw))


def _with_counts(raw: bytes, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return raw[:4] + struct.pack("!HHHH", qd, an, ns, ar) + raw[12:]


@pytest.mark.parametrize(
    ("counts", "why"),
    [((0,), "0 questions"), ((2,), "2 questions"), ((1000,), "1000 questions"), ((1, 2), "too many"), ((1, 0, 2), "too many"), ((1, 0, 0, 3), "too many")],
)
def test_counts_a_query_cannot_have_are_formerr(counts: tuple[int, ...], why: str) -> None:
    with pytest.raises(wire.Rejected, match=why) as caught:
        parse(_with_counts(make_query(), *counts))
    assert caught.value.rcode == RCode.FORMERR


def test_other_opcodes_are_notimp() -> None:
    raw = bytearray(make_query())
    raw[2] |= 5 << 3  # UPDATE
    with pytest.raises(wire.Rejected) as caught:
        parse(bytes(raw))
    assert caught.value.rcode == RCode.NOTIMP
    reply = dns.message.from_wire(wire.encode_rejection(caught.value.header, caught.value.rcode))
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == 5
    assert reply.id == caught.value.header.id


HEADER_1Q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no question at all
        b"\x03web",  # label without its end
        b"\x05we",  # label longer than the packet
        b"\x03web\x00\x00\x01",  # type without class
        b"\xc0",  # half a pointer
        b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
        b"\x01a\xc0\x0e\x00\x01\x00\x01",  # pointer forwards (to itself + 2)
        b"\x40abc\x00\x00\x01\x00\x01",  # extended label type
        b"\x80abc\x00\x00\x01\x00\x01",  # reserved label type
        (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01",  # 257 octets
    ],
)
def test_hostile_questions_are_formerr(body: bytes) -> None:
    with pytest.raises(wire.Rejected) as caught:
        parse(HEADER_1Q + body)
    assert caught.value.rcode == RCode.FORMERR
    assert caught.value.header.id == 0x1234


def test_longest_legal_name() -> None:
    name = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"b" * 61 + b"\x00"
    assert len(name) == 255
    assert len(parse(HEADER_1Q + name + b"\x00\x01\x00\x01").question.name) == 4


def test_pointer_loop_through_a_label_ends() -> None:
    # root question (offsets 12-16); at 17 an additional record's owner: a label of 5 bytes,
    # then at 23 a pointer back to 17: every round reads the label again, until 255 octets
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 1)
    data = header + b"\x00\x00\x01\x00\x01" + b"\x05abcde" + b"\xc0\x11" + b"\x00" * 10
    with pytest.raises(wire.Rejected, match="255"):
        parse(data)


def test_pointer_chain_without_labels_is_bounded() -> None:
    # an answer record whose data holds 70 pointers, each to the one before it (the first to
    # the root question name); an additional record named by the last: backwards every hop
    header = struct.pack("!HHHHHH", 1, 0, 1, 1, 0, 1)
    question = b"\x00\x00\x01\x00\x01"  # offsets 12-16
    start = 12 + len(question) + 11  # the answer's data
    chain = b"".join(struct.pack("!H", 0xC000 | (12 if i == 0 else start + 2 * (i - 1))) for i in range(70))
    answer = b"\x00" + struct.pack("!HHIH", 1, 1, 0, len(chain)) + chain
    last = start + 2 * 69
    extra = struct.pack("!H", 0xC000 | last) + struct.pack("!HHIH", 1, 1, 0, 0)
    with pytest.raises(wire.Rejected, match="backwards"):
        parse(header + question + answer + extra)
    short = struct.pack("!H", 0xC000 | (start + 2 * 10)) + struct.pack("!HHIH", 1, 1, 0, 0)
    assert parse(header + question + answer + short).question.name == ()  # 11 hops are fine


def test_compressed_question_name_is_followed() -> None:
    # an (odd) query whose OPT owner is a pointer to the question: rejected, the owner must be root
    raw = make_query("web", edns=0)
    opt_at = raw.index(b"\x00\x00\x29")
    bad = raw[:opt_at] + b"\xc0\x0c" + raw[opt_at + 1 :]
    with pytest.raises(wire.Rejected, match="OPT"):
        parse(bad)


def test_two_opt_records_are_formerr() -> None:
    raw = make_query("web", edns=0)
    opt = raw[raw.index(b"\x00\x00\x29") :]
    with pytest.raises(wire.Rejected, match="OPT"):
        parse(_with_counts(raw + opt, 1, 0, 0, 2))


def test_record_data_past_the_end_is_formerr() -> None:
    raw = make_query("web", edns=0)
    with pytest.raises(wire.Rejected, match="past the end"):
        parse(raw[:-2] + b"\x00\x09")


def test_random_garbage_never_raises_anything_else() -> None:
    rng = random.Random(7)
    seeds = [make_query("web.net", "A", edns=0), make_query("4.0.18.172.in-addr.arpa", "PTR")]
    for i in range(20000):
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        data = bytes(base[: rng.randint(0, len(base))]) if i % 3 == 0 else bytes(base)
        try:
            parse(data)
        except wire.MessageError:
            pass


# ---- encoding ------------------------------------------------------------------------------


def a_records(name: tuple[bytes, ...], count: int) -> list[Record]:
    return [Record(name, QType.A, 600, ip_address(f"10.0.{i // 250}.{i % 250 + 1}").packed) for i in range(count)]


def test_answer_round_trips_through_dnspython() -> None:
    query = parse(make_query("Web", "A"))
    out = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 2))
    reply = dns.message.from_wire(out)
    assert reply.id == query.id
    assert reply.flags & dns.flags.QR and reply.flags & dns.flags.RA and reply.flags & dns.flags.RD
    assert not reply.flags & dns.flags.AA and not reply.flags & dns.flags.TC
    assert reply.rcode() == dns.rcode.NOERROR
    assert str(reply.question[0].name) == "Web."
    (rrset,) = reply.answer
    assert rrset.ttl == 600
    assert sorted(r.address for r in rrset) == ["10.0.0.1", "10.0.0.2"]
    assert reply.edns < 0  # no OPT without one asked


def test_names_are_compressed() -> None:
    query = parse(make_query("a-long-service-name.network", "A"))
    out = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 3))
    assert out.count(b"a-long-service-name") == 1
    assert len(out) == 12 + 29 + 4 + 3 * 16


def test_ptr_target_compressed_against_itself_and_the_question() -> None:
    query = parse(make_query("4.0.18.172.in-addr.arpa", "PTR"))
    target = wire.name_from_text("web.net.")
    out = wire.encode_response(query, RCode.NOERROR, [Record(query.question.name, QType.PTR, 600, target)])
    reply = dns.message.from_wire(out)
    assert reply.answer[0][0].target == dns.name.from_text("web.net.")


def test_udp_without_edns_truncates_at_512_and_sets_tc() -> None:
    query = parse(make_query("svc", "A"))
    out = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 40), limit=query.limit(Transport.UDP))
    assert len(out) <= 512
    reply = dns.message.from_wire(out)
    assert reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == (512 - 12 - 8) // 16
    full = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 40), limit=query.limit(Transport.TCP))
    reply = dns.message.from_wire(full)
    assert not reply.flags & dns.flags.TC and len(reply.answer[0]) == 40


def test_edns_reply_has_opt_and_uses_the_advertised_size() -> None:
    query = parse(make_query("svc", "A", edns=0, payload=1232))
    out = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 40), limit=query.limit(Transport.UDP))
    reply = dns.message.from_wire(out)
    assert reply.edns == 0 and reply.payload == wire.OUR_EDNS_SIZE
    assert not reply.flags & dns.flags.TC and len(reply.answer[0]) == 40
    big = wire.encode_response(query, RCode.NOERROR, a_records(query.question.name, 100), limit=query.limit(Transport.UDP))
    assert len(big) <= 1232
    reply = dns.message.from_wire(big)
    assert reply.flags & dns.flags.TC and reply.edns == 0  # the OPT stays when records go


def test_badvers_needs_the_opt_extended_rcode() -> None:
    query = parse(make_query("web", edns=0))
    reply = dns.message.from_wire(wire.encode_response(query, RCode.BADVERS))
    assert reply.rcode() == dns.rcode.BADVERS


@pytest.mark.parametrize("rcode", [RCode.NXDOMAIN, RCode.SERVFAIL, RCode.REFUSED, RCode.NOERROR])
def test_empty_replies(rcode: RCode) -> None:
    query = parse(make_query("web", "AAAA"))
    reply = dns.message.from_wire(wire.encode_response(query, rcode, recursion_available=False))
    assert reply.rcode() == rcode
    assert not reply.answer
    assert not reply.flags & dns.flags.RA
    assert reply.question[0].rdtype == dns.rdatatype.AAAA


def test_cd_is_echoed() -> None:
    msg = dns.message.make_query("web.", "A")
    msg.flags |= dns.flags.CD
    reply = dns.message.from_wire(wire.encode_response(parse(msg.to_wire())))
    assert reply.flags & dns.flags.CD


def test_name_from_text() -> None:
    assert wire.name_from_text("web.net.") == (b"web", b"net")
    assert wire.name_from_text(".") == ()
    with pytest.raises(wire.InvalidArgument):
        wire.name_from_text("a" * 64)
    with pytest.raises(wire.InvalidArgument):
        wire.name_from_text("a..b")
    with pytest.raises(wire.InvalidArgument):
        wire.name_from_text(".".join(["a" * 63] * 4))


# ---- forwarding helpers --------------------------------------------------------------------


def upstream_reply(raw_query: bytes, answers: int = 1, tc: bool = False) -> bytes:
    query = dns.message.from_wire(raw_query)
    reply = dns.message.make_response(query)
    if answers:
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", *[f"192.0.2.{i + 1}" for i in range(answers)]))
    if tc:
        reply.flags |= dns.flags.TC
    return reply.to_wire()


def test_reply_matches_checks_id_question_and_qr() -> None:
    raw = make_query("example.org", "A")
    query = parse(raw)
    forwarded = wire.with_id(raw, 0xBEEF)
    reply = upstream_reply(forwarded)
    assert wire.reply_matches(reply, 0xBEEF, query.question)
    assert not wire.reply_matches(reply, 0xBEEE, query.question)
    assert not wire.reply_matches(forwarded, 0xBEEF, query.question)  # not a response
    other = parse(make_query("example.com", "A")).question
    assert not wire.reply_matches(reply, 0xBEEF, other)
    upper = wire.Question((b"EXAMPLE", b"ORG"), QType.A)
    assert wire.reply_matches(reply, 0xBEEF, upper)
    assert not wire.reply_matches(b"\xbe\xef", 0xBEEF, query.question)
    assert not wire.reply_matches(reply[:20], 0xBEEF, query.question)


def test_fit_reply_restores_the_id_or_truncates() -> None:
    raw = make_query("example.org", "A")
    query = parse(raw)
    reply = upstream_reply(wire.with_id(raw, 7), answers=2)
    fitted = wire.fit_reply(reply, query, 512)
    assert dns.message.from_wire(fitted).id == query.id
    assert fitted[2:] == reply[2:]
    big = upstream_reply(wire.with_id(raw, 7), answers=60)
    assert len(big) > 512
    cut = dns.message.from_wire(wire.fit_reply(big, query, 512))
    assert cut.flags & dns.flags.TC and not cut.answer and cut.id == query.id
    assert wire.reply_truncated(upstream_reply(raw, tc=True))
    assert wire.reply_rcode(reply) == 0
