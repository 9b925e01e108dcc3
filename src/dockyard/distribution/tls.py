"""TLS contexts for registries, from a certs.d directory laid out as dockerd's
(moby registry ReadCertsDirectory): `<certs-dir>/<host:port>/` holds `*.crt` (CA roots, added to
the system's), and `<name>.cert` + `<name>.key` pairs (client certificates, for mutual TLS).

As dockerd, the directory is read only for registries reached with verification; an insecure
registry's TLS is not verified and presents no client certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from dockyard.errors import InvalidArgument

DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")


class TlsContexts:
    """A verified host's context is built from its directory each time it is asked for (once per
    pull or login), as dockerd reads certs.d: a CA added there needs no restart."""

    def __init__(self, certs_dir: Path = DEFAULT_CERTS_DIR) -> None:
        self._certs_dir = certs_dir
        self._unverified: ssl.SSLContext | None = None

    def context(self, authority: str, verify: bool) -> ssl.SSLContext:
        if verify:
            return self._build(authority)
        if self._unverified is None:
            self._unverified = _unverified()
        return self._unverified

    def _build(self, authority: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        # dockerd's cleanPath: the host dir is the index name, never a path out of certs.d.
        name = authority.replace("/", "").replace("..", "")
        host_dir = self._certs_dir / name
        try:
            entries = sorted(host_dir.iterdir()) if name else []
        except (FileNotFoundError, NotADirectoryError):
            entries = []
        except OSError as exc:
            raise InvalidArgument(f"reading certificates of {authority}: {exc}") from exc
        try:
            for entry in entries:
                if entry.suffix == ".crt":
                    ctx.load_verify_locations(cafile=str(entry))
                elif entry.suffix == ".cert":
                    key = entry.with_suffix(".key")
                    if not key.exists():
                        raise InvalidArgument(
                            f"missing key {key.name} for client certificate {entry.name}. "
                            "CA certificates must use the extension .crt"
                        )
                    ctx.load_cert_chain(str(entry), str(key))
                elif entry.suffix == ".key" and not entry.with_suffix(".cert").exists():
                    raise InvalidArgument(f"missing client certificate {entry.with_suffix('.cert').name} for key {entry.name}")
        except (ssl.SSLError, OSError) as exc:
            raise InvalidArgument(f"loading certificates of {authority} from {host_dir}: {exc}") from exc
        return ctx


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
