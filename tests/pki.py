"""A test CA and certificates made with the openssl CLI (the venv has no `cryptography`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Issued:
    cert: Path  # PEM
    key: Path  # PEM, unencrypted


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "dockyard test CA") -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name.replace(' ', '-')}.crt", directory / f"{name.replace(' ', '-')}.key"
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")  # fmt: skip
    return Issued(cert, key)


def issue(ca: Issued, directory: Path, name: str, *, ips: tuple[str, ...] = (), dns: tuple[str, ...] = (),
          client: bool = False) -> Issued:  # fmt: skip
    """A leaf certificate signed by `ca`: a server's (with these SANs) or a client's."""
    directory.mkdir(parents=True, exist_ok=True)
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.cert"
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    ext = directory / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}"]
    sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return Issued(cert, key)


def self_signed(directory: Path, name: str) -> Issued:
    """A key and a self-signed certificate for it (a token signer whose cert is its own root)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={name}")  # fmt: skip
    return Issued(cert, key)


def der(cert: Path) -> bytes:
    return subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True,
                          capture_output=True, timeout=60).stdout  # fmt: skip


def sign_rs256(key: Path, data: bytes) -> bytes:
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=data, check=True,
                          capture_output=True, timeout=60).stdout  # fmt: skip
