"""Legacy links (model/links.py): the HostConfig.Links forms, the hosts entry, dockerd's variables."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.links import (
    LinkedContainer,
    hosts_entry,
    link_env,
    parse_link,
    renamed_links,
    with_link_env,
)
from dockyard.model.ports import ExposedPort, Proto


def test_the_forms_a_link_comes_in() -> None:
    assert parse_link("db:alias") == ("db", "alias")
    assert parse_link("db") == ("db", "db")
    assert parse_link("/db:/web/alias") == ("db", "alias")  # inspect's shape, sent back by clients
    for bad in ("", "a:b:c", ":x", "x:"):
        with pytest.raises(InvalidArgument):
            parse_link(bad)


def test_the_hosts_entry_names_the_alias_the_hostname_and_the_name() -> None:
    child = LinkedContainer("dbal", "db", "8389a1b6aa89", "10.0.0.2")
    assert hosts_entry(child) == "dbal 8389a1b6aa89 db:10.0.0.2"
    assert hosts_entry(LinkedContainer("db", "db", "h", "10.0.0.2")) == "db h:10.0.0.2"


def test_dockerds_variables_ports_runs_name_and_env() -> None:
    ports = (ExposedPort(5433), ExposedPort(80), ExposedPort(5432), ExposedPort(53, Proto.UDP), ExposedPort(53))
    child = LinkedContainer("my-db", "db", "h", "10.0.0.2", ("FOO=bar", "PATH=/bin", "HOME=/root", "EMPTY="), ports)
    env = link_env("web", child)
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.2:53"  # the lowest port, tcp first
    assert "MY_DB_PORT_5432_TCP_START=tcp://10.0.0.2:5432" in env
    assert "MY_DB_PORT_5432_TCP_END=tcp://10.0.0.2:5433" in env and "MY_DB_PORT_5432_TCP_PORT_END=5433" in env
    assert "MY_DB_PORT_80_TCP_START=tcp://10.0.0.2:80" not in env  # 80 stands alone
    assert {"MY_DB_PORT_53_UDP=udp://10.0.0.2:53", "MY_DB_PORT_53_UDP_PROTO=udp", "MY_DB_PORT_80_TCP_ADDR=10.0.0.2",
            "MY_DB_PORT_80_TCP_PORT=80"} <= set(env)  # fmt: skip
    assert env[-3:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_FOO=bar", "MY_DB_ENV_EMPTY="]  # not HOME, not PATH
    bare = link_env("web", LinkedContainer("x", "x", "h", "10.0.0.3"))
    assert bare == ["X_NAME=/web/x"]


def test_the_containers_own_variables_win() -> None:
    child = LinkedContainer("db", "db", "h", "10.0.0.2", ("FOO=bar",))
    env = with_link_env(("DB_ENV_FOO=mine", "A=1"), "web", [child])
    assert env == ("DB_NAME=/web/db", "DB_ENV_FOO=mine", "A=1")


def test_a_rename_moves_only_the_links_naming_the_old_name() -> None:
    links = ("db:dbal", "dbx:db", "cache:cache")
    assert renamed_links(links, "db", "db2") == ("db2:dbal", "dbx:db", "cache:cache")
    assert renamed_links(links, "nosuch", "x") == links
