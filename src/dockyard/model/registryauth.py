"""Registry credentials and challenges: the X-Registry-Auth header clients send, the
WWW-Authenticate challenges registries answer with, and the token server's answer."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from dockyard.errors import InvalidArgument


@dataclass(frozen=True)
class Credentials:
    """An AuthConfig as the CLI sends it (X-Registry-Auth, POST /auth)."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""  # an OAuth refresh token from an earlier login
    registry_token: str = ""  # a bearer token to send as is

    @property
    def has_basic(self) -> bool:
        return bool(self.username or self.password)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def _b64decode(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        # Either alphabet: the CLI sends base64url, some clients standard base64.
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from exc


def credentials_from_doc(doc: object) -> Credentials:
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")

    def text(*keys: str) -> str:
        for key in keys:
            value = doc.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    username, password = text("username", "Username"), text("password", "Password")
    packed = text("auth", "Auth")
    if packed and not (username or password):
        try:
            user, _, pw = base64.b64decode(packed + "=" * (-len(packed) % 4)).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument(f"invalid auth configuration: {exc}") from exc
        username, password = user, pw
    return Credentials(
        username=username,
        password=password,
        server_address=text("serveraddress", "ServerAddress"),
        identity_token=text("identitytoken", "IdentityToken"),
        registry_token=text("registrytoken", "RegistryToken"),
    )


def decode_registry_auth(header: str) -> Credentials:
    """X-Registry-Auth: base64url(JSON AuthConfig); empty or `e30=` ({}) is anonymous."""
    if not header.strip():
        return Credentials()
    raw = _b64decode(header)
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from exc
    return credentials_from_doc(doc)


def decode_registry_config(header: str) -> dict[str, Credentials]:
    """X-Registry-Config (build): base64url(JSON map of registry -> AuthConfig)."""
    if not header.strip():
        return {}
    raw = _b64decode(header)
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidArgument(f"invalid X-Registry-Config header: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Config header: not a JSON object")
    return {str(registry): credentials_from_doc(config) for registry, config in doc.items()}


def credentials_for(configs: Mapping[str, Credentials], domain: str) -> Credentials:
    """The credentials a build uses for `domain` (the CLI keys Docker Hub by its index URL)."""
    hub = domain in ("docker.io", "index.docker.io", "registry-1.docker.io")
    for key, creds in configs.items():
        host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if host == domain or (hub and host in ("index.docker.io", "docker.io", "registry-1.docker.io")):
            return creds
    return Credentials()


def basic_authorization(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(,|$)')
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Each WWW-Authenticate header's challenges: `Bearer realm="…",service="…",scope="…"`."""
    out: list[Challenge] = []
    for header in headers:
        pos = 0
        while pos < len(header):
            scheme = _SCHEME.match(header, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            while pos < len(header):
                param = _PARAM.match(header, pos)
                if param is None:
                    break
                value = param.group(2)
                value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
                params[param.group(1).lower()] = value
                pos = param.end()
            out.append(Challenge(scheme.group(1).lower(), params))
            while pos < len(header) and header[pos] in ", ":
                pos += 1
    return out


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def token_query(challenge: Challenge, scopes: list[str], creds: Credentials) -> str:
    """The token request's query string (distribution's token spec)."""
    pairs: list[tuple[str, str]] = []
    if challenge.params.get("service"):
        pairs.append(("service", challenge.params["service"]))
    for scope in scopes:
        pairs.append(("scope", scope))
    if creds.username:
        pairs.append(("account", creds.username))
    return urlencode(pairs)


def parse_token_answer(raw: bytes) -> str:
    """A token server's JSON answer: `token`, or OAuth's `access_token`."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid token answer: {exc}") from exc
    if isinstance(doc, dict):
        for key in ("token", "access_token"):
            value = doc.get(key)
            if isinstance(value, str) and value:
                return value
    raise InvalidArgument("authorization server did not include a token in the response")


@dataclass(frozen=True)
class RegistryError:
    """One entry of a registry's `{"errors": [...]}` body."""

    code: str  # "MANIFEST_UNKNOWN"
    message: str

    def __str__(self) -> str:
        # As distribution's errcode: the code in lower case with spaces, then the message.
        return f"{self.code.lower().replace('_', ' ')}: {self.message}"


def parse_registry_errors(raw: bytes) -> list[RegistryError]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
        return []
    return [
        RegistryError(str(e.get("code") or "UNKNOWN"), str(e.get("message") or ""))
        for e in doc["errors"]
        if isinstance(e, dict)
    ]
