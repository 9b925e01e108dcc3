"""network/dns: the redirect ruleset, one nft transaction that replaces our table."""

from __future__ import annotations

from dockyard.network.dns import REDIRECT_TABLE, redirect_rules


def test_redirect_rules_replace_the_table_and_send_53_to_our_ports() -> None:
    rules = redirect_rules("127.0.0.11", 40001, 40002).splitlines()
    assert rules[:2] == [f"table ip {REDIRECT_TABLE} {{}}", f"delete table ip {REDIRECT_TABLE}"]
    assert "    type nat hook output priority -100; policy accept;" in rules
    assert "    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001" in rules
    assert "    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002" in rules
    assert rules[-1] == "}"
