"""GET /distribution/{name}/json: what a reference names in its registry (the manifest's
descriptor and the platforms it offers), asked of the registry without pulling anything."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.distribution.client import Registry, RegistryAnswer
from dockyard.distribution.http import TransportError
from dockyard.engine.pulls import translate
from dockyard.errors import Internal, InvalidArgument
from dockyard.model.manifests import MAX_CONFIG_BYTES, Descriptor, Index, Platform, parse_manifest
from dockyard.model.references import Reference, parse_reference
from dockyard.model.registryauth import Credentials

_FULL_ID = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


@dataclass(frozen=True)
class DistributionInfo:
    descriptor: Descriptor  # of what the reference names: an index, or one image manifest
    platforms: tuple[Platform, ...]


class DistributionService:
    def __init__(self, registry: Callable[[str, Credentials], Registry]) -> None:
        self._registry = registry

    async def inspect(self, name: str, creds: Credentials) -> DistributionInfo:
        if _FULL_ID.match(name):
            raise Internal("no manifest found for full image ID")
        ref = parse_reference(name).with_default_tag()
        registry = self._registry(ref.domain, creds)
        try:
            return await _inspect(registry, ref)
        except (RegistryAnswer, TransportError) as exc:
            raise translate(exc, ref) from exc


async def _inspect(registry: Registry, ref: Reference) -> DistributionInfo:
    fetched = await registry.manifest(ref.path, ref.digest or ref.tag or "latest")
    if ref.digest is not None and fetched.digest != ref.digest:
        raise InvalidArgument(f"manifest verification failed for digest {ref.digest}")
    parsed = parse_manifest(fetched.raw, fetched.content_type)
    descriptor = Descriptor(parsed.media_type, fetched.digest, len(fetched.raw))
    if isinstance(parsed, Index):
        # As dockerd: every entry's platform, attestations included, in the index's order.
        return DistributionInfo(descriptor, tuple(d.platform for d in parsed.manifests if d.platform is not None))
    raw_config = await registry.blob_bytes(ref.path, parsed.config, MAX_CONFIG_BYTES)
    return DistributionInfo(descriptor, _config_platform(raw_config))


def _config_platform(raw: bytes) -> tuple[Platform, ...]:
    """The platform an image config states; none when it states neither os nor architecture."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(doc, dict):
        return ()
    os_name, arch = str(doc.get("os") or ""), str(doc.get("architecture") or "")
    if not os_name and not arch:
        return ()
    return (Platform(os_name, arch, str(doc.get("variant") or "")),)
