"""distribution/auth.py against a tiny token server on loopback: tokens cached per scope until
they expire, fetched again after forget(), credentials sent as Basic, refusals in dockerd's words."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from dockyard.distribution.auth import Authenticator, AuthRefused
from dockyard.model.registryauth import Credentials


class _Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (request line, Authorization)
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line = head.split("\r\n")[0]
        auth = next((h.split(": ", 1)[1] for h in head.split("\r\n") if h.lower().startswith("authorization:")), "")
        self.requests.append((line, auth))
        if auth == "Basic " + base64.b64encode(b"me:wrong").decode():
            status, body = "401 Unauthorized", json.dumps({"details": "incorrect username or password"})
        else:
            status, body = "200 OK", json.dumps({"token": f"t{len(self.requests)}", "expires_in": 120})
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode())
        await writer.drain()
        writer.close()


def _run(creds: Credentials, steps):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        srv = _Server()
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        srv.port = server.sockets[0].getsockname()[1]
        now = [1000.0]
        auth = Authenticator(creds, lambda url: None, clock=lambda: now[0])
        auth.learn([f'Bearer realm="http://127.0.0.1:{srv.port}/token",service="reg"'])
        try:
            return await steps(auth, now, srv)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def test_cached_per_scope_until_expiry() -> None:
    async def steps(auth: Authenticator, now: list[float], srv: _Server) -> None:
        a = await auth.authorization(["repository:a:pull"])
        assert a == "Bearer t1"
        assert await auth.authorization(["repository:a:pull"]) == "Bearer t1"  # cached
        assert await auth.authorization(["repository:b:pull"]) == "Bearer t2"  # another scope
        now[0] += 100  # within 120 s less the early margin
        assert await auth.authorization(["repository:a:pull"]) == "Bearer t1"
        now[0] += 20
        assert await auth.authorization(["repository:a:pull"]) == "Bearer t3"  # expired: fetched again
        auth.forget(["repository:a:pull"])
        assert await auth.authorization(["repository:a:pull"]) == "Bearer t4"
        assert auth.fetches == 4
        assert "scope=repository%3Aa%3Apull" in srv.requests[0][0] and "service=reg" in srv.requests[0][0]
        assert srv.requests[0][1] == ""  # anonymous

    _run(Credentials(), steps)


def test_credentials_go_as_basic_and_refusal_is_worded() -> None:
    async def steps(auth: Authenticator, now: list[float], srv: _Server) -> None:
        with pytest.raises(AuthRefused) as refused:
            await auth.authorization(["repository:a:pull"])
        assert str(refused.value.error) == "unauthorized: incorrect username or password"
        assert refused.value.status == 401
        assert srv.requests[0][1] == "Basic " + base64.b64encode(b"me:wrong").decode()
        assert "account=me" in srv.requests[0][0]

    _run(Credentials("me", "wrong"), steps)
