"""Which endpoints a registry is reached at, and how: dockerd's choice (moby registry/service.go
lookupV2Endpoints, config.go isSecureIndex/ValidateMirror), kept pure.

- docker.io: each `registry-mirrors` entry in order (its own scheme; TLS verified unless the
  mirror's host is insecure), then registry-1.docker.io over verified HTTPS.
- any other registry: HTTPS; for an insecure one (loopback, or named or covered by
  `insecure-registries`) HTTPS without verification first, then plain HTTP.

And the offline guard: with DOCKYARD_OFFLINE set, only loopback (and explicitly allowed
networks) may be connected to, decided before any name is resolved.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from dockyard.errors import InvalidArgument

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
# dockerd always counts these as insecure (loadInsecureRegistries).
_LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Endpoint:
    """One place to send /v2/ requests to."""

    scheme: str  # "https" or "http"
    host: str  # the URL's authority: name or [v6] address, with the port if any
    verify: bool  # verify the server's certificate (https only)
    mirror: bool = False
    path: str = ""  # a mirror's path prefix, without the trailing "/"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    def __str__(self) -> str:
        return self.base


def split_host(authority: str) -> tuple[str, int | None]:
    """`host:port` / `[v6]:port` / `host` -> (host without brackets, port)."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif authority.count(":") == 1:
        host, _, port = authority.partition(":")
    else:
        host, port = authority, ""
    return host, int(port) if port.isdigit() else None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host == "localhost":  # what dockerd's lookup of it gives
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def validate_mirror(text: str) -> str:
    """A registry-mirrors entry, as dockerd's ValidateMirror checks it (and with one "/" at the end)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(f"invalid mirror: unsupported scheme {parts.scheme!r} in {text!r}")
    if parts.query or parts.fragment:
        raise InvalidArgument(f"invalid mirror: query or fragment at end of the URI {text!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(f"invalid mirror: username/password not allowed in URI {text!r}")
    if not parts.netloc:
        raise InvalidArgument(f"invalid mirror: {text!r} is not a valid URI")
    return text.rstrip("/") + "/"


@dataclass(frozen=True)
class RegistrySettings:
    """daemon.json's insecure-registries and registry-mirrors, checked."""

    insecure_cidrs: tuple[IpNetwork, ...] = ()
    insecure_names: tuple[str, ...] = ()  # index names (host[:port]) as written
    mirrors: tuple[str, ...] = ()  # validated, each ending in "/"

    @classmethod
    def build(cls, insecure: Iterable[str] = (), mirrors: Iterable[str] = ()) -> RegistrySettings:
        cidrs: list[IpNetwork] = []
        names: list[str] = []
        for entry in insecure:
            if "/" in entry and "://" not in entry:
                try:
                    cidrs.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
            # dockerd strips a scheme the user put in (with a warning); a name keeps its port.
            names.append(entry.split("://", 1)[-1].rstrip("/"))
        return cls(tuple(cidrs), tuple(names), tuple(validate_mirror(m) for m in mirrors))

    def is_insecure(self, authority: str) -> bool:
        """Plain HTTP or unverified TLS: loopback, a listed index name, or an address in a listed CIDR.
        Unlike dockerd we do not resolve other names to test them against the CIDRs."""
        if authority in self.insecure_names:
            return True
        addr = _address(split_host(authority)[0])
        if addr is None:
            return False
        return any(addr in net for net in (*_LOOPBACK_NETS, *self.insecure_cidrs))

    def endpoints(self, domain: str) -> list[Endpoint]:
        """Where to try `domain`'s repositories, in order."""
        if domain == DOCKER_HUB:
            out = []
            for mirror in self.mirrors:
                parts = urlsplit(mirror)
                # The mirror's own scheme; its TLS verified unless its host is insecure (dockerd's newTLSConfig).
                verify = not self.is_insecure(parts.netloc)
                out.append(Endpoint(parts.scheme, parts.netloc, verify, mirror=True, path=parts.path.rstrip("/")))
            return [*out, Endpoint("https", DOCKER_HUB_HOST, True)]
        if not self.is_insecure(domain):
            return [Endpoint("https", domain, True)]
        return [Endpoint("https", domain, False), Endpoint("http", domain, False)]


@dataclass(frozen=True)
class OfflinePolicy:
    """DOCKYARD_OFFLINE=1: connect to loopback only (tests set it so none can reach the internet).
    DOCKYARD_OFFLINE_ALLOW=CIDR,...: networks allowed besides (a test registry in a netns)."""

    enabled: bool = False
    allowed: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OfflinePolicy:
        flag = env.get("DOCKYARD_OFFLINE", "").strip().lower()
        if flag in ("", "0", "false", "no"):
            return cls()
        allowed = []
        for entry in env.get("DOCKYARD_OFFLINE_ALLOW", "").split(","):
            if entry.strip():
                try:
                    allowed.append(ipaddress.ip_network(entry.strip(), strict=False))
                except ValueError as exc:
                    raise InvalidArgument(f"invalid DOCKYARD_OFFLINE_ALLOW entry {entry!r}: {exc}") from exc
        return cls(True, tuple(allowed))

    def refusal(self, host: str) -> str | None:
        """Why `host` (a name or an address, no brackets) may not be reached, or None if it may.
        A name other than localhost is refused without resolving it: a lookup already leaks."""
        if not self.enabled:
            return None
        addr = _address(host)
        if addr is not None and any(addr in net for net in (*_LOOPBACK_NETS, *self.allowed)):
            return None
        return f"dial tcp {host}: refused: DOCKYARD_OFFLINE is set, only loopback registries may be reached"
