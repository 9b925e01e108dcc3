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


def test_token_response_expiry_and_refresh_token() -> None:
    from dockyard.model.registryauth import MIN_TOKEN_SECONDS, TokenAnswer, parse_token_response

    assert parse_token_response(b'{"token":"t","expires_in":300,"refresh_token":"r"}') == TokenAnswer("t", 300, "r")
    # distribution's handler keeps a token at least 60 s, whatever the server says.
    assert parse_token_response(b'{"access_token":"t","expires_in":5}').expires_in == MIN_TOKEN_SECONDS
    assert parse_token_response(b'{"token":"t"}').expires_in == MIN_TOKEN_SECONDS


def test_offline_query_and_oauth_form() -> None:
    from urllib.parse import parse_qs

    from dockyard.model.registryauth import token_form

    c = Challenge("bearer", {"realm": "https://auth/token", "service": "reg"})
    query = parse_qs(token_query(c, [], Credentials("me", "pw"), offline=True))
    assert query == {"service": ["reg"], "account": ["me"], "offline_token": ["true"], "client_id": ["docker"]}
    form = parse_qs(token_form(c, ["repository:a:pull", "repository:b:pull"], "refresh-me").decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-me"]
    assert form["scope"] == ["repository:a:pull repository:b:pull"] and form["service"] == ["reg"]
    assert form["client_id"] == ["docker"]


def test_token_error_wording() -> None:
    from dockyard.model.registryauth import token_error

    # Docker Hub's auth server answers {"details": ...}; distribution reads it as an errcode.
    assert str(token_error(401, b'{"details":"incorrect username or password"}')) == "unauthorized: incorrect username or password"
    assert str(token_error(401, b"<html>")) == "unauthorized: authentication required"
    assert str(token_error(403, b'{"errors":[{"code":"DENIED","message":"no"}]}')) == "denied: no"
