"""docker container/image/system prune and system df, on a private daemon."""

from __future__ import annotations

import json

from tests.conftest import Daemon


def test_prune_and_disk_usage(daemon_factory, busybox_tar: bytes) -> None:  # type: ignore[no-untyped-def]
    d: Daemon = daemon_factory()
    d.docker("import", "-", "busybox:latest", input=busybox_tar)
    d.docker("import", "-", input=busybox_tar)  # a dangling twin sharing the same layer
    d.docker("run", "--name", "writer", "--label", "keep=no", "busybox",
             "sh", "-c", "dd if=/dev/zero of=/blob bs=1k count=300 2>/dev/null")  # fmt: skip
    d.docker("run", "--name", "kept", "--label", "keep=yes", "busybox", "true")
    d.docker("run", "-d", "--name", "running", "busybox", "sleep", "60")

    sizes = {row["Names"]: row for row in map(json.loads, d.out("ps", "-a", "-s", "--format", "{{json .}}").splitlines())}
    assert sizes["writer"]["Size"].startswith("307kB")
    assert d.out("inspect", "-s", "-f", "{{.SizeRw}}", "writer") == "307200"

    df = json.loads(d.out("system", "df", "--format", "{{json .}}").splitlines()[1])
    assert df["Type"] == "Containers" and df["TotalCount"] == "3" and df["Active"] == "1"

    out = d.out("container", "prune", "-f", "--filter", "label=keep=no")
    assert "Total reclaimed space: 307.2kB" in out
    names = set(d.out("ps", "-a", "--format", "{{.Names}}").split())
    assert names == {"kept", "running"}

    out = d.out("image", "prune", "-f")  # the dangling twin goes; its layer is shared, so 0B
    assert "deleted: sha256:" in out and "Total reclaimed space: 0B" in out
    assert d.out("images", "-q", "--filter", "dangling=true") == ""

    out = d.out("image", "prune", "-a", "-f")  # busybox is used by containers: kept
    assert "busybox" in d.out("images", "--format", "{{.Repository}}")

    d.docker("rm", "-f", "running", "kept")
    out = d.out("system", "prune", "-f")
    out = d.out("image", "prune", "-a", "-f")
    assert "untagged: busybox:latest" in out
    assert d.out("images", "-aq") == ""
    assert not any((d.data_root / "overlay").iterdir()) or {p.name for p in (d.data_root / "overlay").iterdir()} == {"empty"}
