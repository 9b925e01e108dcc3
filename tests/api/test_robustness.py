"""What a container leaves behind can never take the daemon down."""

from __future__ import annotations

import time

from tests.conftest import Daemon

DEEP = "p=/x; for i in $(seq 1000); do p=$p/d; done; mkdir -p $p"


def _trash_empty(daemon: Daemon) -> bool:
    trash = daemon.data_root / "trash"
    return not trash.exists() or not any(trash.iterdir())


def test_a_1000_deep_tree_is_removed_and_the_daemon_lives(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d = daemon_factory()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    d.docker("run", "--rm", "busybox", "sh", "-c", DEEP)
    deadline = time.monotonic() + 20
    while not _trash_empty(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _trash_empty(d)
    assert d.proc is not None and d.proc.poll() is None
    assert d.out("run", "--rm", "busybox", "echo", "alive") == "alive"
    # And across a restart: nothing left to trip over at start-up.
    assert d.stop() == 0
    d.start()
    assert d.out("run", "--rm", "busybox", "echo", "again") == "again"


def test_ps_size_of_a_deep_container_answers(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("create", busybox, "sh", "-c", DEEP + " && echo hello > $p/f")
    try:
        daemon.docker("start", "-a", cid)
        sizes = daemon.out("ps", "-a", "-s", "--filter", f"id={cid}", "--format", "{{.Size}}")
        assert sizes.startswith("6B ")  # the one file at the bottom, 1,000 levels down
    finally:
        daemon.docker("rm", "-f", cid)


def _deep_layer_tar(depth: int) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        path = ""
        for _ in range(depth):
            path = f"{path}/d" if path else "d"
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
    return buf.getvalue()


def test_rmi_of_a_1500_deep_layer_removes_it(daemon: Daemon) -> None:
    layers = daemon.data_root / "overlay"
    before = set(layers.iterdir())
    image_id = daemon.out("import", "-", "deep:layer", input=_deep_layer_tar(1500))
    assert len(set(layers.iterdir()) - before) == 1
    daemon.docker("rmi", image_id)
    deadline = time.monotonic() + 10
    while set(layers.iterdir()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(layers.iterdir()) == before
