"""Registries over verified HTTPS: a test CA in certs.d (`registry-certs-dir`), mutual TLS with
client.cert/client.key, and the x509 error for a CA the daemon does not know.

dockerd counts loopback registries insecure (TLS unverified), so this registry listens in a
network namespace of the test's own, at an address that is not loopback (allowed past the
offline guard with DOCKYARD_OFFLINE_ALLOW)."""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pki import issue, make_ca
from tests.registry import (
    Netns,
    TestRegistry,
    TlsServing,
    free_port,
    layer_tar,
    make_netns,
    new_registry_base,
    start_custom_registry,
)


@pytest.fixture(scope="module")
def tls_registry() -> Iterator[tuple[TestRegistry, Netns, Path]]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    net = make_netns()
    base = new_registry_base()
    try:
        ca = make_ca(base / "pki")
        server = issue(ca, base / "pki", "registry", ips=(net.ns_ip,))
        client = issue(ca, base / "pki", "client", client=True)
        trust = ssl.create_default_context(cafile=str(ca.cert))
        trust.load_cert_chain(str(client.cert), str(client.key))
        reg = TestRegistry(base, 5000, addr=net.ns_ip, netns=net.name,
                           tls=TlsServing(server.cert, server.key, client_ca=ca.cert, trust=trust))  # fmt: skip
        start_custom_registry(reg)
        try:
            yield reg, net, base / "pki"
        finally:
            reg.stop()
    finally:
        net.delete()
        shutil.rmtree(base, ignore_errors=True)


def test_pull_over_https_with_a_test_ca_and_client_certificate(daemon_factory, tls_registry) -> None:  # type: ignore[no-untyped-def]
    reg, net, pki = tls_registry
    pushed = reg.push_image("tls/app", "1", [layer_tar({"t": b"over tls\n"})])
    name = f"{reg.host}/tls/app:1"
    d = daemon_factory({"registry-certs-dir": str(pki / "certs.d")}, env={"DOCKYARD_OFFLINE_ALLOW": f"{net.ns_ip}/32"})
    host_dir = pki / "certs.d" / reg.host
    host_dir.mkdir(parents=True)

    # No CA for it yet: the server's certificate does not verify.
    unknown = d.docker("pull", name, check=False)
    assert unknown.returncode == 1
    assert "x509: certificate signed by unknown authority" in unknown.stderr.decode()
    assert f'"https://{reg.host}/v2/"' in unknown.stderr.decode()

    # The CA, but no client certificate: the registry refuses the handshake.
    shutil.copy(pki / "dockyard-test-CA.crt", host_dir / "ca.crt")
    no_client = d.docker("pull", name, check=False)
    assert no_client.returncode == 1
    assert "remote error: tls: bad certificate" in no_client.stderr.decode()

    # A key without its certificate is dockerd's error.
    shutil.copy(pki / "client.key", host_dir / "client.key")
    half = d.docker("pull", name, check=False)
    assert half.returncode == 1 and "missing client certificate client.cert for key client.key" in half.stderr.decode()

    # Both: pulled over verified TLS, read from certs.d without a restart.
    shutil.copy(pki / "client.cert", host_dir / "client.cert")
    out = d.out("pull", name)
    assert f"Digest: {pushed.digest}" in out
    info = json.loads(d.out("image", "inspect", name))[0]
    assert info["Id"] == pushed.config_digest
    assert info["RepoDigests"] == [f"{reg.host}/tls/app@{pushed.digest}"]
    assert d.out("images", "-q", "--no-trunc") == pushed.config_digest


def test_loopback_registry_over_unverified_https(daemon_factory, tls_registry) -> None:  # type: ignore[no-untyped-def]
    """Loopback is insecure (as dockerd): HTTPS is tried first, its certificate not verified,
    so a TLS registry on 127.0.0.1 pulls with no CA anywhere (plain HTTP to it could not)."""
    _, _, pki = tls_registry
    base = new_registry_base()
    ca = make_ca(base / "pki", "another CA")
    server = issue(ca, base / "pki", "local", ips=("127.0.0.1",))
    reg = TestRegistry(base, free_port(), tls=TlsServing(server.cert, server.key, trust=ssl.create_default_context(cafile=str(ca.cert))))
    start_custom_registry(reg)
    try:
        pushed = reg.push_image("tls/local", "1", [layer_tar({"l": b"l\n"})])
        d = daemon_factory({"registry-certs-dir": str(pki / "empty")})
        assert f"Digest: {pushed.digest}" in d.out("pull", f"{reg.host}/tls/local:1")
    finally:
        reg.stop()


def test_plain_http_registry_past_loopback(daemon_factory, tls_registry) -> None:  # type: ignore[no-untyped-def]
    """Not loopback, not listed: HTTPS only, and a plain-HTTP registry is Go's error. Listed in
    insecure-registries (by CIDR): HTTPS is tried, then HTTP, which answers."""
    _, net, _ = tls_registry
    base = new_registry_base()
    reg = TestRegistry(base, 5001, addr=net.ns_ip, netns=net.name)
    start_custom_registry(reg)
    try:
        pushed = reg.push_image("plain/app", "1", [layer_tar({"p": b"plain\n"})])
        name = f"{reg.host}/plain/app:1"
        allow = {"DOCKYARD_OFFLINE_ALLOW": f"{net.ns_ip}/32"}
        secure = daemon_factory(env=allow)
        refused = secure.docker("pull", name, check=False)
        assert refused.returncode == 1
        assert "http: server gave HTTP response to HTTPS client" in refused.stderr.decode()
        insecure = daemon_factory({"insecure-registries": [f"{net.ns_ip}/30"]}, env=allow)
        assert f"Digest: {pushed.digest}" in insecure.out("pull", name)
    finally:
        reg.stop()
