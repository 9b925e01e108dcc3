"""The manifest and index documents that pulled images came by. They are small and kept
content-addressed beside the image store, so that `images --tree` (`manifests=1`) and the
`Descriptor` field can show what a multi-platform image offers, as dockerd 28 does."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dockyard.engine.images import ImageEntry, ImageService, ImageUsers
from dockyard.errors import DockyardError, NotFound
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
        for name in entry.digests:
            digest = name.rpartition("@")[2]
            document = self._document(digest)
            if document is not None:
                raw_size = self._docs.size(digest)
                return Descriptor(document.media_type, digest, raw_size), document
        return None

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
        found = self.target(entry)
        if found is not None and isinstance(found[1], Index):
            for d in found[1].manifests:
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
            found = self.target(entry)
            if found is None:
                continue
            live.add(found[0].digest)
            if isinstance(found[1], Index):
                live.update(d.digest for d in found[1].manifests)
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
