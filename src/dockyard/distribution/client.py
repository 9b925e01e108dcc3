"""The Registry HTTP API v2 (OCI distribution spec) client: ping, the Basic and Bearer token
challenges, manifests by tag or digest, blobs streamed to a file and verified on the way."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import ssl
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.distribution.http import Response, TransportError, Url, parse_url, request
from dockyard.errors import Internal, InvalidArgument
from dockyard.model.manifests import ACCEPT, MAX_MANIFEST_BYTES, Descriptor
from dockyard.model.registryauth import (
    Challenge,
    Credentials,
    RegistryError,
    basic_authorization,
    parse_challenges,
    parse_registry_errors,
    parse_token_answer,
    token_query,
)

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
_MAX_REDIRECTS = 10
_MAX_ERROR_BODY = 1 << 16
_MAX_TOKEN_BODY = 1 << 20
_WRITE_BATCH = 1 << 20


class RegistryAnswer(Internal):
    """A registry answered with an error status; `errors` is its JSON error list, if any."""

    def __init__(self, message: str, status: int, errors: Sequence[RegistryError]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = tuple(errors)


class BlobMismatch(InvalidArgument):
    """A blob's bytes do not hash to the digest it was asked by."""


@dataclass(frozen=True)
class Fetched:
    raw: bytes
    content_type: str
    digest: str  # sha256 of raw


def is_insecure(host: str, insecure_registries: Sequence[str]) -> bool:
    """Plain HTTP is allowed for loopback and for the hosts or CIDRs of insecure-registries."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if host in insecure_registries or name in insecure_registries or name == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    if addr.is_loopback:
        return True
    for entry in insecure_registries:
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class Registry:
    """One registry, talked to with one set of credentials (one pull or login)."""

    def __init__(self, domain: str, creds: Credentials, insecure: bool, ca_file: Path | None = None) -> None:
        self.domain = domain
        self._host = DOCKER_HUB_HOST if domain == DOCKER_HUB else domain
        self._creds = creds
        self._insecure = insecure
        self._ca_file = ca_file
        self._base: Url | None = None
        self._challenges: list[Challenge] = []
        self._tokens: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def _tls(self, verify: bool) -> ssl.SSLContext:
        if not verify:
            # No CA bundle to load for a context that verifies nothing: that load is ~20 ms,
            # paid by every pull and push of an insecure registry for its https attempt.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)

    def _endpoints(self) -> list[tuple[Url, ssl.SSLContext | None]]:
        https = parse_url(f"https://{self._host}/v2/")
        if not self._insecure:
            return [(https, self._tls(True))]
        # As dockerd for an insecure registry: TLS without verification first, then plain HTTP.
        return [(https, self._tls(False)), (parse_url(f"http://{self._host}/v2/"), None)]

    @property
    def base(self) -> Url:
        assert self._base is not None, "ping() first"
        return self._base

    async def ping(self) -> Response:
        """GET /v2/ on the first endpoint that answers; learns its auth challenges."""
        async with self._lock:
            last: TransportError | None = None
            for url, tls in self._endpoints():
                try:
                    response = await request("GET", url, {}, tls=tls)
                except TransportError as exc:
                    log.debug("registry %s: %s", url, exc.message)
                    last = exc
                    continue
                await response.close()
                self._base = url
                self._challenges = parse_challenges(response.header_values("www-authenticate")) if response.status == 401 else []
                return response
            assert last is not None
            raise last

    async def _authorization(self, scopes: list[str]) -> str:
        if self._creds.registry_token:
            return "Bearer " + self._creds.registry_token
        for challenge in self._challenges:
            if challenge.scheme == "bearer" and challenge.realm:
                return "Bearer " + await self._token(challenge, scopes)
            if challenge.scheme == "basic" and self._creds.has_basic:
                return basic_authorization(self._creds)
        return ""

    async def _token(self, challenge: Challenge, scopes: list[str]) -> str:
        key = " ".join(scopes)
        if key in self._tokens:
            return self._tokens[key]
        realm = parse_url(challenge.realm)
        query = token_query(challenge, scopes, self._creds)
        url = Url(realm.scheme, realm.host, realm.port, realm.target + ("&" if "?" in realm.target else "?") + query)
        headers = {"Authorization": basic_authorization(self._creds)} if self._creds.has_basic else {}
        response = await request("GET", url, headers, tls=self._tls(not self._insecure))
        body = await response.read(_MAX_TOKEN_BODY)
        if response.status != 200:
            errors = parse_registry_errors(body)
            detail = str(errors[0]) if errors else f"unexpected status {response.status}"
            raise RegistryAnswer(f'Get "{url}": {detail}', response.status, errors or [RegistryError("UNAUTHORIZED", detail)])
        token = parse_token_answer(body)
        self._tokens[key] = token
        return token

    async def get(self, path: str, scopes: list[str], headers: dict[str, str] | None = None) -> Response:
        """GET a path under /v2/ with credentials, following redirects; errors raise RegistryAnswer."""
        if self._base is None:
            await self.ping()
        url = Url(self.base.scheme, self.base.host, self.base.port, "/v2/" + path)
        sent = dict(headers or {})
        auth = await self._authorization(scopes)
        if auth:
            sent["Authorization"] = auth
        for _ in range(_MAX_REDIRECTS):
            tls = self._tls(not self._insecure) if url.scheme == "https" else None
            response = await request("GET", url, sent, tls=tls)
            if response.status in (301, 302, 303, 307, 308) and response.header("location"):
                await response.close()
                target = parse_url(response.header("location"), url)
                if (target.host, target.port) != (url.host, url.port):
                    sent.pop("Authorization", None)  # blob stores sign their own URLs
                url = target
                continue
            if response.status >= 400:
                body = await response.read(_MAX_ERROR_BODY)
                raise RegistryAnswer(_describe(response, body), response.status, parse_registry_errors(body))
            return response
        raise InvalidArgument(f'Get "{url}": stopped after {_MAX_REDIRECTS} redirects')

    async def manifest(self, repository: str, reference: str) -> Fetched:
        response = await self.get(
            f"{repository}/manifests/{reference}", [f"repository:{repository}:pull"], {"Accept": ", ".join(ACCEPT)}
        )
        raw = await response.read(MAX_MANIFEST_BYTES)
        return Fetched(raw, response.header("content-type"), "sha256:" + hashlib.sha256(raw).hexdigest())

    async def tags(self, repository: str) -> list[str]:
        """GET /v2/<name>/tags/list (pull --all-tags), following the Link header's pages."""
        out: list[str] = []
        path = f"{repository}/tags/list"
        for _ in range(1000):
            response = await self.get(path, [f"repository:{repository}:pull"])
            link = response.header("link")
            try:
                doc = json.loads(await response.read(MAX_MANIFEST_BYTES))
            except ValueError as exc:
                raise InvalidArgument(f"invalid tag list of {repository}: {exc}") from exc
            tags = doc.get("tags") if isinstance(doc, dict) else None
            out += [t for t in tags or () if isinstance(t, str)]
            if not link.startswith("</v2/"):
                break
            path = link[5 : link.index(">")]
        return out

    async def blob_bytes(self, repository: str, desc: Descriptor, limit: int) -> bytes:
        """A small blob (an image config), verified."""
        if desc.size > limit:
            raise InvalidArgument(f"blob {desc.digest} is too large: {desc.size} bytes")
        response = await self.get(f"{repository}/blobs/{desc.digest}", [f"repository:{repository}:pull"])
        raw = await response.read(limit)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != desc.digest:
            raise BlobMismatch(f"blob {desc.digest}: content does not match its digest")
        return raw

    async def download(
        self, repository: str, desc: Descriptor, dest: Path, progress: Callable[[int], None],
    ) -> None:
        """Stream a blob into `dest`, hashing as it comes. A `dest` left by an earlier
        interrupted download is resumed with a Range request. On return `dest` holds exactly
        the verified blob; a mismatch removes it and raises BlobMismatch."""
        hasher = hashlib.sha256()
        have = await asyncio.to_thread(_hash_file, dest, hasher) if dest.exists() else 0
        if have > desc.size:
            dest.unlink()
            hasher, have = hashlib.sha256(), 0
        headers = {"Range": f"bytes={have}-"} if 0 < have < desc.size else {}
        if have < desc.size or desc.size == 0:
            response = await self.get(f"{repository}/blobs/{desc.digest}", [f"repository:{repository}:pull"], headers)
            if headers and response.status != 206:
                hasher, have = hashlib.sha256(), 0  # the registry sent it all again
            fd = await asyncio.to_thread(_open_for_write, dest, append=bool(have))
            try:
                pending: list[bytes] = []
                pending_len = 0
                async for chunk in response.chunks():
                    if have + pending_len + len(chunk) > desc.size:
                        raise BlobMismatch(f"blob {desc.digest}: more than the {desc.size} bytes its descriptor says")
                    pending.append(chunk)
                    pending_len += len(chunk)
                    if pending_len >= _WRITE_BATCH:
                        await asyncio.to_thread(_write, fd, hasher, b"".join(pending))
                        have += pending_len
                        pending, pending_len = [], 0
                        progress(have)
                if pending:
                    await asyncio.to_thread(_write, fd, hasher, b"".join(pending))
                    have += pending_len
                    progress(have)
            finally:
                await asyncio.to_thread(fd.close)
        if have != desc.size or "sha256:" + hasher.hexdigest() != desc.digest:
            dest.unlink(missing_ok=True)
            if have < desc.size:
                raise BlobMismatch(f"blob {desc.digest}: {have} of {desc.size} bytes")
            raise BlobMismatch(f"filesystem layer verification failed for digest {desc.digest}")

    # ---- push -------------------------------------------------------------------------

    @property
    def wants_basic_credentials(self) -> bool:
        """The registry asks for Basic auth only, and there are no credentials to give it."""
        schemes = {c.scheme for c in self._challenges}
        return schemes == {"basic"} and not self._creds.has_basic and not self._creds.registry_token

    async def _call(
        self, method: str, url: Url | str, scopes: list[str], headers: dict[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] = b"",
    ) -> Response:
        """One request under /v2/ (a path) or to an upload Location (a URL); >= 400 raises."""
        if self._base is None:
            await self.ping()
        if isinstance(url, str):
            url = Url(self.base.scheme, self.base.host, self.base.port, "/v2/" + url)
        sent = dict(headers or {})
        auth = await self._authorization(scopes)
        if auth and (url.host, url.port) == (self.base.host, self.base.port):
            sent["Authorization"] = auth
        tls = self._tls(not self._insecure) if url.scheme == "https" else None
        response = await request(method, url, sent, body, tls=tls)
        if response.status >= 400:
            raw = await response.read(_MAX_ERROR_BODY)
            errors = parse_registry_errors(raw)
            if not errors and response.status == 401:
                # As distribution's client: a 401 without a body (a HEAD) is "authentication required".
                errors = [RegistryError("UNAUTHORIZED", "authentication required")]
            raise RegistryAnswer(_describe(response, raw) if not errors else str(errors[0]), response.status, errors)
        return response

    async def blob_size(self, repository: str, digest: str) -> int | None:
        """HEAD the blob in the repository: its size, or None when the registry lacks it."""
        try:
            response = await self._call("HEAD", f"{repository}/blobs/{digest}", _push_scopes(repository))
        except RegistryAnswer as exc:
            if exc.status == 404:
                return None
            raise
        await response.close()
        try:
            return int(response.header("content-length"))
        except ValueError:
            return None

    async def mount_blob(self, repository: str, digest: str, source: str) -> Url | None:
        """Ask for a cross-repository mount: None when mounted, else the upload the registry
        opened instead (it may not know the blob in `source`)."""
        response = await self._call(
            "POST", f"{repository}/blobs/uploads/?mount={digest}&from={source}",
            [*_push_scopes(repository), f"repository:{source}:pull"],
        )
        await response.close()
        if response.status == 201:
            return None
        return self._location(response)

    async def start_upload(self, repository: str) -> Url:
        response = await self._call("POST", f"{repository}/blobs/uploads/", _push_scopes(repository))
        await response.close()
        return self._location(response)

    async def upload_whole(self, repository: str, digest: str, raw: bytes) -> None:
        """A small blob in one request: the monolithic POST with ?digest= (an image config)."""
        response = await self._call(
            "POST", f"{repository}/blobs/uploads/?digest={digest}", _push_scopes(repository),
            {"Content-Type": "application/octet-stream"}, raw,
        )
        await response.close()
        if response.status != 201:  # a registry that only opened an upload: finish it
            await self.commit_upload(repository, self._location(response), digest, raw)

    async def upload_chunks(self, repository: str, location: Url, body: AsyncIterable[bytes]) -> Url:
        """PATCH the whole blob as one streamed request; returns where to commit it."""
        response = await self._call(
            "PATCH", location, _push_scopes(repository), {"Content-Type": "application/octet-stream"}, body,
        )
        await response.close()
        return self._location(response) if response.header("location") else location

    async def commit_upload(self, repository: str, location: Url, digest: str, last: bytes = b"") -> None:
        sep = "&" if "?" in location.target else "?"
        url = Url(location.scheme, location.host, location.port, f"{location.target}{sep}digest={digest}")
        response = await self._call(
            "PUT", url, _push_scopes(repository), {"Content-Type": "application/octet-stream"}, last,
        )
        await response.close()

    async def cancel_upload(self, repository: str, location: Url) -> None:
        try:
            response = await self._call("DELETE", location, _push_scopes(repository))
            await response.close()
        except (RegistryAnswer, TransportError) as exc:
            log.debug("cancelling upload %s: %s", location, exc.message)

    async def put_manifest(self, repository: str, tag: str, raw: bytes, media_type: str) -> str:
        """PUT the manifest under `tag`; returns its digest."""
        response = await self._call(
            "PUT", f"{repository}/manifests/{tag}", _push_scopes(repository), {"Content-Type": media_type}, raw,
        )
        await response.close()
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def _location(self, response: Response) -> Url:
        text = response.header("location")
        if not text:
            raise RegistryAnswer(f"{response.url}: no Location in the registry's answer", response.status, [])
        return parse_url(text, response.url)

    async def login(self) -> None:
        """Check the credentials (POST /auth): /v2/ answers 200 with them."""
        await self.ping()
        url = self.base
        headers: dict[str, str] = {}
        auth = await self._authorization([])
        if auth:
            headers["Authorization"] = auth
        tls = self._tls(not self._insecure) if url.scheme == "https" else None
        response = await request("GET", url, headers, tls=tls)
        await response.close()
        if response.status != 200:
            raise RegistryAnswer(
                f"login attempt to {url} failed with status: {response.status} {_REASONS.get(response.status, '')}".rstrip(),
                response.status, [],
            )


def _push_scopes(repository: str) -> list[str]:
    return [f"repository:{repository}:push,pull"]


def _hash_file(path: Path, hasher: hashlib._Hash) -> int:
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_WRITE_BATCH):
            hasher.update(chunk)
            size += len(chunk)
    return size


def _open_for_write(path: Path, *, append: bool) -> BinaryIO:
    return path.open("ab" if append else "wb")


def _write(fd: BinaryIO, hasher: hashlib._Hash, data: bytes) -> None:
    hasher.update(data)
    fd.write(data)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}  # fmt: skip


def _describe(response: Response, body: bytes) -> str:
    errors = parse_registry_errors(body)
    if errors:
        return str(errors[0])
    reason = _REASONS.get(response.status, "")
    return f"received unexpected HTTP status: {response.status} {reason}".rstrip()
