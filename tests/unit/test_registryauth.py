"""X-Registry-Auth, WWW-Authenticate challenges, token answers, registry errors."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.registryauth import (
    Challenge,
    Credentials,
    basic_authorization,
    decode_registry_auth,
    parse_challenges,
    parse_registry_errors,
    parse_token_answer,
    token_query,
)


def _header(doc: object, alphabet: str = "url") -> str:
    raw = json.dumps(doc).encode()
    return (base64.urlsafe_b64encode(raw) if alphabet == "url" else base64.b64encode(raw)).decode()


def test_anonymous() -> None:
    assert decode_registry_auth("") == Credentials()
    assert decode_registry_auth("e30=") == Credentials()
    assert decode_registry_auth("e30") == Credentials()  # padding optional


def test_username_password_and_server() -> None:
    creds = decode_registry_auth(_header({"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"}))
    assert creds == Credentials("u", "p?>", "127.0.0.1:5000")
    assert creds.has_basic


def test_packed_auth_field() -> None:
    creds = decode_registry_auth(_header({"auth": base64.b64encode(b"me:pw:with:colons").decode()}, "std"))
    assert (creds.username, creds.password) == ("me", "pw:with:colons")


def test_tokens() -> None:
    creds = decode_registry_auth(_header({"identitytoken": "refresh", "registrytoken": "bearer"}))
    assert creds.identity_token == "refresh" and creds.registry_token == "bearer" and not creds.has_basic


@pytest.mark.parametrize("header", ["!!!!", _header([1, 2]), base64.urlsafe_b64encode(b"{nope").decode()])
def test_bad_headers(header: str) -> None:
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        decode_registry_auth(header)


def test_basic_authorization() -> None:
    assert basic_authorization(Credentials("a", "b")) == "Basic " + base64.b64encode(b"a:b").decode()


def test_bearer_challenge() -> None:
    [c] = parse_challenges(['Bearer realm="https://auth.example/token",service="registry.example",'
                            'scope="repository:library/busybox:pull"'])  # fmt: skip
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.example/token"
    assert c.params["service"] == "registry.example"
    assert c.params["scope"] == "repository:library/busybox:pull"


def test_several_challenges_and_escapes() -> None:
    found = parse_challenges(['Basic realm="a \\"quoted\\" realm", Bearer realm=tok,service=s', "Negotiate"])
    assert [c.scheme for c in found] == ["basic", "bearer", "negotiate"]
    assert found[0].realm == 'a "quoted" realm'
    assert found[1].params == {"realm": "tok", "service": "s"}


def test_token_query() -> None:
    c = Challenge("bearer", {"realm": "r", "service": "reg svc"})
    assert token_query(c, ["repository:a/b:pull"], Credentials("me", "pw")) == (
        "service=reg+svc&scope=repository%3Aa%2Fb%3Apull&account=me"
    )
    assert token_query(Challenge("bearer", {"realm": "r"}), [], Credentials()) == ""


def test_token_answers() -> None:
    assert parse_token_answer(b'{"token":"t1","expires_in":60}') == "t1"
    assert parse_token_answer(b'{"access_token":"t2"}') == "t2"
    with pytest.raises(InvalidArgument, match="did not include a token"):
        parse_token_answer(b"{}")
    with pytest.raises(InvalidArgument):
        parse_token_answer(b"<html>")


def test_registry_errors() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'
    [e] = parse_registry_errors(body)
    assert str(e) == "manifest unknown: manifest unknown"
    assert parse_registry_errors(b"not json") == []
    assert parse_registry_errors(b'{"errors":"x"}') == []
