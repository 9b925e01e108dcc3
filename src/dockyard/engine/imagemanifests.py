"""The manifest and index documents that pulled images came by. They are small and kept
content-addressed beside the image store, so that `images --tree` (`manifests=1`) and the
`Descriptor` field can show what a multi-platform image offers, as dockerd 28 does."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from dockyard.engine.images import ImageService, ImageUsers
from dockyard.errors import DockyardError, NotFound
from dockyard.model.imageentries import ImageEntry
from dockyard.model.imagemanifests import LocalImage, ManifestSummary, summaries
from dockyard.model.manifests import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    matches,
    normalize_platform,
    parse_manifest,
)
from dockyard.model.references import parse_reference
from dockyard.store.content import ContentStore

log = logging.getLogger(__name__)


class ImageManifests:
    def __init__(self, documents: ContentStore, images: ImageService, users: ImageUsers) -> None:
        self._docs = documents
        self._images = images
        self._users = users

    def record(self, raws: Sequence[bytes]) -> None:
        """Keep a pull's documents (its index, if any, and the manifest chosen). Blocking."""
        for raw in raws:
            self._docs.put(raw)

    def target(self, entry: ImageEntry) -> tuple[Descriptor, Manifest | Index] | None:
        """What the image was pulled by: the first of its repository digests we hold."""
        return next(self._targets(entry), None)

    def _targets(self, entry: ImageEntry, repository: str = "") -> Iterator[tuple[Descriptor, Manifest | Index]]:
        """Every document its repository digests name, those of `repository` first."""
        names = sorted(entry.digests, key=lambda n: n.rpartition("@")[0] != repository)
        for name in names:
            digest = name.rpartition("@")[2]
            document = self._document(digest)
            if document is not None:
                yield Descriptor(document.media_type, digest, self._docs.size(digest)), document

    def manifests_of(self, entry: ImageEntry) -> list[bytes]:
        """The image manifests held for this image (by its repository digests, directly or
        through an index), as the registry served them: what a push may send back as is."""
        out: list[bytes] = []
        for name in entry.digests:
            digest = name.rpartition("@")[2]
            document = self._document(digest)
            candidates = [digest] if isinstance(document, Manifest) else \
                [d.digest for d in document.manifests] if isinstance(document, Index) else []  # fmt: skip
            for candidate in candidates:
                found = self._document(candidate)
                if isinstance(found, Manifest) and found.config.digest == entry.id:
                    out.append(self._docs.read(candidate))
        return out

    def summaries(self, entry: ImageEntry) -> tuple[ManifestSummary, ...]:
        found = self.target(entry)
        if found is None:
            return ()
        return summaries(found[0], found[1], self._local)

    def resolve(self, name: str, wanted: Platform | None) -> ImageEntry:
        """The image `name` means for one platform (inspect, history, rmi --platform): the
        named image if it is of that platform, else the local image of that platform's
        manifest in the index the named one came by; dockerd's NotFound otherwise."""
        entry = self._images.resolve(name)
        if wanted is None:
            return entry
        image = entry.image
        actual = Platform(image.os, image.architecture, image.variant)
        if matches(wanted, actual):
            return entry
        repository = ""
        with contextlib.suppress(DockyardError):
            repository = parse_reference(name).name  # an index of the repository named comes first
        for _, document in self._targets(entry, repository):
            if not isinstance(document, Index):
                continue
            for d in document.manifests:
                if d.platform is None or d.attestation or not matches(wanted, d.platform):
                    continue
                local = self._local(d.digest)
                if local is not None:
                    return self._images.get(local.manifest.config.digest)
        raise NotFound(
            f"image with reference {name} was found but its platform ({normalize_platform(actual)}) "
            f"does not match the specified platform ({normalize_platform(wanted)})"
        )

    def sweep(self) -> None:
        """Forget the documents no image's repository digest reaches any more (a removed
        image leaves its own behind until the next start: they are a few KiB each)."""
        live: set[str] = set()
        for entry in self._images.all():
            for top, document in self._targets(entry):
                live.add(top.digest)
                if isinstance(document, Index):
                    live.update(d.digest for d in document.manifests)
        for digest in self._docs.digests():
            if digest not in live:
                self._docs.delete(digest)

    def _document(self, digest: str) -> Manifest | Index | None:
        if not self._docs.exists(digest):
            return None
        try:
            return parse_manifest(self._docs.read(digest))
        except DockyardError as exc:
            log.warning("stored manifest %s does not parse: %s", digest, exc)
            return None

    def _local(self, digest: str) -> LocalImage | None:
        document = self._document(digest)
        if not isinstance(document, Manifest):
            return None
        try:
            entry = self._images.get(document.config.digest)
        except DockyardError:
            return None  # that platform's image was never pulled, or is gone
        image = entry.image
        containers = tuple(cid for cid, _running in self._users.users_of(entry.id))
        return LocalImage(document, self._docs.size(digest), Platform(image.os, image.architecture, image.variant),
                          entry.size, containers)  # fmt: skip
