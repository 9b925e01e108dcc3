"""The Registry HTTP API v2 (OCI distribution spec) client: ping, the Basic and Bearer token
challenges, manifests by tag or digest, blobs streamed to a file and verified on the way."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.distribution.auth import Authenticator, AuthRefused
from dockyard.distribution.http import Response, TransportError, Url, parse_url, request
from dockyard.distribution.tls import TlsContexts
from dockyard.errors import Internal, InvalidArgument
from dockyard.model.manifests import ACCEPT, MAX_MANIFEST_BYTES, Descriptor
from dockyard.model.registries import Endpoint, RegistrySettings
from dockyard.model.registryauth import Credentials, RegistryError, parse_registry_errors

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 10
_MAX_ERROR_BODY = 1 << 16
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


class Registry:
    """One registry endpoint group (a mirror, or a registry's https-then-http pair), talked to
    with one set of credentials (one pull or login)."""

    def __init__(
        self, domain: str, endpoints: Sequence[Endpoint], creds: Credentials, settings: RegistrySettings,
        tls: TlsContexts,
    ) -> None:
        self.domain = domain
        self._endpoints = tuple(endpoints)
        self._creds = creds
        self._settings = settings
        self._tls = tls
        self._auth = Authenticator(creds, self._tls_for)
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._base: Url | None = None
        self._endpoint: Endpoint | None = None
        self._lock = asyncio.Lock()

    @property
    def mirror(self) -> bool:
        return any(e.mirror for e in self._endpoints)

    @property
    def base_text(self) -> str:
        return str(self._base) if self._base is not None else ", ".join(map(str, self._endpoints))

    def _tls_for(self, url: Url) -> ssl.SSLContext | None:
        """The TLS context for a URL: the endpoint's verification for its own host, for any
        other (a token server, a blob store redirected to) as that host's own settings say."""
        if url.scheme != "https":
            return None
        authority = url.authority
        if self._endpoint is not None and authority == self._endpoint.host:
            return self._context(authority, self._endpoint.verify)
        return self._context(authority, not self._settings.is_insecure(authority))

    def _context(self, authority: str, verify: bool) -> ssl.SSLContext:
        key = (authority, verify)  # certs.d is read once per session (pull, login), not per request
        if key not in self._contexts:
            self._contexts[key] = self._tls.context(authority, verify)
        return self._contexts[key]

    @property
    def base(self) -> Url:
        assert self._base is not None, "ping() first"
        return self._base

    async def ping(self) -> Response:
        """GET /v2/ on the first endpoint that answers; learns its auth challenges."""
        async with self._lock:
            last: TransportError | None = None
            for endpoint in self._endpoints:
                url = parse_url(f"{endpoint.base}/v2/")
                tls = self._context(endpoint.host, endpoint.verify) if endpoint.scheme == "https" else None
                try:
                    response = await request("GET", url, {}, tls=tls)
                except TransportError as exc:
                    log.debug("registry %s: %s", url, exc.message)
                    last = exc
                    continue
                await response.close()
                self._base, self._endpoint = url, endpoint
                if response.status == 401:
                    self._auth.learn(response.header_values("www-authenticate"))
                return response
            assert last is not None
            raise last

    async def get(self, path: str, scopes: list[str], headers: dict[str, str] | None = None) -> Response:
        """GET a path under /v2/ with credentials, following redirects; errors raise RegistryAnswer.
        A bearer token the registry refuses is dropped and a new one tried, once."""
        if self._base is None:
            await self.ping()
        url = Url(self.base.scheme, self.base.host, self.base.port, self.base.target + path)
        for attempt in range(2):
            sent = dict(headers or {})
            try:
                auth = await self._auth.authorization(scopes)
            except AuthRefused as exc:
                raise RegistryAnswer(f'Get "{url}": {exc.error}', exc.status, [exc.error]) from exc
            if auth:
                sent["Authorization"] = auth
            response = await self._follow(url, sent)
            if response.status == 401 and attempt == 0 and self._auth.bearer and not self._creds.registry_token:
                await response.close()
                self._auth.learn(response.header_values("www-authenticate"))
                self._auth.forget(scopes)
                continue
            if response.status >= 400:
                body = await response.read(_MAX_ERROR_BODY)
                raise RegistryAnswer(_describe(response, body), response.status, parse_registry_errors(body))
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _follow(self, url: Url, sent: dict[str, str]) -> Response:
        for _ in range(_MAX_REDIRECTS):
            response = await request("GET", url, sent, tls=self._tls_for(url))
            if response.status in (301, 302, 303, 307, 308) and response.header("location"):
                await response.close()
                target = parse_url(response.header("location"), url)
                if (target.host, target.port) != (url.host, url.port):
                    sent = {k: v for k, v in sent.items() if k != "Authorization"}  # blob stores sign their own URLs
                url = target
                continue
            return response
        raise InvalidArgument(f'Get "{url}": stopped after {_MAX_REDIRECTS} redirects')

    async def manifest(self, repository: str, reference: str) -> Fetched:
        response = await self.get(
            f"{repository}/manifests/{reference}", [f"repository:{repository}:pull"], {"Accept": ", ".join(ACCEPT)}
        )
        length = response.header("content-length")
        if length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
            await response.close()  # refused before a byte of it is read
            raise InvalidArgument(f"manifest too big: {length} bytes (at most {MAX_MANIFEST_BYTES})")
        try:
            raw = await response.read(MAX_MANIFEST_BYTES)
        except InvalidArgument as exc:
            raise InvalidArgument(f"manifest too big: more than {MAX_MANIFEST_BYTES} bytes") from exc
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
                try:
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
                except TransportError:
                    # Keep every byte that came: the next pull resumes from exactly there.
                    if pending:
                        await asyncio.to_thread(_write, fd, hasher, b"".join(pending))
                    raise
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

    async def _call(
        self, method: str, url: Url | str, scopes: list[str], headers: dict[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] = b"",
    ) -> Response:
        """One push request under /v2/ (a path) or to an upload Location (a URL); >= 400 raises."""
        if self._base is None:
            await self.ping()
        if isinstance(url, str):
            url = Url(self.base.scheme, self.base.host, self.base.port, self.base.target + url)
        sent = dict(headers or {})
        try:
            auth = await self._auth.authorization(scopes)
        except AuthRefused as exc:
            raise RegistryAnswer(f'{method.title()} "{url}": {exc.error}', exc.status, [exc.error]) from exc
        if auth and (url.host, url.port) == (self.base.host, self.base.port):
            sent["Authorization"] = auth
        response = await request(method, url, sent, body, tls=self._tls_for(url))
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

    async def login(self) -> str:
        """Check the credentials (POST /auth): /v2/ answers 200 with them. Returns the token
        server's refresh token, if it gave one (the IdentityToken the CLI stores)."""
        await self.ping()
        url = self.base
        headers: dict[str, str] = {}
        try:
            auth = await self._auth.authorization([], offline=True)
        except AuthRefused as exc:
            # dockerd: the /v2/ request's URL error wrapping the token server's errcode.
            errors = [exc.error]
            raise RegistryAnswer(f'Get "{url}": {exc.error}', exc.status, errors) from exc
        if auth:
            headers["Authorization"] = auth
        response = await request("GET", url, headers, tls=self._tls_for(url))
        await response.close()
        if response.status != 200:
            raise RegistryAnswer(
                f"login attempt to {url} failed with status: {response.status} {_REASONS.get(response.status, '')}".rstrip(),
                response.status, [],
            )
        return self._auth.refresh_token


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
