"""ADD <url>: the file a build fetches, as dockerd's classic builder does: saved under the
build's scratch directory with mode 0600 and the server's Last-Modified as its time, named
after the URL's last path element, never unpacked; redirects followed (up to 10)."""

from __future__ import annotations

import asyncio
import email.utils
import os
import posixpath
from pathlib import Path
from urllib.parse import unquote

from dockyard.distribution.http import TransportError, parse_url, request
from dockyard.errors import InvalidArgument
from dockyard.layers.buildcontext import Source

_REDIRECTS = 10


def url_file_name(url: str) -> str:
    path = unquote(parse_url(url).target.split("?", 1)[0])
    name = posixpath.basename(path.rstrip("/")) if path not in ("", "/") else ""
    if not name or name in (".", ".."):
        raise InvalidArgument(f"cannot determine filename from url: {url}")
    return name


async def fetch(url: str, into: Path) -> Source:
    """Download `url` into the directory `into` (made if missing); the Source to copy."""
    name = url_file_name(url)
    target = parse_url(url)
    for _ in range(_REDIRECTS + 1):
        try:
            response = await request("GET", target)
        except TransportError as exc:
            raise InvalidArgument(f"ADD failed: {exc.message}") from exc
        if response.status in (301, 302, 303, 307, 308) and response.header("location"):
            await response.close()
            target = parse_url(response.header("location"), target)
            continue
        break
    else:
        raise InvalidArgument(f"ADD failed: too many redirects fetching {url}")
    if response.status >= 400:
        await response.close()
        raise InvalidArgument(f"ADD failed: failed to GET {url} with status {response.status}")
    await asyncio.to_thread(into.mkdir, parents=True, exist_ok=True)
    path = into / f"{len(os.listdir(into))}-{name}"
    modified = response.header("last-modified")
    try:
        with path.open("wb") as f:
            async for chunk in response.chunks():
                await asyncio.to_thread(f.write, chunk)
    except TransportError as exc:
        raise InvalidArgument(f"ADD failed: {exc.message}") from exc
    os.chmod(path, 0o600)
    if modified:
        try:
            when = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
        except (TypeError, ValueError, OverflowError):
            pass
    return Source(name, path, os.lstat(path), remote=True)
