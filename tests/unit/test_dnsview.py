"""model/dnsview: what a container's embedded DNS answers, dockerd's rules one by one."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv6Address, ip_address

import dns.flags
import dns.message
import dns.rcode
import pytest

from dockyard.model import dnsmessage as wire
from dockyard.model.dnsmessage import Transport
from dockyard.model.dnsview import (
    TTL,
    EndpointRecord,
    Forward,
    Link,
    NameTable,
    NetworkNames,
    answer,
    dns_names,
    respond,
)

CID_WEB = "3f2a9c1d5e7b" + "0" * 52
CID_DB = "9b8a7c6d5e4f" + "1" * 52


def ep(*names: str, addrs: tuple[str, ...]) -> EndpointRecord:
    return EndpointRecord(names, tuple(ip_address(a) for a in addrs))


WEB = ep(*dns_names("web", ["frontend"], CID_WEB, "webhost"), addrs=("172.30.0.2", "fd00::2"))
DB = ep(*dns_names("/db", [], CID_DB, CID_DB[:12]), addrs=("172.30.0.3",))
REPLICAS = [ep(*dns_names(f"proj-worker-{i}", ["worker", f"proj-worker-{i}"], f"{i:012x}"), addrs=(f"172.30.0.{10 + i}",)) for i in range(1, 4)]
OTHER = ep(*dns_names("cache", ["store"]), addrs=("172.31.0.5",))
ELSEWHERE = ep("hidden", addrs=("172.32.0.9",))

APP = NetworkNames("app", (WEB, DB, *REPLICAS))
BACK = NetworkNames("back", (OTHER,))
SECRET = NetworkNames("secret", (ELSEWHERE,))  # a network this container is not on
TABLE = NameTable((APP, BACK))


def ask(name: str, rdtype: str = "A", table: NameTable = TABLE, *, forward: bool = True, transport: Transport = Transport.UDP, edns: int | bool = False) -> dns.message.Message | Forward:
    raw = dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
    out = answer(wire.parse_query(raw), table, transport=transport, can_forward=forward)
    if isinstance(out, Forward):
        return out
    reply = dns.message.from_wire(out)
    assert reply.id == dns.message.from_wire(raw).id
    return reply


def addresses(reply: dns.message.Message | Forward) -> list[str]:
    assert isinstance(reply, dns.message.Message)
    assert reply.rcode() == dns.rcode.NOERROR
    return sorted(str(r) for rrset in reply.answer for r in rrset)


def test_dns_names_in_dockerd_order_without_duplicates() -> None:
    assert dns_names("/web", ["frontend", "web"], CID_WEB, "webhost") == ("web", "frontend", CID_WEB[:12], "webhost")
    assert dns_names("db", [], CID_DB, CID_DB[:12]) == ("db", CID_DB[:12])  # default hostname is the short id
    assert dns_names("x") == ("x",)


@pytest.mark.parametrize("name", ["web", "web.", "WEB", "frontend", CID_WEB[:12], "webhost", "web.app", "Web.APP."])
def test_every_dns_name_of_an_endpoint_resolves(name: str) -> None:
    assert addresses(ask(name)) == ["172.30.0.2"]


def test_aaaa_for_a_dual_stack_name() -> None:
    assert addresses(ask("web", "AAAA")) == ["fd00::2"]


def test_aaaa_for_a_v4_only_name_is_nodata_not_forwarded() -> None:
    reply = ask("db", "AAAA")
    assert addresses(reply) == []
    assert isinstance(reply, dns.message.Message) and reply.flags & dns.flags.RA


def test_answers_carry_dockerd_ttl_and_the_asked_case() -> None:
    reply = ask("WeB.App")
    assert isinstance(reply, dns.message.Message)
    (rrset,) = reply.answer
    assert rrset.ttl == TTL == 600
    assert str(rrset.name) == "WeB.App."
    assert not reply.flags & dns.flags.AA


def test_a_shared_alias_answers_every_replica() -> None:
    assert addresses(ask("worker")) == ["172.30.0.11", "172.30.0.12", "172.30.0.13"]
    assert addresses(ask("proj-worker-2")) == ["172.30.0.12"]


def test_shuffled_with_an_rng() -> None:
    raw = dns.message.make_query("worker", "A").to_wire()
    orders = set()
    for seed in range(20):
        out = answer(wire.parse_query(raw), TABLE, transport=Transport.UDP, can_forward=True, rng=random.Random(seed))
        assert isinstance(out, bytes)
        orders.add(tuple(str(r) for r in dns.message.from_wire(out).answer[0]))
    assert len(orders) > 1


def test_names_of_another_attached_network() -> None:
    assert addresses(ask("cache")) == ["172.31.0.5"]
    assert addresses(ask("store.back")) == ["172.31.0.5"]


def test_name_dot_network_only_on_that_network() -> None:
    assert isinstance(ask("cache.app"), Forward)
    assert isinstance(ask("web.back"), Forward)


def test_networks_the_container_is_not_on_are_invisible() -> None:
    assert isinstance(ask("hidden"), Forward)
    assert isinstance(ask("hidden.secret"), Forward)


def test_dotted_network_and_container_names() -> None:
    table = NameTable((NetworkNames("corp.internal", (ep("api.v2", addrs=("10.1.0.2",)),)),))
    assert addresses(ask("api.v2", table=table)) == ["10.1.0.2"]
    assert addresses(ask("api.v2.corp.internal", table=table)) == ["10.1.0.2"]
    assert isinstance(ask("api.v2.corp", table=table), Forward)


def test_first_network_that_knows_the_name_wins() -> None:
    table = NameTable((NetworkNames("one", (ep("svc", addrs=("10.1.0.2",)),)), NetworkNames("two", (ep("svc", addrs=("10.2.0.2", "fd02::2")),))))
    assert addresses(ask("svc", table=table)) == ["10.1.0.2"]
    assert addresses(ask("svc", "AAAA", table=table)) == []  # "one" knows it: no v6 there
    assert addresses(ask("svc.two", "AAAA", table=table)) == ["fd02::2"]
    reordered = NameTable(tuple(reversed(table.networks)))
    assert addresses(ask("svc", table=reordered)) == ["10.2.0.2"]


def test_link_alias_is_seen_first_and_only_by_its_container() -> None:
    table = NameTable((NetworkNames("app", (WEB, DB)),), links=(Link("app", "database", "db"), Link("app", "web", "db")))
    assert addresses(ask("database", table=table)) == ["172.30.0.3"]
    assert addresses(ask("web", table=table)) == ["172.30.0.3"]  # the link alias shadows the name
    assert addresses(ask("frontend", table=table)) == ["172.30.0.2"]
    assert isinstance(ask("database"), Forward)  # another container's view has no such alias


def test_link_to_a_stopped_container_is_not_an_answer() -> None:
    table = NameTable((NetworkNames("app", (WEB,)),), links=(Link("app", "gone", "ghost"), Link("back", "cache2", "web")))
    assert isinstance(ask("cache2", table=table), Forward)  # a link on a network it is not on
    assert isinstance(ask("gone", table=table), Forward)


def test_stopped_containers_disappear_with_their_records() -> None:
    without_db = NameTable((NetworkNames("app", (WEB, *REPLICAS)), BACK))
    assert isinstance(ask("db", table=without_db), Forward)
    assert isinstance(ask(CID_DB[:12], table=without_db), Forward)
    fewer = NameTable((NetworkNames("app", (WEB, *REPLICAS[:1])), BACK))
    assert addresses(ask("worker", table=fewer)) == ["172.30.0.11"]


def test_ptr_for_container_addresses() -> None:
    reply = ask("2.0.30.172.in-addr.arpa", "PTR")
    assert addresses(reply) == ["web.app."]
    assert isinstance(reply, dns.message.Message) and reply.answer[0].ttl == 600
    v6 = IPv6Address("fd00::2").reverse_pointer
    assert addresses(ask(v6.upper(), "PTR")) == ["web.app."]
    assert addresses(ask("5.0.31.172.in-addr.arpa.", "PTR")) == ["cache.back."]
    assert addresses(ask("3.0.30.172.in-addr.arpa", "PTR")) == ["db.app."]  # the name, not the id


def test_ptr_for_unknown_or_invisible_addresses_is_forwarded() -> None:
    assert isinstance(ask("9.0.32.172.in-addr.arpa", "PTR"), Forward)
    assert isinstance(ask("8.8.8.8.in-addr.arpa", "PTR"), Forward)
    assert isinstance(ask("web", "PTR"), Forward)


def test_ptr_for_a_name_too_long_for_dns_is_forwarded() -> None:
    table = NameTable((NetworkNames("app", (ep("x" * 70, addrs=("172.30.0.99",)),)),))
    assert isinstance(ask("99.0.30.172.in-addr.arpa", "PTR", table=table), Forward)


def test_mx_for_a_known_name_is_empty_noerror() -> None:
    assert addresses(ask("web", "MX")) == []
    assert isinstance(ask("example.org", "MX"), Forward)


@pytest.mark.parametrize("rdtype", ["TXT", "SRV", "CNAME", "ANY", "SOA", "NS", "HTTPS"])
def test_other_types_are_forwarded_even_for_known_names(rdtype: str) -> None:
    assert isinstance(ask("web", rdtype), Forward)


def test_other_classes_are_not_ours() -> None:
    raw = dns.message.make_query("web", "A", rdclass="CH").to_wire()
    assert isinstance(answer(wire.parse_query(raw), TABLE, transport=Transport.UDP, can_forward=True), Forward)


def test_unknown_names_are_forwarded_with_the_query() -> None:
    out = ask("example.org")
    assert isinstance(out, Forward)
    assert out.query.question.text == "example.org"


def test_without_forwarding_unknown_names_are_servfail() -> None:
    reply = ask("example.org", forward=False)
    assert isinstance(reply, dns.message.Message)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert not reply.flags & dns.flags.RA
    assert reply.question[0].name.to_text() == "example.org."
    assert addresses(ask("web", forward=False)) == ["172.30.0.2"]


def test_can_forward_follows_the_attached_networks() -> None:
    assert TABLE.can_forward
    internal_only = NameTable((NetworkNames("app", (WEB,), internal=True),))
    assert not internal_only.can_forward
    mixed = NameTable((NetworkNames("app", (WEB,), internal=True), NetworkNames("out")))
    assert mixed.can_forward
    assert not NameTable().can_forward


def test_ndots_set_keeps_single_labels_home() -> None:
    table = NameTable(TABLE.networks, ndots_set=True)
    assert addresses(ask("printer", table=table)) == []
    assert addresses(ask("printer", "AAAA", table=table)) == []
    assert isinstance(ask("printer.corp", table=table), Forward)
    assert isinstance(ask("printer", "TXT", table=table), Forward)
    assert isinstance(ask("printer"), Forward)  # without an explicit ndots


def test_many_replicas_truncate_over_udp_and_fit_over_tcp() -> None:
    replicas = [ep(f"p-w-{i}", "w", addrs=(f"172.30.{i // 200}.{i % 200 + 2}",)) for i in range(50)]
    table = NameTable((NetworkNames("app", tuple(replicas)),))
    udp = ask("w", table=table)
    assert isinstance(udp, dns.message.Message)
    assert udp.flags & dns.flags.TC and 0 < len(udp.answer[0]) < 50
    tcp = ask("w", table=table, transport=Transport.TCP)
    assert isinstance(tcp, dns.message.Message)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 50
    edns = ask("w", table=table, edns=0)
    assert isinstance(edns, dns.message.Message)
    assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == 50 and edns.edns == 0


def test_edns_version_1_is_badvers() -> None:
    reply = ask("web", edns=1)
    assert isinstance(reply, dns.message.Message)
    assert reply.rcode() == dns.rcode.BADVERS


def test_respond_covers_garbage_and_rejections() -> None:
    assert respond(b"\x00\x01", TABLE, transport=Transport.UDP, can_forward=True) is None
    reply_bytes = dns.message.make_response(dns.message.make_query("web", "A")).to_wire()
    assert respond(reply_bytes, TABLE, transport=Transport.UDP, can_forward=True) is None
    two = dns.message.make_query("web", "A")
    two.question.append(two.question[0])
    out = respond(two.to_wire(), TABLE, transport=Transport.UDP, can_forward=True)
    assert isinstance(out, bytes)
    reply = dns.message.from_wire(out, question_only=True)
    assert reply.rcode() == dns.rcode.FORMERR and reply.id == two.id and not reply.question
    good = respond(dns.message.make_query("web", "A").to_wire(), TABLE, transport=Transport.UDP, can_forward=True)
    assert isinstance(good, bytes)


def test_records_with_duplicate_addresses_answer_once() -> None:
    table = NameTable((NetworkNames("app", (ep("a", "s", addrs=("10.0.0.2",)), ep("b", "s", addrs=("10.0.0.2",)))),))
    assert addresses(ask("s", table=table)) == ["10.0.0.2"]


def test_table_is_frozen_and_comparable() -> None:
    again = NameTable((APP, BACK))
    assert again == TABLE
    assert NetworkNames("app", (WEB, DB, *REPLICAS)) == APP
    with pytest.raises(AttributeError):
        TABLE.ndots_set = True  # type: ignore[misc]
    assert isinstance(WEB.addresses[0], IPv4Address)


@pytest.mark.parametrize(
    "pointer",
    ["02.0.30.172.in-addr.arpa", "2.0.30.172.in-addr.arpa.extra", "0.30.172.in-addr.arpa", "256.0.30.172.in-addr.arpa", "x.0.30.172.in-addr.arpa", "2.0.30.172.ip6.arpa", "\u0662.0.30.172.in-addr.arpa"],
)
def test_malformed_reverse_names_are_not_ours(pointer: str) -> None:
    assert TABLE.reverse(pointer) is None


def test_v6_reverse_needs_32_hex_nibbles() -> None:
    full = IPv6Address("fd00::2").reverse_pointer
    assert TABLE.reverse(full) == "web.app"
    assert TABLE.reverse("g" + full[1:]) is None
    assert TABLE.reverse(full.split(".", 1)[1]) is None


def test_a_shared_network_is_built_once_and_tables_are_cheap() -> None:
    many = tuple(ep(f"c{i}", f"svc{i % 5}", addrs=(f"172.30.{i // 250}.{i % 250 + 2}",)) for i in range(300))
    shared = NetworkNames("big", many)
    tables = [NameTable((shared,)) for _ in range(300)]
    assert all(t.networks[0] is shared for t in tables)
    assert addresses(ask("c299", table=tables[-1])) == ["172.30.1.51"]
