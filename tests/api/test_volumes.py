"""Named volumes of the local driver, driven by the docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import re

import docker.errors
import pytest

from tests.conftest import Daemon


def _name(tag: str) -> str:
    return f"dyv-{tag}-{os.urandom(3).hex()}"


def test_create_inspect_ls_rm_with_the_cli(daemon: Daemon) -> None:
    name = _name("cli")
    assert daemon.out("volume", "create", "--label", "tier=db", name) == name
    try:
        (doc,) = json.loads(daemon.out("volume", "inspect", name))
        assert doc["Name"] == name
        assert doc["Driver"] == "local"
        assert doc["Scope"] == "local"
        assert doc["Labels"] == {"tier": "db"}
        assert doc["Mountpoint"] == str(daemon.data_root / "volumes" / name / "_data")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["CreatedAt"])
        assert os.path.isdir(doc["Mountpoint"])
        assert name in daemon.out("volume", "ls", "-q").split()
        assert daemon.out("volume", "ls", "-q", "--filter", "label=tier=db", "--filter", f"name={name}") == name
        assert daemon.out("volume", "ls", "-q", "--filter", "label=tier=web", "--filter", f"name={name}") == ""
        assert name in daemon.out("volume", "ls", "-q", "--filter", "dangling=true").split()
        assert name in daemon.out("volume", "ls", "-q", "--filter", "driver=local").split()
        # Creating it again is no error and changes nothing.
        assert daemon.out("volume", "create", name) == name
        assert json.loads(daemon.out("volume", "inspect", name))[0]["CreatedAt"] == doc["CreatedAt"]
    finally:
        daemon.docker("volume", "rm", name)
    assert not (daemon.data_root / "volumes" / name).exists()
    gone = daemon.docker("volume", "inspect", name, check=False)
    assert gone.returncode == 1 and f"get {name}: no such volume" in gone.stderr.decode()
    again = daemon.docker("volume", "rm", name, check=False)
    assert again.returncode == 1 and f"get {name}: no such volume" in again.stderr.decode()
    daemon.docker("volume", "rm", "-f", name)  # -f: a missing volume is no error


def test_a_volume_without_a_name_gets_64_hex(daemon: Daemon) -> None:
    name = daemon.out("volume", "create")
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", name)
        # dockerd labels a volume made without a name anonymous: `volume prune` takes it.
        assert json.loads(daemon.out("volume", "inspect", name))[0]["Labels"] == {"com.docker.volume.anonymous": ""}
        assert (daemon.data_root / "volumes" / name / "_data").is_dir()
    finally:
        daemon.docker("volume", "rm", name)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("a", "volume name is too short, names should be at least two alphanumeric characters"),
        ("has/slash", '"has/slash" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'),
        ("..", '".." includes invalid characters for a local volume name'),
        ("-dash", '"-dash" includes invalid characters'),
    ],
)
def test_bad_names_are_refused_and_leave_nothing(daemon: Daemon, name: str, words: str) -> None:
    api = daemon.client().api
    root = daemon.data_root / "volumes"
    before = sorted(root.iterdir()) if root.exists() else []
    with pytest.raises(docker.errors.APIError) as caught:
        api.create_volume(name)
    assert caught.value.status_code == 400
    assert words in caught.value.explanation
    assert name not in [v["Name"] for v in api.volumes()["Volumes"] or []]
    assert (sorted(root.iterdir()) if root.exists() else []) == before
    assert not (root / "has").exists()


def test_another_driver_is_a_plugin_not_found(daemon: Daemon) -> None:
    name = _name("drv")
    result = daemon.docker("volume", "create", "-d", "nosuch", name, check=False)
    assert result.returncode == 1
    assert f'create {name}: error looking up volume plugin nosuch: plugin "nosuch" not found' in result.stderr.decode()
    assert daemon.docker("volume", "inspect", name, check=False).returncode == 1
    assert not (daemon.data_root / "volumes" / name).exists()


def test_bad_driver_options_are_refused_and_leave_nothing(daemon: Daemon) -> None:
    name = _name("opt")
    result = daemon.docker("volume", "create", "-o", "type=tmpfs", name, check=False)
    assert result.returncode == 1 and f'create {name}: missing required option: "device"' in result.stderr.decode()
    bad = daemon.docker("volume", "create", "-o", "colour=red", name, check=False)
    assert bad.returncode == 1 and f'create {name}: invalid option: "colour"' in bad.stderr.decode()
    assert daemon.docker("volume", "inspect", name, check=False).returncode == 1
    assert not (daemon.data_root / "volumes" / name).exists()


def test_docker_py_volume_model(daemon: Daemon) -> None:
    client = daemon.client()
    name = _name("py")
    v = client.volumes.create(name, driver="local", labels={"a": "1"})
    try:
        assert v.name == name
        assert client.volumes.get(name).attrs["Labels"] == {"a": "1"}
        assert name in [x.name for x in client.volumes.list(filters={"label": "a=1"})]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(_name("missing"))
    finally:
        v.remove()
    assert name not in [x.name for x in client.volumes.list()]


def test_list_filters_are_checked(daemon: Daemon) -> None:
    api = daemon.client().api
    with pytest.raises(docker.errors.APIError) as caught:
        api.volumes(filters={"colour": "red"})
    assert caught.value.status_code == 400 and "invalid filter 'colour'" in caught.value.explanation
    with pytest.raises(docker.errors.APIError) as caught:
        api.volumes(filters={"dangling": "maybe"})
    assert caught.value.status_code == 400 and "invalid filter 'dangling=maybe'" in caught.value.explanation


def test_prune_takes_anonymous_ones_unless_all(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("volume", "create", "named")
    d.docker("volume", "create", "--label", "com.docker.volume.anonymous=", "anon1")
    d.docker("volume", "create", "--label", "keep=yes", "kept")
    out = d.out("volume", "prune", "-f")
    assert "anon1" in out and "named" not in out
    assert sorted(d.out("volume", "ls", "-q").split()) == ["kept", "named"]
    out = d.out("volume", "prune", "-f", "--all", "--filter", "label!=keep")
    assert "named" in out and "kept" not in out
    assert d.out("volume", "ls", "-q").split() == ["kept"]
    result = d.client().api.prune_volumes(filters={"all": "true"})
    assert result["VolumesDeleted"] == ["kept"]
    assert d.out("volume", "ls", "-q") == ""
    assert list((d.data_root / "volumes").iterdir()) == []


def test_volumes_survive_a_daemon_restart(daemon_factory) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("volume", "create", "--label", "x=y", "lasting")
    before = json.loads(d.out("volume", "inspect", "lasting"))[0]
    d.stop()
    d.start()
    assert json.loads(d.out("volume", "inspect", "lasting"))[0] == before


def test_system_df_shows_volume_sizes_and_references(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "-", "dfbox:latest", input=busybox_tar)
    image = "dfbox:latest"
    d.docker("create", "--name", "holder", "-v", "held:/d", image, "true")
    d.docker("run", "--rm", "-v", "sized:/d", image, "dd", "if=/dev/zero", "of=/d/f", "bs=4096", "count=64")
    usage = {v["Name"]: v["UsageData"] for v in d.client().api.df()["Volumes"]}
    assert usage["held"] == {"RefCount": 1, "Size": 0}
    assert usage["sized"]["RefCount"] == 0 and usage["sized"]["Size"] >= 64 * 4096
    out = d.out("system", "df", "-v")
    assert "held" in out and "sized" in out


def test_a_named_volume_is_made_on_first_use_and_keeps_its_data(daemon: Daemon, busybox: str) -> None:
    name = _name("use")
    try:
        daemon.docker("run", "--name", f"{name}-w", "-v", f"{name}:/data", busybox, "sh", "-c", "echo kept > /data/f")
        (vol,) = json.loads(daemon.out("volume", "inspect", name))
        assert vol["Labels"] is None and vol["Options"] is None
        (mount,) = json.loads(daemon.out("inspect", f"{name}-w"))[0]["Mounts"]
        assert mount == {"Type": "volume", "Name": name, "Source": vol["Mountpoint"], "Destination": "/data",
                         "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}  # fmt: skip
        assert open(os.path.join(vol["Mountpoint"], "f")).read() == "kept\n"
        # The next container sees it; read-only really is read-only.
        out = daemon.docker("run", "--rm", "-v", f"{name}:/data:ro", busybox, "sh", "-c", "cat /data/f; echo x > /data/g",
                            check=False)  # fmt: skip
        assert out.stdout == b"kept\n" and out.returncode != 0 and b"Read-only file system" in out.stderr
        in_use = daemon.docker("volume", "rm", name, check=False)
        cid = daemon.out("inspect", "-f", "{{.Id}}", f"{name}-w")
        assert in_use.returncode == 1
        assert f"remove {name}: volume is in use - [{cid}]" in in_use.stderr.decode()
        assert daemon.docker("volume", "rm", "-f", name, check=False).returncode == 1  # -f does not help
        assert name not in daemon.out("volume", "ls", "-q", "--filter", "dangling=true").split()
        daemon.docker("rm", f"{name}-w")  # removing the container never removes the volume
        assert json.loads(daemon.out("volume", "inspect", name))[0]["Name"] == name
        assert name in daemon.out("volume", "ls", "-q", "--filter", "dangling=true").split()
    finally:
        daemon.docker("rm", "-f", f"{name}-w", check=False)
        daemon.docker("volume", "rm", "-f", name, check=False)


def test_mount_type_volume_with_docker_py(daemon: Daemon, busybox: str) -> None:
    from docker.types import Mount

    client = daemon.client()
    name = _name("mnt")
    try:
        out = client.containers.run(busybox, ["sh", "-c", "echo one > /v/f"], remove=True,
                                    mounts=[Mount("/v", name, type="volume")])  # fmt: skip
        assert out == b""
        c = client.containers.create(busybox, ["cat", "/v/f"], mounts=[Mount("/v", name, type="volume", read_only=True)])
        try:
            (mount,) = c.attrs["Mounts"]
            assert mount["Type"] == "volume" and mount["Name"] == name and mount["RW"] is False
            assert c.attrs["HostConfig"]["Mounts"][0]["Source"] == name
            c.start()
            assert c.wait()["StatusCode"] == 0
            assert c.logs() == b"one\n"
        finally:
            c.remove(force=True)
    finally:
        client.api.remove_volume(name, force=True)


def test_an_empty_volume_gets_the_image_content_once(daemon: Daemon, busybox: str) -> None:
    name, bare, tag = _name("copy"), _name("bare"), f"{_name('img')}:1"
    maker = f"{name}-maker"
    script = ("mkdir -p /srv/sub && echo x > /srv/sub/f && chown 65534:65534 /srv/sub/f && chmod 640 /srv/sub/f"
              " && chmod 750 /srv && chown 65534:65534 /srv && ln -s /etc/passwd /srv/link")  # fmt: skip
    try:
        daemon.docker("run", "--name", maker, busybox, "sh", "-c", script)
        daemon.docker("commit", maker, tag)
        listing = daemon.out("run", "--rm", "-v", f"{name}:/srv", tag, "ls", "-ln", "/srv", "/srv/sub")
        assert "link -> /etc/passwd" in listing
        assert re.search(r"-rw-r-----\s+1 65534\s+65534\s+2 .* f", listing), listing
        data = json.loads(daemon.out("volume", "inspect", name))[0]["Mountpoint"]
        st = os.stat(data)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (65534, 65534, 0o750)
        assert os.readlink(os.path.join(data, "link")) == "/etc/passwd"  # a link, not the host's file
        # Not empty any more: a second mount copies nothing over what the container wrote.
        daemon.docker("run", "--rm", "-v", f"{name}:/srv", tag, "sh", "-c", "rm /srv/sub/f; echo mine > /srv/own")
        assert daemon.out("run", "--rm", "-v", f"{name}:/srv", tag, "ls", "/srv/sub") == ""
        # nocopy: the volume stays empty.
        assert daemon.out("run", "--rm", "-v", f"{bare}:/srv:nocopy", tag, "ls", "-A", "/srv") == ""
        assert os.listdir(json.loads(daemon.out("volume", "inspect", bare))[0]["Mountpoint"]) == []
    finally:
        daemon.docker("rm", "-f", maker, check=False)
        daemon.docker("rmi", tag, check=False)
        daemon.docker("volume", "rm", "-f", name, bare, check=False)
