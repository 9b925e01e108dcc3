"""A small token server for docker-registry's `auth: token:` (distribution's token spec):
stdlib http.server on 127.0.0.1 issuing RS256 JWTs signed by a key whose self-signed
certificate is the registry's rootcertbundle (sent in the JWT's x5c header).

Repositories under `public/` may be pulled anonymously; anything else needs a user. A GET
with `offline_token=true` and good credentials also gets a refresh token, which the OAuth2
POST form (grant_type=refresh_token) trades back for access tokens.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.pki import Issued, der, self_signed, sign_rs256

SERVICE = "dockyard-test-registry"
ISSUER = "dockyard-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    method: str
    params: dict[str, list[str]]
    user: str  # "" when anonymous


@dataclass
class TokenServer:
    signer: Issued
    users: dict[str, str]
    server: ThreadingHTTPServer | None = None
    requests: list[TokenRequest] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    spoil: int = 0  # this many next tokens carry no access (the registry then answers 401)

    __test__ = False

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def mint(self, user: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der(self.signer.cert)).decode()]}
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}  # fmt: skip
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{_b64url(sign_rs256(self.signer.key, signing_input.encode()))}"

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, object]]:
        access: list[dict[str, object]] = []
        for scope in scopes:
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind == "repository" and (user or name.startswith("public/")):
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
        return access

    def answer(self, method: str, params: dict[str, list[str]], basic: tuple[str, str] | None) -> tuple[int, dict[str, object]]:
        user = ""
        if method == "POST":
            grant = params.get("grant_type", [""])[0]
            if grant == "refresh_token":
                user = self.refresh_tokens.get(params.get("refresh_token", [""])[0], "")
                if not user:
                    return 401, {"details": "invalid refresh token"}
            elif grant == "password":
                basic = (params.get("username", [""])[0], params.get("password", [""])[0])
            else:
                return 400, {"details": f"unsupported grant_type {grant!r}"}
            scopes = params.get("scope", [])
        else:
            scopes = params.get("scope", [])
        if basic is not None:
            if self.users.get(basic[0]) != basic[1]:
                return 401, {"details": "incorrect username or password"}
            user = basic[0]
        self.requests.append(TokenRequest(method, params, user))
        access = [] if self.spoil > 0 else self.grant(user, scopes)
        self.spoil = max(0, self.spoil - 1)
        token = self.mint(user, access)
        doc: dict[str, object] = {"token": token, "access_token": token, "expires_in": 300,
                                  "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        offline = method == "GET" and params.get("offline_token") == ["true"]
        if user and (offline or method == "POST"):
            refresh = secrets.token_hex(16)
            self.refresh_tokens[refresh] = user
            doc["refresh_token"] = refresh
        return 200, doc

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, doc: dict[str, object]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _basic(self) -> tuple[str, str] | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password

            def do_GET(self) -> None:
                self._reply(*owner.answer("GET", parse_qs(urlsplit(self.path).query), self._basic()))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                self._reply(*owner.answer("POST", form, self._basic()))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_token_server(directory: Path, users: dict[str, str]) -> TokenServer:
    server = TokenServer(self_signed(directory, "token-signer"), dict(users))
    server.start()
    return server
