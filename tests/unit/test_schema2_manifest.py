"""The schema 2 manifest push writes: dockerd's bytes (Go's MarshalIndent, three spaces)."""

from __future__ import annotations

import json

from dockyard.model.manifests import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    Descriptor,
    Manifest,
    parse_manifest,
    schema2_manifest,
)

CONFIG = Descriptor(DOCKER_CONFIG, "sha256:" + "c" * 64, 1457)
L1 = Descriptor(DOCKER_LAYER, "sha256:" + "1" * 64, 2814559)
L2 = Descriptor(DOCKER_LAYER, "sha256:" + "2" * 64, 32)

# As dockerd 20-28 pushes it (distribution's schema2.FromStruct); no newline at the end.
EXPECTED = """{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2814559,
         "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 32,
         "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"
      }
   ]
}"""


def test_bytes_as_dockerd_writes_them() -> None:
    assert schema2_manifest(CONFIG, (L1, L2)).decode() == EXPECTED


def test_one_layer_and_no_layers() -> None:
    one = schema2_manifest(CONFIG, (L2,)).decode()
    assert one.endswith('"digest": "sha256:' + "2" * 64 + '"\n      }\n   ]\n}')
    none = schema2_manifest(CONFIG, ()).decode()
    assert none.endswith('   },\n   "layers": []\n}')
    assert json.loads(none)["layers"] == []


def test_it_parses_back() -> None:
    parsed = parse_manifest(schema2_manifest(CONFIG, (L1, L2)))
    assert parsed == Manifest(DOCKER_MANIFEST, CONFIG, (L1, L2))
    # Go's encoder would give the same document: keys in struct order, 3-space indent.
    doc = json.loads(EXPECTED)
    assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]
    assert list(doc["config"]) == ["mediaType", "size", "digest"]
