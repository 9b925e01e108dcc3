"""distribution/tls.py: a certs.d directory read as dockerd reads it."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest

from dockyard.distribution.tls import TlsContexts
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")


def test_ca_and_client_pair_are_loaded(tmp_path: Path) -> None:
    from tests.pki import issue, make_ca

    ca = make_ca(tmp_path / "pki")
    client = issue(ca, tmp_path / "pki", "client", client=True)
    host = tmp_path / "certs.d" / "reg.example:5000"
    host.mkdir(parents=True)
    shutil.copy(ca.cert, host / "ca.crt")
    shutil.copy(client.cert, host / "client.cert")
    shutil.copy(client.key, host / "client.key")
    ctx = TlsContexts(tmp_path / "certs.d").context("reg.example:5000", True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    subjects = [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()]
    assert {"commonName": "dockyard test CA"} in subjects
    # Another host gets the system roots only.
    other = TlsContexts(tmp_path / "certs.d").context("other.example", True)
    assert {"commonName": "dockyard test CA"} not in [dict(x[0] for x in c["subject"]) for c in other.get_ca_certs()]


def test_half_pairs_are_dockerds_errors(tmp_path: Path) -> None:
    from tests.pki import issue, make_ca

    ca = make_ca(tmp_path / "pki")
    client = issue(ca, tmp_path / "pki", "client", client=True)
    host = tmp_path / "certs.d" / "a:1"
    host.mkdir(parents=True)
    shutil.copy(client.key, host / "client.key")
    with pytest.raises(InvalidArgument, match="missing client certificate client.cert for key client.key"):
        TlsContexts(tmp_path / "certs.d").context("a:1", True)
    (host / "client.key").unlink()
    shutil.copy(client.cert, host / "client.cert")
    with pytest.raises(InvalidArgument, match="missing key client.key for client certificate client.cert"):
        TlsContexts(tmp_path / "certs.d").context("a:1", True)


def test_unverified_context_and_no_escape(tmp_path: Path) -> None:
    contexts = TlsContexts(tmp_path / "missing")
    loose = contexts.context("127.0.0.1:5000", False)
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    # A host that names a path cannot read outside certs.d; a missing dir is no error.
    assert contexts.context("../../etc", True).verify_mode == ssl.CERT_REQUIRED
