"""Authorization for one registry session (a pull, a push or a login): the Basic and Bearer
challenges a registry answers /v2/ with, and bearer tokens fetched from its token server.

Tokens are kept per scope set until they expire (distribution's token handler: at least 60 s)
or the registry refuses one (a 401 drops it, the request is retried once with a new one).
With credentials, the token server gets them as Basic; an identity token (an OAuth refresh
token from an earlier login) is traded with the OAuth2 POST form instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.distribution.http import Url, parse_url, request
from dockyard.errors import Internal
from dockyard.model.registryauth import (
    Challenge,
    Credentials,
    RegistryError,
    basic_authorization,
    parse_challenges,
    parse_token_response,
    token_error,
    token_form,
    token_query,
)

log = logging.getLogger(__name__)

_MAX_TOKEN_BODY = 1 << 20
_EARLY = 5.0  # seconds before its end a token is renewed, so none expires in flight


class AuthRefused(Internal):
    """The token server refused: `error` is what it said (distribution's errcode)."""

    def __init__(self, url: Url, status: int, error: RegistryError) -> None:
        super().__init__(f'Get "{url}": {error}')
        self.url = url
        self.status = status
        self.error = error


@dataclass(frozen=True)
class _Held:
    token: str
    until: float  # monotonic


TlsFor = Callable[[Url], "ssl.SSLContext | None"]


class Authenticator:
    def __init__(self, creds: Credentials, tls_for: TlsFor, clock: Callable[[], float] = time.monotonic) -> None:
        self._creds = creds
        self._tls_for = tls_for
        self._clock = clock
        self._challenges: list[Challenge] = []
        self._tokens: dict[str, _Held] = {}
        self._lock = asyncio.Lock()
        self.refresh_token = ""  # a login's, to hand back as the IdentityToken
        self.fetches = 0  # token requests made (for logs and tests of the cache)

    def learn(self, www_authenticate: list[str]) -> None:
        """The challenges of a 401 answer (replacing earlier ones)."""
        found = parse_challenges(www_authenticate)
        if found:
            self._challenges = found

    @property
    def bearer(self) -> bool:
        return any(c.scheme == "bearer" and c.realm for c in self._challenges)

    def forget(self, scopes: list[str]) -> None:
        self._tokens.pop(" ".join(scopes), None)

    async def authorization(self, scopes: list[str], *, offline: bool = False) -> str:
        """The Authorization header value for a request needing `scopes` ("" for none)."""
        if self._creds.registry_token:
            return "Bearer " + self._creds.registry_token
        for challenge in self._challenges:
            if challenge.scheme == "bearer" and challenge.realm:
                return "Bearer " + await self._token(challenge, scopes, offline)
            if challenge.scheme == "basic" and self._creds.has_basic:
                return basic_authorization(self._creds)
        return ""

    async def _token(self, challenge: Challenge, scopes: list[str], offline: bool) -> str:
        key = " ".join(scopes)
        async with self._lock:  # parallel layer downloads share one fetch
            held = self._tokens.get(key)
            if held is not None and self._clock() < held.until:
                return held.token
            realm = parse_url(challenge.realm)
            if self._creds.identity_token:
                url = realm
                body = token_form(challenge, scopes, self._creds.identity_token)
                response = await request("POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, body,
                                         tls=self._tls_for(url))  # fmt: skip
            else:
                query = token_query(challenge, scopes, self._creds, offline=offline)
                sep = "&" if "?" in realm.target else "?"
                url = Url(realm.scheme, realm.host, realm.port, realm.target + (sep + query if query else ""))
                headers = {"Authorization": basic_authorization(self._creds)} if self._creds.has_basic else {}
                response = await request("GET", url, headers, tls=self._tls_for(url))
            self.fetches += 1
            raw = await response.read(_MAX_TOKEN_BODY)
            if response.status != 200:
                raise AuthRefused(url, response.status, token_error(response.status, raw))
            answer = parse_token_response(raw)
            if answer.refresh_token:
                self.refresh_token = answer.refresh_token
            self._tokens[key] = _Held(answer.token, self._clock() + answer.expires_in - _EARLY)
            log.debug("token for %r from %s, %d s", key, realm, answer.expires_in)
            return answer.token
