"""Many at once, and readers that never wait: ps and inspect answer while a stop waits on a
container that ignores SIGTERM, and while a big load runs."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
import time

from tests.conftest import Daemon

# Generous: what is checked is that readers do not wait for the slow operation (10 s), not speed.
NOT_BLOCKED = 2.0


def _parallel(daemon: Daemon, argv: list[str], n: int) -> list[subprocess.CompletedProcess[bytes]]:
    procs = [subprocess.Popen(["docker", *argv], env=daemon.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(n)]  # fmt: skip
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_twenty_run_d_at_once(daemon: Daemon, busybox: str) -> None:
    results = _parallel(daemon, ["run", "-d", "--label", "conc=d", busybox, "sleep", "60"], 20)
    try:
        assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
        running = daemon.out("ps", "-q", "--filter", "label=conc=d").split()
        assert len(running) == 20
    finally:
        ids = daemon.out("ps", "-aq", "--filter", "label=conc=d").split()
        if ids:
            daemon.docker("rm", "-f", *ids, timeout=120)


def test_twenty_run_rm_at_once(daemon: Daemon, busybox: str) -> None:
    results = _parallel(daemon, ["run", "--rm", "--label", "conc=rm", busybox, "echo", "concurrent"], 20)
    assert [(r.returncode, r.stdout) for r in results] == [(0, b"concurrent\n")] * 20
    assert daemon.out("ps", "-aq", "--filter", "label=conc=rm") == ""


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def test_readers_do_not_wait_for_a_slow_stop(daemon: Daemon, busybox: str) -> None:
    cid = daemon.out("run", "-d", busybox, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
    api = daemon.client().api
    stopping = threading.Thread(target=lambda: daemon.docker("stop", "-t", "10", cid, timeout=60))
    stopping.start()
    try:
        time.sleep(0.5)  # the stop is waiting on it now
        assert _timed(lambda: api.containers(all=True)) < NOT_BLOCKED
        assert _timed(lambda: api.inspect_container(cid)) < NOT_BLOCKED
        assert api.inspect_container(cid)["State"]["Running"] is True
    finally:
        stopping.join()
        daemon.docker("rm", "-f", cid)


def test_readers_do_not_wait_for_a_big_load(daemon: Daemon, busybox: str) -> None:
    image = daemon.docker("save", busybox).stdout
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 100 * 1024 * 1024
        tar.addfile(info, io.BytesIO(os.urandom(1024) * (info.size // 1024)))
    big = layer.getvalue()
    api = daemon.client().api
    importing = subprocess.Popen(["docker", "import", "-", "conc-big:1"], env=daemon.env(), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert importing.stdin is not None
        feeder = threading.Thread(target=lambda: (importing.stdin.write(big), importing.stdin.close()))  # type: ignore[union-attr]
        feeder.start()
        worst = 0.0
        while importing.poll() is None:
            worst = max(worst, _timed(lambda: api.containers(all=True)), _timed(lambda: api.images()))
            time.sleep(0.05)
        feeder.join()
        assert importing.returncode == 0, importing.stderr.read() if importing.stderr else b""
        assert worst < NOT_BLOCKED
    finally:
        daemon.docker("rmi", "-f", "conc-big:1", check=False)
    assert image  # the save above ran against the same daemon meanwhile
