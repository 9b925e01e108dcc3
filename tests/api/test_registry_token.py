"""Token auth: docker-registry with `auth: token:` and the tests' token server (tests/tokenserver.py).
The Bearer challenge, anonymous and with credentials, tokens cached per scope and fetched again
when the registry refuses one, and `docker login` as dockerd answers it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import Daemon
from tests.registry import (
    TestRegistry,
    TokenAuth,
    free_port,
    layer_tar,
    new_registry_base,
    start_custom_registry,
)
from tests.tokenserver import ISSUER, SERVICE, TokenServer, start_token_server


@pytest.fixture(scope="module")
def token_registry() -> Iterator[tuple[TestRegistry, TokenServer]]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    base = new_registry_base()
    tokens = start_token_server(base / "signer", {"tok-user": "tok-pass"})
    try:
        def seed(repo: str) -> str:
            return tokens.mint("seeder", [{"type": "repository", "name": repo, "actions": ["pull", "push"]}])

        reg = TestRegistry(base, free_port(), token=TokenAuth(tokens.realm, SERVICE, ISSUER, tokens.signer.cert, seed))
        start_custom_registry(reg)
        try:
            yield reg, tokens
        finally:
            reg.stop()
    finally:
        tokens.stop()
        shutil.rmtree(base, ignore_errors=True)


def _scope_requests(tokens: TokenServer, repo: str) -> list[str]:
    return [r.user for r in tokens.requests if r.params.get("scope") == [f"repository:{repo}:pull"]]


def test_anonymous_pull_fetches_one_token(daemon: Daemon, token_registry) -> None:  # type: ignore[no-untyped-def]
    reg, tokens = token_registry
    pushed = reg.push_image("public/app", "1", [layer_tar({f"f{i}": b"x" * i}) for i in range(4)])
    name = f"{reg.host}/public/app:1"
    out = daemon.out("pull", name)
    assert f"Digest: {pushed.digest}" in out
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", name) == pushed.config_digest
    # The manifest, the config and four layers (three at once): one token, anonymous, for all.
    assert _scope_requests(tokens, "public/app") == [""]
    daemon.docker("rmi", name)


def test_refused_token_is_fetched_again(daemon: Daemon, token_registry) -> None:  # type: ignore[no-untyped-def]
    reg, tokens = token_registry
    pushed = reg.push_image("public/again", "1", [layer_tar({"a": b"again"})])
    tokens.spoil = 1  # the next token grants nothing: the registry answers 401 to it
    assert f"Digest: {pushed.digest}" in daemon.out("pull", f"{reg.host}/public/again:1")
    assert _scope_requests(tokens, "public/again") == ["", ""]
    daemon.docker("rmi", f"{reg.host}/public/again:1")


def test_private_repository_needs_credentials(daemon: Daemon, token_registry) -> None:  # type: ignore[no-untyped-def]
    reg, tokens = token_registry
    pushed = reg.push_image("private/app", "1", [layer_tar({"p": b"private\n"})])
    name = f"{reg.host}/private/app:1"
    api = daemon.client().api
    import docker.errors

    with pytest.raises(docker.errors.APIError) as denied:
        api.pull(f"{reg.host}/private/app", tag="1")
    assert denied.value.status_code == 401
    assert "authentication required" in str(denied.value)
    # Refused once, asked again once, then given up.
    assert _scope_requests(tokens, "private/app") == ["", ""]
    # Credentials go to the token server as Basic.
    image = daemon.client().images.pull(f"{reg.host}/private/app", tag="1",
                                        auth_config={"username": "tok-user", "password": "tok-pass"})  # fmt: skip
    assert image.id == pushed.config_digest
    assert _scope_requests(tokens, "private/app")[-1] == "tok-user"
    daemon.docker("rmi", name)
    bad = daemon.client().api
    with pytest.raises(docker.errors.APIError) as wrong:
        bad.pull(f"{reg.host}/private/app", tag="1", auth_config={"username": "tok-user", "password": "nope"})
    assert wrong.value.status_code == 401
    assert "incorrect username or password" in str(wrong.value)


def test_login_against_a_token_registry(daemon_factory, token_registry) -> None:  # type: ignore[no-untyped-def]
    reg, tokens = token_registry
    pushed = reg.push_image("private/login", "1", [layer_tar({"l": b"logged in\n"})])
    d = daemon_factory()
    wrong = d.docker("login", "-u", "tok-user", "--password-stdin", reg.host, input=b"nope\n", check=False)
    assert wrong.returncode == 1
    assert (f'Error response from daemon: Get "http://{reg.host}/v2/": unauthorized: incorrect username or password'
            in wrong.stderr.decode())  # fmt: skip
    import docker.errors

    with pytest.raises(docker.errors.APIError) as refused:
        d.client().login("tok-user", "nope", registry=reg.host)
    assert refused.value.status_code == 401
    answer = d.client().api.login("tok-user", "tok-pass", registry=reg.host, reauth=True)
    assert answer["Status"] == "Login Succeeded" and answer["IdentityToken"] in tokens.refresh_tokens
    ok = d.docker("login", "-u", "tok-user", "--password-stdin", reg.host, input=b"tok-pass\n")
    assert "Login Succeeded" in ok.stdout.decode()
    # The token server gave a refresh token: the CLI keeps it instead of the password ...
    stored = json.loads((d.base / "docker-config" / "config.json").read_text())["auths"][reg.host]
    assert stored.get("identitytoken") in tokens.refresh_tokens
    # ... and a pull trades it back for an access token with the OAuth2 POST form.
    before = len(tokens.requests)
    assert f"Digest: {pushed.digest}" in d.out("pull", f"{reg.host}/private/login:1")
    posts = [r for r in tokens.requests[before:] if r.method == "POST"]
    assert posts and posts[0].params["grant_type"] == ["refresh_token"] and posts[0].user == "tok-user"
    assert posts[0].params["scope"] == ["repository:private/login:pull"]
