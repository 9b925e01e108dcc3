"""docker save / docker load archives: both layouts in, the docker 25+ layout out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from dockyard.errors import Internal, InvalidArgument
from dockyard.images.archive import (
    Archive,
    SaveImage,
    SaveLayer,
    read_archive,
    spool_archive,
    write_archive,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(layers: list[bytes], arch: str = "amd64", cmd: str = "sh") -> bytes:
    doc = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }
    return json.dumps(doc).encode()


def opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def save_layer(data: bytes) -> SaveLayer:
    return SaveLayer(sha(data), len(data), opener(data))


def save_image(layers: list[bytes], tags: tuple[str, ...], cmd: str = "sh") -> SaveImage:
    config = config_for(layers, cmd=cmd)
    return SaveImage(config, sha(config), tags, tuple(save_layer(layer) for layer in layers))


def members(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for info in tf:
            f = tf.extractfile(info)
            out[info.name] = f.read() if f is not None else b""
    return out


def build_tar(entries: list[tuple[str, bytes | None, str | None, bytes]]) -> bytes:
    """(name, data, link target, link type) entries; data None with a target = a link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, target, kind in entries:
            info = tarfile.TarInfo(name)
            if data is None and target is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif data is None:
                info.type = kind
                info.linkname = target or ""
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write(tmp_path: Path, data: bytes, name: str = "archive.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_layer(archive: Archive, member: str) -> bytes:
    with archive.open_layer(member) as stream:
        return stream.read()


BASE = layer_tar({"bin/sh": b"#!shell\n", "etc/os-release": b"ID=test\n"})
APP = layer_tar({"app/run": b"run\n"})
OTHER = layer_tar({"other": b"x" * 5000})


def saved(images: list[SaveImage]) -> bytes:
    out = io.BytesIO()
    write_archive(out, images)
    return out.getvalue()


# ---- writing and reading back ------------------------------------------------------------


def test_round_trip_two_images_sharing_a_layer(tmp_path: Path) -> None:
    app = save_image([BASE, APP], ("myapp:1.0", "registry.example.com:5000/team/app:v2"))
    base = save_image([BASE], ("busybox:latest",), cmd="base")
    data = saved([app, base])

    archive = read_archive(write(tmp_path, data))
    by_digest = {image.config_digest: image for image in archive.images}
    assert set(by_digest) == {app.config_digest, base.config_digest}
    got = by_digest[app.config_digest]
    assert got.config == app.config
    assert got.repo_tags == ("myapp:1.0", "registry.example.com:5000/team/app:v2")
    assert [read_layer(archive, m) for m in got.layers] == [BASE, APP]
    assert by_digest[base.config_digest].repo_tags == ("busybox:latest",)

    # The shared base layer is stored once.
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
    assert names.count(f"blobs/sha256/{sha(BASE)[7:]}") == 1


def test_written_layout_matches_docker_25(tmp_path: Path) -> None:
    image = save_image([BASE, APP], ("myapp:1.0", "busybox"))
    files = members(saved([image]))

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": f"blobs/sha256/{image.config_digest[7:]}",
            "RepoTags": ["myapp:1.0", "busybox:latest"],
            "Layers": [f"blobs/sha256/{sha(BASE)[7:]}", f"blobs/sha256/{sha(APP)[7:]}"],
        }
    ]
    assert json.loads(files["repositories"]) == {
        "myapp": {"1.0": sha(APP)[7:]},
        "busybox": {"latest": sha(APP)[7:]},
    }
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    annotations = [d["annotations"] for d in index["manifests"]]
    assert annotations == [
        {
            "io.containerd.image.name": "docker.io/library/myapp:1.0",
            "org.opencontainers.image.ref.name": "1.0",
        },
        {
            "io.containerd.image.name": "docker.io/library/busybox:latest",
            "org.opencontainers.image.ref.name": "latest",
        },
    ]
    # Both tags point at one OCI manifest, stored as a blob whose digest is its name.
    digest = index["manifests"][0]["digest"]
    assert index["manifests"][1]["digest"] == digest
    raw = files[f"blobs/sha256/{digest[7:]}"]
    assert sha(raw) == digest and index["manifests"][0]["size"] == len(raw)
    oci = json.loads(raw)
    assert oci["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert oci["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": image.config_digest,
        "size": len(image.config),
    }
    assert oci["layers"] == [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b), "size": len(b)}
        for b in (BASE, APP)
    ]
    assert files[f"blobs/sha256/{image.config_digest[7:]}"] == image.config


def test_writing_is_deterministic_with_fixed_times() -> None:
    images = [save_image([BASE, APP], ("a:1",)), save_image([OTHER], ("b:2",))]
    first, second = saved(images), saved(images)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tf:
        assert {info.mtime for info in tf} == {0}
        # dockerd's tar of its staging dir lists entries in path order.
        assert tf.getnames() == sorted(tf.getnames())


def test_fully_qualified_tags_are_written_familiar(tmp_path: Path) -> None:
    image = save_image([BASE], ("docker.io/library/alpine:3", "docker.io/me/tool:x"))
    files = members(saved([image]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] == ["alpine:3", "me/tool:x"]
    names = [
        d["annotations"]["io.containerd.image.name"]
        for d in json.loads(files["index.json"])["manifests"]
    ]
    assert names == ["docker.io/library/alpine:3", "docker.io/me/tool:x"]


def test_untagged_image_is_still_in_the_index(tmp_path: Path) -> None:
    image = save_image([BASE], ())
    data = saved([image])
    files = members(data)
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in files
    index = json.loads(files["index.json"])
    assert len(index["manifests"]) == 1 and "annotations" not in index["manifests"][0]
    archive = read_archive(write(tmp_path, data))
    assert archive.images[0].repo_tags == ()


def test_layer_that_does_not_match_its_diff_id_fails() -> None:
    config = config_for([BASE])
    liar = SaveLayer(sha(BASE), len(APP), opener(APP))
    with pytest.raises(Internal, match="digest"):
        saved([SaveImage(config, sha(config), ("x:1",), (liar,))])


def test_layer_longer_than_its_size_fails() -> None:
    config = config_for([BASE])
    short = SaveLayer(sha(BASE), len(BASE) - 512, opener(BASE))
    with pytest.raises(Internal, match="longer"):
        saved([SaveImage(config, sha(config), (), (short,))])


def test_layer_shorter_than_its_size_fails() -> None:
    config = config_for([BASE])
    long = SaveLayer(sha(BASE), len(BASE) + 512, opener(BASE))
    with pytest.raises(Internal):
        saved([SaveImage(config, sha(config), (), (long,))])


def test_config_not_matching_its_id_fails() -> None:
    image = save_image([BASE], ())
    with pytest.raises(Internal, match="does not match"):
        saved([SaveImage(image.config, sha(b"other"), (), image.layers)])


def test_layers_are_streamed_not_loaded_whole() -> None:
    big = layer_tar({"big": b"\0" * (8 << 20)})
    reads: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    config = config_for([big])
    layer = SaveLayer(sha(big), len(big), lambda: Counting(big))
    saved([SaveImage(config, sha(config), (), (layer,))])
    assert reads and all(0 < size <= 1 << 20 for size in reads)


def test_gzip_compressed_archive_is_read(tmp_path: Path) -> None:
    image = save_image([BASE], ("gz:1",))
    path = write(tmp_path, gzip.compress(saved([image])), "archive.tar.gz")
    archive = read_archive(path)
    assert archive.images[0].repo_tags == ("gz:1",)
    assert read_layer(archive, archive.images[0].layers[0]) == BASE


def test_spool_archive_decompresses_streams(tmp_path: Path) -> None:
    plain = saved([save_image([BASE], ())])
    spool_archive(io.BytesIO(gzip.compress(plain)), tmp_path / "out.tar")
    assert (tmp_path / "out.tar").read_bytes() == plain
    spool_archive(io.BytesIO(plain), tmp_path / "same.tar")
    assert (tmp_path / "same.tar").read_bytes() == plain
    spool_archive(io.BytesIO(zstandard.ZstdCompressor().compress(plain)), tmp_path / "z.tar")
    assert (tmp_path / "z.tar").read_bytes() == plain
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        spool_archive(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 20), tmp_path / "cut-z.tar")
    with pytest.raises(InvalidArgument):
        spool_archive(io.BytesIO(gzip.compress(plain)[:200]), tmp_path / "cut.tar")


# ---- the docker 20.10 layout ------------------------------------------------------------


def legacy_archive(config_name_hex: str | None = None) -> tuple[bytes, bytes, bytes]:
    """Two images as docker 20.10 saves them; the second shares the first's layer by links."""
    config1 = config_for([BASE])
    config2 = config_for([BASE, APP], cmd="app")
    hex1, hex2 = sha(config1)[7:], sha(config2)[7:]
    id_a, id_b, id_c = "a" * 64, "b" * 64, "c" * 64
    manifest = [
        {
            "Config": f"{config_name_hex or hex1}.json",
            "RepoTags": ["busybox:latest"],
            "Layers": [f"{id_a}/layer.tar"],
        },
        {
            "Config": f"{hex2}.json",
            "RepoTags": ["myapp:1", "myapp:2"],
            "Layers": [f"{id_b}/layer.tar", f"{id_c}/layer.tar"],
        },
    ]
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        (f"{config_name_hex or hex1}.json", config1, None, b""),
        (f"{hex2}.json", config2, None, b""),
        (f"{id_a}/", None, None, b""),
        (f"{id_a}/VERSION", b"1.0", None, b""),
        (f"{id_a}/json", b'{"id":"' + id_a.encode() + b'"}', None, b""),
        (f"{id_a}/layer.tar", BASE, None, b""),
        (f"{id_b}/", None, None, b""),
        # 20.10 links a layer it already wrote instead of writing it again.
        (f"{id_b}/layer.tar", None, f"../{id_a}/layer.tar", tarfile.SYMTYPE),
        (f"{id_c}/", None, None, b""),
        (f"{id_c}/layer.tar", APP, None, b""),
        (f"{id_c}/extra.tar", None, f"{id_c}/layer.tar", tarfile.LNKTYPE),
        ("manifest.json", json.dumps(manifest).encode(), None, b""),
        ("repositories", b'{"busybox":{"latest":"' + id_a.encode() + b'"}}', None, b""),
    ]
    return build_tar(entries), config1, config2


def test_legacy_layout_is_read(tmp_path: Path) -> None:
    data, config1, _ = legacy_archive()
    archive = read_archive(write(tmp_path, data))
    first, second = archive.images
    assert first.config == config1 and first.config_digest == sha(config1)
    assert first.repo_tags == ("busybox:latest",)
    assert second.repo_tags == ("myapp:1", "myapp:2")
    assert [read_layer(archive, m) for m in second.layers] == [BASE, APP]
    assert read_layer(archive, "c" * 64 + "/extra.tar") == APP  # hardlink between members


def test_legacy_config_name_must_match_its_digest(tmp_path: Path) -> None:
    data, _, _ = legacy_archive(config_name_hex="d" * 64)
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        read_archive(write(tmp_path, data))


# ---- a bare OCI image layout (index.json only) --------------------------------------------


def oci_layout(
    index_annotations: list[dict[str, str]], arches: tuple[str, ...] = ("amd64", "arm64")
) -> tuple[bytes, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> dict[str, object]:
        blobs[sha(data)[7:]] = data
        return {"digest": sha(data), "size": len(data)}

    gz_layer = gzip.compress(BASE, mtime=0)
    configs: dict[str, bytes] = {}
    platform_descriptors = []
    for arch in arches:
        config = config_for([BASE], arch=arch)
        configs[arch] = config
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(gz_layer)}
            ],
        }
        platform_descriptors.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(json.dumps(manifest).encode()),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    image_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "e" * 64,
                "size": 1,
                "platform": {"os": "unknown", "architecture": "unknown"},
            },
            *platform_descriptors,
        ],
    }
    top = put(json.dumps(image_index).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", **top, "annotations": a}
            for a in index_annotations
        ],
    }
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', None, b""),
        ("index.json", json.dumps(index).encode(), None, b""),
    ]
    entries += [(f"blobs/sha256/{hex_}", data, None, b"") for hex_, data in sorted(blobs.items())]
    return build_tar(entries), configs


def test_oci_index_only_archive_picks_the_platform(tmp_path: Path) -> None:
    data, configs = oci_layout(
        [
            {
                "io.containerd.image.name": "docker.io/library/busybox:1.36",
                "org.opencontainers.image.ref.name": "1.36",
            },
            {"org.opencontainers.image.ref.name": "ghcr.io/me/busybox:stable"},
            {"org.opencontainers.image.ref.name": "latest"},  # a bare tag names nothing
        ]
    )
    path = write(tmp_path, data)
    archive = read_archive(path, architecture="arm64")
    assert len(archive.images) == 1
    image = archive.images[0]
    assert image.config == configs["arm64"]
    assert image.repo_tags == ("busybox:1.36", "ghcr.io/me/busybox:stable")
    # Layers come out as stored (here gzip); apply_layer_tar undoes the compression.
    assert gzip.decompress(read_layer(archive, image.layers[0])) == BASE

    assert read_archive(path, architecture="amd64").images[0].config == configs["amd64"]
    with pytest.raises(InvalidArgument, match="no linux/s390x image"):
        read_archive(path, architecture="s390x")


def test_docker_save_archive_prefers_manifest_json(tmp_path: Path) -> None:
    # Our own output carries both; manifest.json wins, as in dockerd's graphdriver store.
    image = save_image([BASE], ("x:1",))
    archive = read_archive(write(tmp_path, saved([image])))
    assert archive.images[0].layers == (f"blobs/sha256/{sha(BASE)[7:]}",)


def test_index_only_copy_of_our_output_reads_the_same(tmp_path: Path) -> None:
    image = save_image([BASE, APP], ("x:1", "y:2"))
    files = members(saved([image]))
    del files["manifest.json"]
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        (name, data, None, b"")
        for name, data in files.items()
        if name not in ("blobs", "blobs/sha256")
    ]
    archive = read_archive(write(tmp_path, build_tar(entries)))
    (got,) = archive.images
    assert got.config_digest == image.config_digest
    assert got.repo_tags == ("x:1", "y:2")
    assert [read_layer(archive, m) for m in got.layers] == [BASE, APP]


# ---- bad archives ---------------------------------------------------------------------------


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a tar archive"):
        read_archive(write(tmp_path, b"this is not a tar file at all" * 40))


@pytest.mark.parametrize("data", [b"", build_tar([("hello.txt", b"hi", None, b"")])])
def test_missing_manifest(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InvalidArgument, match="does not contain a manifest.json"):
        read_archive(write(tmp_path, data))


def manifest_tar(manifest: object, extra: Sequence[tuple[str, bytes]] = ()) -> bytes:
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        ("manifest.json", json.dumps(manifest).encode(), None, b"")
    ]
    entries += [(name, data, None, b"") for name, data in extra]
    return build_tar(entries)


def test_null_and_malformed_manifest(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot be null"):
        read_archive(write(tmp_path, manifest_tar(None)))
    with pytest.raises(InvalidArgument, match="failed to decode"):
        read_archive(write(tmp_path, build_tar([("manifest.json", b"{nope", None, b"")])))
    with pytest.raises(InvalidArgument, match="bad entry"):
        read_archive(write(tmp_path, manifest_tar([{"Config": 3}])))
    assert read_archive(write(tmp_path, manifest_tar([]))).images == ()


def test_missing_layer_member(tmp_path: Path) -> None:
    config = config_for([BASE])
    data = manifest_tar(
        [{"Config": "c.json", "RepoTags": None, "Layers": ["nope/layer.tar"]}],
        [("c.json", config)],
    )
    with pytest.raises(InvalidArgument, match="nope/layer.tar not found"):
        read_archive(write(tmp_path, data))


def test_layer_count_must_match_config(tmp_path: Path) -> None:
    config = config_for([BASE, APP])
    data = manifest_tar(
        [{"Config": "c.json", "Layers": ["l.tar"]}], [("c.json", config), ("l.tar", BASE)]
    )
    with pytest.raises(InvalidArgument, match="layers length mismatch: expected 1, got 2"):
        read_archive(write(tmp_path, data))


def test_paths_escaping_the_archive_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    data = manifest_tar([{"Config": "../secret.json", "Layers": []}])
    with pytest.raises(InvalidArgument, match="outside the archive"):
        read_archive(write(tmp_path, data, "sub.tar"))
    # A symlink member pointing out of the archive resolves to nothing either.
    config = config_for([BASE])
    manifest = [{"Config": "c.json", "Layers": ["l.tar"]}]
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        ("manifest.json", json.dumps(manifest).encode(), None, b""),
        ("c.json", config, None, b""),
        ("l.tar", None, "../../etc/passwd", tarfile.SYMTYPE),
    ]
    with pytest.raises(InvalidArgument, match="outside the archive"):
        read_archive(write(tmp_path, build_tar(entries)))


def test_truncated_archive(tmp_path: Path) -> None:
    config = config_for([OTHER])
    manifest = [{"Config": "c.json", "Layers": ["l.tar"]}]
    whole = build_tar(
        [
            ("manifest.json", json.dumps(manifest).encode(), None, b""),
            ("c.json", config, None, b""),
            ("l.tar", OTHER, None, b""),
        ]
    )
    # Cut inside the layer's data: the headers all parse, the data is not there.
    cut = whole[: len(whole) - 10240 - 2000]
    with pytest.raises(InvalidArgument, match="unexpected EOF"):
        read_archive(write(tmp_path, cut))


def test_config_blob_digest_is_checked_in_oci_layout(tmp_path: Path) -> None:
    config = config_for([BASE])
    bad_hex = "f" * 64
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": "sha256:" + bad_hex, "size": len(config)},
        "layers": [],
    }
    raw = json.dumps(manifest).encode()
    index = {
        "manifests": [{"mediaType": manifest["mediaType"], "digest": sha(raw), "size": len(raw)}]
    }
    entries: list[tuple[str, bytes | None, str | None, bytes]] = [
        ("index.json", json.dumps(index).encode(), None, b""),
        (f"blobs/sha256/{sha(raw)[7:]}", raw, None, b""),
        (f"blobs/sha256/{bad_hex}", config, None, b""),
    ]
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        read_archive(write(tmp_path, build_tar(entries)))
