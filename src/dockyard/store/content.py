"""Content-addressed blobs: content/blobs/sha256/<hex>.

Ingest writes to a temporary file, verifies the digest, fsyncs and renames, so a
blob path either holds the full verified content or does not exist.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.ids import is_digest

_CHUNK = 1 << 20


class ContentStore:
    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs" / "sha256"
        self._ingest = root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)
        for stale in self._ingest.iterdir():  # left by a crash mid-ingest
            stale.unlink(missing_ok=True)

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise InvalidArgument(f"invalid digest {digest!r}")
        return self._blobs / digest[7:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def read(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found") from exc

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found") from exc

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self.ingest(io.BytesIO(data), digest)
        return digest

    def ingest(self, stream: BinaryIO, expected: str | None = None) -> str:
        """Copy a stream into the store (blocking); returns its digest."""
        hasher = hashlib.sha256()

        def write(f: BinaryIO) -> None:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                f.write(chunk)

        tmp = self._ingest / secrets.token_hex(8)
        try:
            with tmp.open("wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            digest = "sha256:" + hasher.hexdigest()
            if expected is not None and digest != expected:
                raise InvalidArgument(f"digest mismatch: expected {expected}, got {digest}")
            os.replace(tmp, self.path(digest))
            return digest
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        return ["sha256:" + p.name for p in self._blobs.iterdir()]
