"""The TCP + mutual-TLS listener: the connection layer behind asyncio's TLS transport.

Certificates are made with the openssl CLI in tmp_path; the server listens on 127.0.0.1
on a free port. A client with a certificate from the CA is served (a plain answer, a
chunked stream, a hijacked stream); one without a certificate is refused in the handshake.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.api.listeners import ApiServer
from dockyard.api.messages import (
    BytesResponse,
    HijackResponse,
    RawStream,
    Request,
    Response,
    StreamResponse,
)
from dockyard.api.router import Route, Router
from dockyard.config import TlsOptions

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=test CA", cwd=d)  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}-key.pem", "-out", f"{who}.csr",
                 "-subj", f"/CN={who}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-out", f"{who}.pem", "-days", "1", "-extfile", f"{who}.ext", cwd=d)  # fmt: skip
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _ping(request: Request) -> Response:
    return BytesResponse(b"OK")


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for word in (b"one\n", b"two\n"):
            yield word

    return StreamResponse(chunks())


async def _attach(request: Request) -> Response:
    async def session(stream: RawStream) -> None:
        data = await stream.read()
        await stream.write(data.upper())

    return HijackResponse("application/vnd.docker.raw-stream", session)


def _client_context(certs: Path, *, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if with_cert:
        ctx.load_cert_chain(certs / "client.pem", certs / "client-key.pem")
    return ctx


def _run(certs: Path, scenario: object) -> None:
    async def main() -> None:
        port = _free_port()
        tls = TlsOptions(verify=True, ca_cert=certs / "ca.pem", cert=certs / "server.pem", key=certs / "server-key.pem")
        router = Router([Route("GET", "/_ping", _ping), Route("GET", "/stream", _stream), Route("POST", "/attach", _attach)])
        async with ApiServer(router, "test", tls) as api:
            await api.listen((f"tcp://127.0.0.1:{port}",))
            await asyncio.wait_for(scenario(port), 10)  # type: ignore[operator]

    asyncio.run(main())


async def _request(port: int, ctx: ssl.SSLContext, raw: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(raw)
    await writer.drain()
    return reader, writer


def test_a_client_with_a_certificate_is_served_plain_answers_and_streams(certs: Path) -> None:
    async def scenario(port: int) -> None:
        reader, writer = await _request(port, _client_context(certs, with_cert=True),
                                        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n" * 2)  # fmt: skip
        for _ in range(2):  # keep-alive, pipelined
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 2\r\n" in head
            assert await reader.readexactly(2) == b"OK"
        writer.write(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in head
        assert await reader.readuntil(b"0\r\n\r\n") == b"4\r\none\n\r\n4\r\ntwo\n\r\n0\r\n\r\n"
        writer.close()

    _run(certs, scenario)


def test_a_hijacked_stream_over_tls(certs: Path) -> None:
    async def scenario(port: int) -> None:
        reader, writer = await _request(
            port, _client_context(certs, with_cert=True),
            b"POST /attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello",
        )  # fmt: skip
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
        assert await reader.read() == b"HELLO"  # then the server ends the stream
        writer.close()

    _run(certs, scenario)


def test_a_client_without_a_certificate_is_refused(certs: Path) -> None:
    async def scenario(port: int) -> None:
        try:
            reader, _ = await _request(port, _client_context(certs, with_cert=False),
                                            b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # fmt: skip
            await reader.readuntil(b"\r\n\r\n")  # TLS 1.3: the refusal comes with the first read
        except asyncio.IncompleteReadError as exc:
            assert exc.partial == b""  # not a byte of an answer
        except (ssl.SSLError, ConnectionError):
            pass
        else:
            pytest.fail("a client without a certificate was answered")

    _run(certs, scenario)
