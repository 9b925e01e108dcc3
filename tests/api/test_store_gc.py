"""The store keeps each layer's bytes once and gives them back exactly: `docker save` of a
loaded archive returns the very layer tars; rmi and prune leave no directory, blob or row
behind; `dockyard system check` finds and repairs what disagrees."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable

from tests.conftest import Daemon, busybox_rootfs_tar
from tests.integration.test_tarsplit import _odd_tar, _rich_tar


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _archive(layers: list[bytes], tag: str) -> tuple[bytes, str]:
    """A `docker save` archive (dockerd's legacy layout) of an image made of `layers`."""
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": [_sha(t) for t in layers]},
        "history": [{"created": "2024-01-02T03:04:05Z"} for _ in layers],
    }).encode()  # fmt: skip
    files = {f"{i}/layer.tar": t for i, t in enumerate(layers)}
    files[f"{_sha(config)[7:]}.json"] = config
    files["manifest.json"] = json.dumps(
        [{"Config": f"{_sha(config)[7:]}.json", "RepoTags": [tag], "Layers": [f"{i}/layer.tar" for i in range(len(layers))]}]
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), _sha(config)


def _saved_layers(archive: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("blobs/sha256/"):
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                out[_sha(data)] = data
    return out


def _store(d: Daemon) -> tuple[set[str], set[str], int]:
    """Layer directories, content blobs and layer rows of a daemon's data root."""
    dirs = {p.name for p in (d.data_root / "overlay").iterdir()} - {"empty"}
    blobs = {p.name for p in (d.data_root / "content" / "blobs" / "sha256").iterdir()}
    with contextlib.closing(sqlite3.connect(d.data_root / "dockyard.db")) as db:
        rows = db.execute("SELECT count(*) FROM layers").fetchone()[0]
    return dirs, blobs, rows


def _check(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from dockyard.cli import main; sys.exit(main())",
         "system", "check", "--data-root", str(d.data_root), *args],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_save_gives_back_the_loaded_layer_tars_byte_for_byte(daemon_factory: Callable[..., Daemon]) -> None:
    d = daemon_factory()
    layers = [busybox_rootfs_tar(), _rich_tar(tarfile.PAX_FORMAT), _rich_tar(tarfile.GNU_FORMAT), _odd_tar(), b""]
    archive, image_id = _archive(layers, "exact/layers:1")
    d.docker("load", input=archive)
    dirs, blobs, rows = _store(d)
    assert rows == len(layers) and len(dirs) == len(layers)
    assert blobs == {image_id[7:]}  # no tar kept beside the directories: each layer's bytes once
    for cache_id in dirs:
        assert (d.data_root / "overlay" / cache_id / "tar-split").is_file()
    saved = _saved_layers(d.docker("save", "exact/layers:1").stdout)
    for tar in layers:
        assert saved[_sha(tar)] == tar
    assert d.out("run", "--rm", "exact/layers:1", "cat", "/etc/motd") == "hello"


def test_layers_stored_before_indexes_still_save(daemon_factory: Callable[..., Daemon]) -> None:
    """A store from before tar-split: the layer's tar blob and no index."""
    d = daemon_factory()
    tar = _rich_tar(tarfile.PAX_FORMAT)
    archive, _ = _archive([busybox_rootfs_tar(), tar], "old/store:1")
    d.docker("load", input=archive)
    d.stop()
    (cache_id,) = [c for c in _store(d)[0] if (d.data_root / "overlay" / c / "diff" / "etc" / "motd").exists()]
    (d.data_root / "overlay" / cache_id / "tar-split").unlink()
    extra = d.data_root / "overlay" / cache_id / "tar-split.extra"
    extra.unlink(missing_ok=True)
    (d.data_root / "content" / "blobs" / "sha256" / _sha(tar)[7:]).write_bytes(tar)
    d.start()
    assert _saved_layers(d.docker("save", "old/store:1").stdout)[_sha(tar)] == tar
    # Its old tar is the only copy: system check keeps it (and rmi removes it).
    d.stop()
    result = _check(d)
    assert result.returncode == 0 and "no problems found" in result.stdout, result.stdout
    d.start()
    d.docker("rmi", "old/store:1")
    assert _store(d) == (set(), set(), 0)


def test_rmi_and_prune_leave_nothing_behind(daemon_factory: Callable[..., Daemon]) -> None:
    d = daemon_factory()
    base = busybox_rootfs_tar()
    one, _ = _archive([base, _rich_tar(tarfile.PAX_FORMAT)], "gc/one:1")
    two, _ = _archive([base, _odd_tar()], "gc/two:1")
    d.docker("load", input=one)
    d.docker("load", input=two)
    assert _store(d)[2] == 3  # the base layer is shared
    container = d.out("create", "gc/one:1")
    d.docker("rmi", "gc/two:1")
    dirs, blobs, rows = _store(d)
    assert rows == 2 and len(blobs) == 1 and len(dirs) == 3  # two layers and the container's
    d.docker("rm", container)
    d.docker("tag", "gc/one:1", "gc/one:2")
    d.docker("rmi", "gc/one:1")
    assert _store(d)[2] == 2  # still tagged gc/one:2
    d.docker("tag", "gc/one:2", "gc/keep:1")
    d.docker("rmi", "gc/one:2", "gc/keep:1")
    assert _store(d) == (set(), set(), 0)
    d.docker("load", input=two)
    d.docker("image", "prune", "-af")
    assert _store(d) == (set(), set(), 0)
    d.stop()
    assert _check(d).stdout.strip() == "no problems found"


def test_system_check_reports_and_repairs(daemon_factory: Callable[..., Daemon]) -> None:
    d = daemon_factory()
    base = busybox_rootfs_tar()
    good, good_id = _archive([base], "check/good:1")
    bad, bad_id = _archive([base, _rich_tar(tarfile.PAX_FORMAT)], "check/bad:1")
    d.docker("load", input=good)
    d.docker("load", input=bad)
    dirs = _store(d)[0]
    d.stop()
    # While a daemon runs on the data root, the check refuses.
    d.start()
    busy = _check(d)
    assert busy.returncode == 1 and "in use by another dockyard daemon" in busy.stderr
    d.stop()
    overlay = d.data_root / "overlay"
    (broken,) = [c for c in dirs if (overlay / c / "diff" / "etc" / "motd").exists()]
    shutil.rmtree(overlay / broken)  # the bad image's top layer is gone
    (overlay / "strayd1r").mkdir()  # a directory nothing owns
    (d.data_root / "content" / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"orphan")
    result = _check(d)
    assert result.returncode == 1
    assert f"missing layer directory: {broken}" in result.stdout
    assert "orphan layer directory: strayd1r" in result.stdout
    assert f"orphan blob: sha256:{'e' * 64}" in result.stdout
    assert f"broken image: {bad_id}" in result.stdout
    repaired = _check(d, "--repair")
    assert repaired.returncode == 0 and "repaired: removed 1 images, 1 layers, 1 directories, 2 blobs" in repaired.stdout
    assert _check(d).stdout.strip() == "no problems found"
    d.start()
    assert d.out("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}") == f"check/good:1 {good_id[7:19]}"
    assert d.out("run", "--rm", "check/good:1", "true") == ""
    d.stop()
    # A layer's file changed behind the store's back (same size, other bytes): only --verify
    # rebuilds the tars, and finds it.
    (good_dir,) = [c for c in dirs if c != broken]
    target = overlay / good_dir / "diff" / "bin" / "busybox"
    content = bytearray(target.read_bytes())
    content[1000] ^= 0xFF
    target.write_bytes(bytes(content))
    assert _check(d).returncode == 0
    d.start()  # save rebuilds the tar and refuses what no longer has the layer's digest
    assert d.docker("save", "check/good:1", check=False).returncode != 0
    d.stop()
    tampered = _check(d, "--verify")
    assert tampered.returncode == 1
    assert f"bad layer index: {good_dir} (does not rebuild the tar of" in tampered.stdout
    assert f"broken image: {good_id}" in tampered.stdout
    assert _check(d, "--verify", "--repair").returncode == 0
    assert _check(d, "--verify").stdout.strip() == "no problems found"
    d.start()
    assert d.out("images", "-q") == ""
