"""model/ipam: dockerd's subnet choice, IPAM config checks with its words, address leases."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from dockyard.errors import Forbidden, InvalidArgument, Unavailable
from dockyard.model.ipam import (
    AddressPool,
    Leases,
    SubnetRequest,
    check_free,
    next_free_subnet,
    parse_address_pools,
    plan_subnets,
)

DOCKERD_POOLS = (
    AddressPool(ip_network("172.17.0.0/16"), 16),
    AddressPool(ip_network("172.18.0.0/16"), 16),
    AddressPool(ip_network("172.20.0.0/14"), 16),
    AddressPool(ip_network("192.168.0.0/16"), 20),
)


def test_first_pool_subnet_when_nothing_is_taken() -> None:
    assert next_free_subnet(DOCKERD_POOLS, []) == ip_network("172.17.0.0/16")


def test_subnets_taken_or_routed_are_skipped_in_address_order() -> None:
    taken = [ip_network("172.17.0.0/16"), ip_network("172.18.5.0/24"), ip_network("172.20.0.0/16")]
    assert next_free_subnet(DOCKERD_POOLS, taken) == ip_network("172.21.0.0/16")


def test_a_small_route_inside_a_candidate_skips_the_whole_candidate() -> None:
    pools = (AddressPool(ip_network("10.10.0.0/16"), 24),)
    taken = [ip_network("10.10.0.128/25"), ip_network("10.10.1.7/32")]
    assert next_free_subnet(pools, taken) == ip_network("10.10.2.0/24")


def test_a_wide_route_covering_a_pool_moves_to_the_next_pool() -> None:
    taken = [ip_network("172.16.0.0/12")]
    assert next_free_subnet(DOCKERD_POOLS, taken) == ip_network("192.168.0.0/20")


def test_every_pool_used_up_is_dockerds_error() -> None:
    pools = (AddressPool(ip_network("10.0.0.0/30"), 31),)
    taken = [ip_network("10.0.0.0/31"), ip_network("10.0.0.2/31")]
    with pytest.raises(InvalidArgument, match="all predefined address pools have been fully subnetted"):
        next_free_subnet(pools, taken)


def test_v6_pools_and_v4_routes_do_not_mix() -> None:
    pools = (AddressPool(ip_network("fd00:1::/48"), 64), *DOCKERD_POOLS)
    taken = [ip_network("fd00:1::/64"), ip_network("0.0.0.0/0")]
    assert next_free_subnet(pools, taken, version=6) == ip_network("fd00:1:0:1::/64")


def test_address_pools_from_daemon_json() -> None:
    pools = parse_address_pools([{"base": "10.20.0.0/16", "size": 24}])
    assert pools == (AddressPool(ip_network("10.20.0.0/16"), 24),)
    for bad in ("x", [{"base": "10.0.0.0/8"}], [{"base": "nope", "size": 24}], [{"base": "10.0.0.0/16", "size": 8}],
                [{"base": "10.0.0.0/16", "size": True}], [{"base": "10.0.0.0/16", "size": 24, "x": 1}]):  # fmt: skip
        with pytest.raises(InvalidArgument):
            parse_address_pools(bad)


def test_a_valid_config_is_planned() -> None:
    (plan,) = plan_subnets([SubnetRequest("10.1.0.0/16", "10.1.5.0/24", "10.1.5.254", {"host": "10.1.0.9"})], False)
    assert plan.subnet == ip_network("10.1.0.0/16")
    assert plan.ip_range == ip_network("10.1.5.0/24")
    assert plan.gateway == ip_address("10.1.5.254")
    assert plan.aux_addresses == (("host", ip_address("10.1.0.9")),)


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (SubnetRequest("10.1.0.1/16"), "invalid subnet 10.1.0.1/16: it should be 10.1.0.0/16"),
        (SubnetRequest("10.1.0.0"), "invalid subnet 10.1.0.0: invalid CIDR block notation"),
        (SubnetRequest("bogus/8"), "invalid subnet bogus/8: invalid CIDR block notation"),
        (SubnetRequest("10.1.0.0/16", gateway="10.2.0.1"),
         "invalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 doesn't contain this address"),
        (SubnetRequest("10.1.0.0/16", gateway="fd00::1"), "invalid gateway fd00::1: parent subnet is an IPv4 block"),
        (SubnetRequest("10.1.0.0/16", gateway="x"), "invalid gateway x: invalid address"),
        (SubnetRequest("10.1.0.0/16", ip_range="10.0.0.0/8"),
         "invalid ip-range 10.0.0.0/8: CIDR block is bigger than its parent subnet 10.1.0.0/16"),
        (SubnetRequest("10.1.0.0/16", ip_range="10.1.0.1/24"), "invalid ip-range 10.1.0.1/24: it should be 10.1.0.0/24"),
        (SubnetRequest("10.1.0.0/16", ip_range="10.9.0.0/24"),
         "invalid ip-range 10.9.0.0/24: parent subnet 10.1.0.0/16 doesn't contain ip-range"),
        (SubnetRequest("10.1.0.0/16", aux_addresses={"a": "10.3.0.1"}),
         "invalid auxiliary address a: parent subnet 10.1.0.0/16 doesn't contain this address"),
    ],
)
def test_config_problems_in_dockerds_words(request_: SubnetRequest, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_subnets([request_], False)
    assert caught.value.message.startswith("invalid network config:\n")
    assert words in caught.value.message


def test_several_problems_are_listed_together() -> None:
    with pytest.raises(InvalidArgument) as caught:
        plan_subnets([SubnetRequest("10.1.0.1/16", gateway="10.2.0.1"), SubnetRequest("nope")], False)
    assert caught.value.message == (
        "invalid network config:\n"
        "* invalid subnet 10.1.0.1/16: it should be 10.1.0.0/16\n"
        "* invalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 doesn't contain this address\n"
        "* invalid subnet nope: invalid CIDR block notation"
    )


def test_v6_entries_count_only_with_ipv6() -> None:
    assert plan_subnets([SubnetRequest("fd00::1/64")], False) == ()
    with pytest.raises(InvalidArgument, match="it should be fd00::/64"):
        plan_subnets([SubnetRequest("fd00::1/64")], True)


def test_a_named_subnet_must_not_overlap_another() -> None:
    check_free(ip_network("10.2.0.0/16"), [ip_network("10.1.0.0/16"), ip_network("fd00::/8")])
    with pytest.raises(Forbidden, match="invalid pool request: Pool overlaps with other one on this address space"):
        check_free(ip_network("10.1.128.0/24"), [ip_network("10.1.0.0/16")])


def test_lowest_free_address_skips_network_address_and_what_is_taken() -> None:
    leases = Leases(ip_network("10.5.0.0/24"))
    gateway, leases = leases.take_any()
    assert gateway == ip_address("10.5.0.1")
    leases = leases.take(ip_address("10.5.0.2"))
    addr, leases = leases.take_any()
    assert addr == ip_address("10.5.0.3")
    leases = leases.release(ip_address("10.5.0.2"))
    again, leases = leases.take_any()
    assert again == ip_address("10.5.0.2")  # lowest free, as dockerd's local networks (not serial)
    assert leases.holds(ip_address("10.5.0.3")) and not leases.holds(ip_address("10.5.0.4"))


def test_an_ip_range_bounds_automatic_addresses() -> None:
    leases = Leases(ip_network("10.1.0.0/16"))
    first, leases = leases.take_any(ip_network("10.1.5.0/24"))
    assert first == ip_address("10.1.5.0")  # inside a larger subnet, .0 of the range is an ordinary address
    assert leases.take(ip_address("10.1.9.9")).holds(ip_address("10.1.9.9"))  # --ip may leave the range


def test_taken_reserved_and_foreign_addresses_are_refused() -> None:
    leases = Leases(ip_network("10.5.0.0/24")).take(ip_address("10.5.0.7"))
    with pytest.raises(Forbidden, match="Address already in use"):
        leases.take(ip_address("10.5.0.7"))
    with pytest.raises(Forbidden, match="Address already in use"):
        leases.take(ip_address("10.5.0.255"))  # the broadcast
    with pytest.raises(InvalidArgument, match="requested address is out of range"):
        leases.take(ip_address("10.6.0.1"))
    assert leases.release(ip_address("10.6.0.1")) is leases


def test_a_full_range_is_unavailable() -> None:
    leases = Leases(ip_network("10.5.0.0/30"))  # .1 and .2 usable
    _, leases = leases.take_any()
    _, leases = leases.take_any()
    with pytest.raises(Unavailable, match="no available addresses on this pool"):
        leases.take_any()


def test_point_to_point_and_v6_edges() -> None:
    a, leases = Leases(ip_network("10.5.0.0/31")).take_any()
    b, leases = leases.take_any()
    assert (a, b) == (ip_address("10.5.0.0"), ip_address("10.5.0.1"))
    v6, _ = Leases(ip_network("fd00::/126")).take_any()
    assert v6 == ip_address("fd00::1")  # the subnet-router anycast address is skipped
    last, _ = Leases(ip_network("fd00::/126")).take(ip_address("fd00::1")).take(ip_address("fd00::2")).take_any()
    assert last == ip_address("fd00::3")  # v6 has no broadcast
