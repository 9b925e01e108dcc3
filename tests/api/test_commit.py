"""docker commit: a container's changes become an image on top of its own."""

from __future__ import annotations

import json

from tests.conftest import Daemon


def test_commit_keeps_the_changes_and_the_config(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", "-e", "FROM_RUN=1", busybox, "sh", "-c", "echo hello > /test; rm /etc/group")
    image = ""
    try:
        daemon.docker("wait", cid)
        image = daemon.out("commit", "-m", "a message", "-a", "tester", "-c", "ENV X=1", "-c", "LABEL k=v",
                           cid, "committed:1")  # fmt: skip
        assert image.startswith("sha256:")
        assert daemon.out("run", "--rm", "committed:1", "cat", "/test") == "hello"
        gone = daemon.docker("run", "--rm", "committed:1", "cat", "/etc/group", check=False)
        assert gone.returncode != 0  # the deletion is in the new layer too (a whiteout)
        doc = json.loads(daemon.out("image", "inspect", "committed:1"))[0]
        parent = json.loads(daemon.out("image", "inspect", busybox))[0]
        assert doc["Parent"] == parent["Id"]
        assert doc["Comment"] == "a message" and doc["Author"] == "tester"
        assert "X=1" in doc["Config"]["Env"] and "FROM_RUN=1" in doc["Config"]["Env"]
        assert doc["Config"]["Labels"]["k"] == "v"
        assert len(doc["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
        history = daemon.out("history", "--format", "{{.Comment}}", "committed:1").splitlines()
        assert history[0] == "a message"
    finally:
        daemon.docker("rm", "-f", cid)
        if image:
            daemon.docker("rmi", "-f", "committed:1", check=False)


def test_commit_of_a_running_container_pauses_it_and_docker_py(daemon: Daemon, busybox: str) -> None:
    client = daemon.client()
    container = client.containers.run(busybox, ["sh", "-c", "echo live > /live; exec sleep 300"], detach=True)
    try:
        while container.exec_run(["test", "-f", "/live"]).exit_code != 0:
            pass  # the shell has not written it yet
        image = container.commit(changes=["CMD [\"cat\", \"/live\"]"])
        assert client.containers.run(image.id, remove=True) == b"live\n"
        container.reload()
        assert container.status == "running"
        actions = [e["Action"] for e in client.api.events(since=0, until=int(__import__("time").time()) + 1,
                                                           filters={"container": container.id}, decode=True)]  # fmt: skip
        assert "pause" in actions and "unpause" in actions and "commit" in actions
        client.images.remove(image.id, force=True)
    finally:
        container.remove(force=True)
