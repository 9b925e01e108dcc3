"""docker cp (both ways, safely), docker diff, docker export against a real daemon."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.conftest import Daemon


@pytest.fixture
def box(daemon: Daemon, busybox: str) -> Iterator[str]:
    cid = daemon.out("run", "-d", busybox, "sh", "-c",
                     "mkdir -p /data/sub; echo hello > /data/file; echo deep > /data/sub/x; "
                     "ln -s / /tmp/root; ln -s ../../../etc /tmp/up; touch /tmp/ready; exec sleep 300")  # fmt: skip
    deadline = time.monotonic() + 10
    while daemon.docker("exec", cid, "test", "-e", "/tmp/ready", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield cid
    daemon.docker("rm", "-f", cid)


def test_cp_out_a_file_a_directory_and_its_content(daemon: Daemon, box: str, tmp_path: Path) -> None:
    daemon.docker("cp", f"{box}:/data/file", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "hello\n"
    daemon.docker("cp", f"{box}:/data", str(tmp_path))
    assert (tmp_path / "data" / "sub" / "x").read_text() == "deep\n"
    daemon.docker("cp", f"{box}:/data/.", str(tmp_path / "content"))
    assert sorted(p.name for p in (tmp_path / "content").iterdir()) == ["file", "sub"]
    hostname = daemon.out("cp", f"{box}:/etc/hostname", "-")  # a tar on stdout
    assert b"hostname" in hostname.encode()


def test_cp_in_a_file_and_from_stdin(daemon: Daemon, box: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from-host\n")
    daemon.docker("cp", str(tmp_path / "in.txt"), f"{box}:/tmp/")
    assert daemon.out("exec", box, "cat", "/tmp/in.txt") == "from-host"
    daemon.docker("cp", str(tmp_path / "in.txt"), f"{box}:/tmp/renamed")
    assert daemon.out("exec", box, "cat", "/tmp/renamed") == "from-host"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("piped/file")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"piped"))
    daemon.docker("cp", "-", f"{box}:/tmp", input=buf.getvalue())
    assert daemon.out("exec", box, "cat", "/tmp/piped/file") == "piped"


def test_symlinks_never_lead_out_of_the_container(daemon: Daemon, box: str, tmp_path: Path) -> None:
    # /tmp/root -> / and /tmp/up -> ../../../etc resolve inside the container's root.
    daemon.docker("cp", f"{box}:/tmp/root/etc/hostname", str(tmp_path / "h"))
    assert (tmp_path / "h").read_text().strip() == box[:12]
    daemon.docker("cp", f"{box}:/tmp/up/passwd", str(tmp_path / "p"))
    assert (tmp_path / "p").read_text() == daemon.out("exec", box, "cat", "/etc/passwd") + "\n"
    marker = Path("/etc/dockyard-cp-escape-test")
    assert not marker.exists()
    (tmp_path / "dockyard-cp-escape-test").write_text("x")
    daemon.docker("cp", str(tmp_path / "dockyard-cp-escape-test"), f"{box}:/tmp/up/")
    assert not marker.exists()  # it landed in the container's /etc
    assert daemon.out("exec", box, "cat", "/etc/dockyard-cp-escape-test") == "x"


def test_hostile_archives_are_refused(daemon: Daemon, box: str) -> None:
    api = daemon.client().api
    for name in ("../escape", "/abs/escape"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        try:
            api.put_archive(box, "/tmp", buf.getvalue())
        except docker.errors.APIError as exc:
            assert exc.status_code == 400
    assert not Path("/escape").exists() and not Path("/abs/escape").exists()


def test_cp_errors(daemon: Daemon, box: str, tmp_path: Path) -> None:
    missing = daemon.docker("cp", f"{box}:/nonexistent", str(tmp_path), check=False)
    assert missing.returncode != 0
    assert "Could not find the file /nonexistent in container" in missing.stderr.decode()
    (tmp_path / "f").write_text("x")
    not_dir = daemon.client().api
    with pytest.raises(docker.errors.APIError) as info:
        not_dir.put_archive(box, "/data/file", b"")
    assert info.value.status_code == 400


def test_cp_into_a_stopped_container_and_out_again(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    cid = daemon.out("create", busybox, "cat", "/tmp/copied")
    try:
        (tmp_path / "copied").write_text("into-stopped\n")
        daemon.docker("cp", str(tmp_path / "copied"), f"{cid}:/tmp/")
        assert daemon.out("start", "-a", cid) == "into-stopped"
        daemon.docker("wait", cid)  # its exit is recorded (and its mount released)
        daemon.docker("cp", f"{cid}:/tmp/copied", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "into-stopped\n"
        merged = json.loads(daemon.out("inspect", cid))[0]["GraphDriver"]["Data"]["MergedDir"]

        def mounted() -> bool:
            return any(line.split()[1] == merged for line in Path("/proc/mounts").read_text().splitlines())

        # The CLI may hang up as soon as the tar ends: the release follows a moment later.
        deadline = time.monotonic() + 5
        while mounted() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not mounted()
    finally:
        daemon.docker("rm", cid)


def test_cp_respects_read_only_mounts(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    cid = daemon.out("run", "-d", "-v", f"{tmp_path / 'ro'}:/ro:ro", busybox, "sleep", "300")
    try:
        (tmp_path / "f").write_text("x")
        result = daemon.docker("cp", str(tmp_path / "f"), f"{cid}:/ro/", check=False)
        assert result.returncode != 0 and "mounted volume is marked read-only" in result.stderr.decode()
        assert list((tmp_path / "ro").iterdir()) == []
    finally:
        daemon.docker("rm", "-f", cid)


def test_diff_and_export(daemon: Daemon, box: str) -> None:
    daemon.docker("exec", box, "sh", "-c", "rm /etc/group; touch /etc/newfile")
    changes = daemon.out("diff", box).splitlines()
    assert "A /data" in changes and "A /data/file" in changes
    assert "D /etc/group" in changes and "A /etc/newfile" in changes and "C /etc" in changes
    exported = daemon.docker("export", box).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = set(tar.getnames())
    assert {"bin/busybox", "data/file", "etc/newfile"} <= names
    assert "etc/group" not in names
    fresh = daemon.out("create", "busybox", "true")
    try:
        assert daemon.client().api.diff(fresh) is None  # nothing changed: null, as dockerd
    finally:
        daemon.docker("rm", fresh)
