"""Anonymous volumes (-v /path, the image's VOLUME, --mount without a source) and
--volumes-from, driven by the docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import docker.errors
import pytest

from tests.conftest import Daemon

ANON = "com.docker.volume.anonymous"


def _name(tag: str) -> str:
    return f"dya-{tag}-{os.urandom(3).hex()}"


def _volumes(d: Daemon) -> set[str]:
    return set(d.out("volume", "ls", "-q").split())


def _mounts(d: Daemon, ref: str) -> dict[str, dict[str, object]]:
    return {m["Destination"]: m for m in json.loads(d.out("inspect", ref))[0]["Mounts"]}


def test_dash_v_path_is_an_anonymous_volume_in_dockerds_shape(daemon: Daemon, busybox: str) -> None:
    name = _name("shape")
    before = _volumes(daemon)
    daemon.docker("create", "--name", name, "-v", "/data", "-v", "/cache/", busybox, "true")
    try:
        (doc,) = json.loads(daemon.out("inspect", name))
        assert doc["HostConfig"]["Binds"] is None and "Mounts" not in doc["HostConfig"]  # as the user sent them
        assert doc["Config"]["Volumes"] == {"/data": {}, "/cache/": {}}
        made = _volumes(daemon) - before
        assert len(made) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", v) for v in made)
        mounts = {m["Destination"]: m for m in doc["Mounts"]}
        assert set(mounts) == {"/data", "/cache"}
        data = mounts["/data"]
        assert data["Name"] in made
        assert data == {"Type": "volume", "Name": data["Name"], "Destination": "/data", "Driver": "local", "Mode": "",
                        "RW": True, "Propagation": "",
                        "Source": str(daemon.data_root / "volumes" / str(data["Name"]) / "_data")}  # fmt: skip
        (vol,) = json.loads(daemon.out("volume", "inspect", str(data["Name"])))
        assert vol["Labels"] == {ANON: ""} and os.path.isdir(vol["Mountpoint"])
        # In use while the container exists.
        in_use = daemon.docker("volume", "rm", str(data["Name"]), check=False)
        assert in_use.returncode == 1 and "volume is in use" in in_use.stderr.decode()
        # The container uses it: what it writes is there.
        daemon.docker("start", "-a", name)
        daemon.docker("run", "--rm", "--volumes-from", name, busybox, "sh", "-c", "echo hi > /data/f")
        assert Path(vol["Mountpoint"], "f").read_text() == "hi\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)
    # Plain rm keeps them (dangling now, and `volume prune` would take them).
    left = _volumes(daemon) - before
    assert left == made
    assert made <= set(daemon.out("volume", "ls", "-q", "--filter", "dangling=true").split())
    daemon.docker("volume", "rm", *made)


def test_rm_v_removes_anonymous_volumes_and_keeps_named_ones(daemon: Daemon, busybox: str) -> None:
    name, named = _name("rmv"), _name("named")
    before = _volumes(daemon)
    cid = daemon.out("create", "--name", name, "-v", "/anon", "-v", f"{named}:/named", busybox, "true")
    try:
        anon = str(_mounts(daemon, name)["/anon"]["Name"])
        assert _volumes(daemon) - before == {anon, named}
        daemon.docker("rm", "-v", name)
        assert _volumes(daemon) - before == {named}  # modern dockerd keeps named ones on rm -v
        assert not (daemon.data_root / "volumes" / anon).exists()
        events = daemon.out("events", "--since", "0", "--until", f"{time.time():.9f}", "--filter", "type=volume",
                            "--filter", f"volume={anon}", "--format", "{{.Action}}")  # fmt: skip
        assert events.split() == ["create", "destroy"]
        assert cid
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("volume", "rm", "-f", named, check=False)


def test_run_rm_removes_its_anonymous_volumes_but_not_a_volumes_from_one(daemon: Daemon, busybox: str) -> None:
    src = _name("src")
    before = _volumes(daemon)
    daemon.docker("run", "--rm", "-v", "/scratch", busybox, "sh", "-c", "echo x > /scratch/f")
    assert _volumes(daemon) == before  # --rm took it
    daemon.docker("create", "--name", src, "-v", "/shared", busybox, "true")
    try:
        shared = str(_mounts(daemon, src)["/shared"]["Name"])
        # --rm with --volumes-from: src still uses the volume, so it stays (dockerd skips it).
        daemon.docker("run", "--rm", "--volumes-from", src, busybox, "sh", "-c", "echo kept > /shared/f")
        assert shared in _volumes(daemon)
        assert daemon.out("run", "--rm", "--volumes-from", src, busybox, "cat", "/shared/f") == "kept"
        daemon.docker("rm", "-v", src)
        assert _volumes(daemon) == before
    finally:
        daemon.docker("rm", "-f", src, check=False)


def test_the_images_volume_gets_its_content_and_nocopy_is_honoured(daemon: Daemon, busybox: str) -> None:
    maker, tag = _name("maker"), f"{_name('img')}:1"
    before = _volumes(daemon)
    try:
        daemon.docker("run", "--name", maker, busybox, "sh", "-c", "mkdir -p /srv && echo image > /srv/f")
        daemon.docker("commit", "--change", "VOLUME /srv", maker, tag)
        assert daemon.out("run", "--rm", tag, "cat", "/srv/f") == "image"  # copied up into the anonymous volume
        assert _volumes(daemon) == before  # and removed with the --rm container
        c = _name("c")
        daemon.docker("run", "--name", c, tag, "sh", "-c", "echo more >> /srv/f")
        vol = _mounts(daemon, c)["/srv"]
        assert vol["Mode"] == "" and vol["Type"] == "volume"
        assert Path(str(vol["Source"]), "f").read_text() == "image\nmore\n"
        daemon.docker("rm", "-v", c)
        # A user mount at the image's VOLUME path replaces the anonymous volume.
        assert daemon.out("run", "--rm", "--mount", "type=volume,target=/srv,volume-nocopy", tag, "ls", "-A", "/srv") == ""
        assert daemon.out("run", "--rm", "--tmpfs", "/srv", tag, "ls", "-A", "/srv") == ""
        assert _volumes(daemon) == before
    finally:
        daemon.docker("rm", "-f", maker, check=False)
        daemon.docker("rmi", tag, check=False)


def test_mount_type_volume_without_source_with_docker_py(daemon: Daemon, busybox: str) -> None:
    from docker.types import Mount

    api = daemon.client().api
    before = _volumes(daemon)
    config = api.create_host_config(mounts=[Mount("/m", None, type="volume", labels={"k": "v"})])
    cid = api.create_container(busybox, ["true"], volumes=["/cfg"], host_config=config)["Id"]
    try:
        doc = api.inspect_container(cid)
        mounts = {m["Destination"]: m for m in doc["Mounts"]}
        assert mounts["/m"]["Mode"] == "z" and mounts["/m"]["Type"] == "volume"  # a user mount, as dockerd's
        assert mounts["/cfg"]["Mode"] == ""
        assert doc["HostConfig"]["Mounts"] == [{"Type": "volume", "Target": "/m", "VolumeOptions": {"Labels": {"k": "v"}}}]
        assert api.inspect_volume(mounts["/m"]["Name"])["Labels"] == {"k": "v", ANON: ""}
        assert _volumes(daemon) - before == {mounts["/m"]["Name"], mounts["/cfg"]["Name"]}
        api.remove_container(cid, v=True)
        assert _volumes(daemon) == before
    finally:
        try:
            api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass


def test_volumes_from_ro_is_read_only_and_shows_back(daemon: Daemon, busybox: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src, named, reader = _name("src"), _name("nv"), _name("reader")
    host = tmp_path / "bound"
    host.mkdir()
    (host / "h").write_text("host\n")
    daemon.docker("create", "--name", src, "-v", "/anon", "-v", f"{named}:/named", "-v", f"{host}:/bound",
                  "--tmpfs", "/tmpfs", busybox, "true")  # fmt: skip
    try:
        daemon.docker("run", "--rm", "--volumes-from", src, busybox, "sh", "-c", "echo a > /anon/f; echo n > /named/f")
        daemon.docker("create", "--name", reader, "--volumes-from", f"{src}:ro", busybox, "sh", "-c",
                      "cat /anon/f /named/f /bound/h; echo x > /anon/g")  # fmt: skip
        (doc,) = json.loads(daemon.out("inspect", reader))
        assert doc["HostConfig"]["VolumesFrom"] == [f"{src}:ro"]
        theirs, mine = _mounts(daemon, src), {m["Destination"]: m for m in doc["Mounts"]}
        assert set(mine) == {"/anon", "/named", "/bound"}  # not the tmpfs
        for dest, m in mine.items():
            assert m["Source"] == theirs[dest]["Source"] and m.get("Name") == theirs[dest].get("Name")
            assert m["RW"] is False and m["Mode"] == ""
        out = daemon.docker("start", "-a", reader, check=False)
        assert out.stdout == b"a\nn\nhost\n"
        assert b"Read-only file system" in out.stderr
        assert json.loads(daemon.out("inspect", reader))[0]["State"]["ExitCode"] != 0
        # The volumes count as used by the reader too.
        rm = daemon.docker("volume", "rm", named, check=False)
        assert rm.returncode == 1 and doc["Id"] in rm.stderr.decode()
        # :rw (and no mode) keep the source's modes; the container's own mount wins a clash, and
        # a Config.Volumes path (-v /anon) an inherited mount covers gets no volume of its own.
        other, mine_named = _name("own"), _name("mine")
        before = _volumes(daemon)
        daemon.docker("create", "--name", other, "--volumes-from", f"{src}:rw", "-v", f"{mine_named}:/named",
                      "-v", "/anon", busybox, "true")  # fmt: skip
        own = _mounts(daemon, other)
        assert own["/anon"]["Name"] == theirs["/anon"]["Name"] and own["/anon"]["RW"] is True
        assert own["/named"]["Name"] == mine_named and own["/named"]["Mode"] == "z"
        assert _volumes(daemon) - before == {mine_named}
        daemon.docker("rm", "-v", other)
        assert theirs["/anon"]["Name"] in _volumes(daemon)  # src's anonymous volume stays: src uses it
        daemon.docker("volume", "rm", mine_named)
    finally:
        daemon.docker("rm", "-f", "-v", reader, check=False)
        daemon.docker("rm", "-f", "-v", src, check=False)
        daemon.docker("volume", "rm", "-f", named, check=False)


@pytest.mark.parametrize(
    ("entry", "status", "words"),
    [("dya-nosuch", 400, "No such container: dya-nosuch"), ("SRC:nocopy", 400, "invalid mode: nocopy"),
     ("SRC:rshared", 400, "invalid mode: rshared")],
)  # fmt: skip
def test_bad_volumes_from_leaves_nothing(daemon: Daemon, busybox: str, entry: str, status: int, words: str) -> None:
    src = _name("badsrc")
    daemon.docker("create", "--name", src, "-v", "/x", busybox, "true")
    try:
        before, containers = _volumes(daemon), daemon.out("ps", "-aq", "--no-trunc")
        api = daemon.client().api
        with pytest.raises(docker.errors.APIError) as caught:
            api.create_container(busybox, ["true"], volumes=["/fresh"],
                                 host_config=api.create_host_config(volumes_from=[entry.replace("SRC", src)]))  # fmt: skip
        assert caught.value.status_code == status
        assert words in caught.value.explanation
        assert _volumes(daemon) == before and daemon.out("ps", "-aq", "--no-trunc") == containers
        cli = daemon.docker("run", "--volumes-from", "dya-nosuch", busybox, "true", check=False)
        assert cli.returncode == 125 and "No such container: dya-nosuch" in cli.stderr.decode()
    finally:
        daemon.docker("rm", "-v", src)


def test_a_failed_create_removes_the_anonymous_volumes_it_made(daemon: Daemon, busybox: str) -> None:
    name, named = _name("taken"), _name("firstuse")
    daemon.docker("create", "--name", name, busybox, "true")
    try:
        before = _volumes(daemon)
        # The name clash is found after the volumes were made.
        clash = daemon.docker("create", "--name", name, "-v", "/a", "-v", f"{named}:/n",
                              "--mount", "type=volume,target=/b", busybox, "true", check=False)  # fmt: skip
        assert clash.returncode != 0 and "is already in use" in clash.stderr.decode()
        assert _volumes(daemon) - before <= {named}  # the anonymous ones are gone; a named one may stay, as dockerd's
        assert not any(re.fullmatch(r"[0-9a-f]{64}", v) for v in _volumes(daemon) - before)
    finally:
        daemon.docker("rm", "-f", name, check=False)
        daemon.docker("volume", "rm", "-f", named, check=False)


def test_anonymous_volumes_keep_their_names_across_a_daemon_restart(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "restartbox:latest", input=busybox_tar)
    d.docker("create", "--name", "keeper", "-v", "/data", "restartbox:latest", "sh", "-c", "echo run >> /data/log")
    d.docker("create", "--name", "user", "--volumes-from", "keeper:ro", "restartbox:latest", "cat", "/data/log")
    d.docker("start", "-a", "keeper")
    mounts = _mounts(d, "keeper")
    d.stop()
    d.start()
    assert _mounts(d, "keeper") == mounts
    assert _mounts(d, "user")["/data"]["Name"] == mounts["/data"]["Name"]
    assert json.loads(d.out("inspect", "user"))[0]["HostConfig"]["VolumesFrom"] == ["keeper:ro"]
    d.docker("start", "-a", "keeper")  # the same volume again: the data is there
    assert d.out("start", "-a", "user") == "run\nrun"
    name = str(mounts["/data"]["Name"])
    d.docker("rm", "-v", "keeper")
    assert name in _volumes(d)  # user still has it
    d.docker("rm", "-v", "user")
    assert name not in _volumes(d)
    assert not (d.data_root / "volumes" / name).exists()


def test_a_rm_container_removed_by_the_daemon_takes_its_anonymous_volumes(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    """--rm's removal by the daemon itself: after the exit, and at start-up for one that exited meanwhile."""
    d: Daemon = daemon_factory()
    d.docker("import", "--change", 'CMD ["sh"]', "-", "rmbox:latest", input=busybox_tar)
    cid = d.out("run", "-d", "--rm", "-v", "/gone", "rmbox:latest", "sleep", "30")
    name = str(_mounts(d, cid)["/gone"]["Name"])
    d.docker("kill", cid)
    d.docker("wait", cid, check=False)
    for _ in range(100):
        if name not in _volumes(d):
            break
        time.sleep(0.05)
    assert name not in _volumes(d)
    # A --rm container that cannot start goes with its volumes.
    failed = d.docker("run", "--rm", "-v", "/never", "rmbox:latest", "/no/such/binary", check=False)
    assert failed.returncode != 0
    assert d.out("volume", "ls", "-q") == "" and d.out("ps", "-aq") == ""
