"""docker build (the classic builder behind POST /build), driven by the docker CLI with
DOCKER_BUILDKIT=0 and by docker-py's images.build."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon


@pytest.fixture(autouse=True)
def _clean(daemon: Daemon) -> Iterator[None]:
    """What a test built (intermediate images, untagged results) and ran goes when it ends:
    the session's daemon is shared, and later tests count its images and containers."""
    images = set(daemon.out("images", "-aq", "--no-trunc").split())
    containers = set(daemon.out("ps", "-aq", "--no-trunc").split())
    yield
    new_containers = set(daemon.out("ps", "-aq", "--no-trunc").split()) - containers
    if new_containers:
        daemon.docker("rm", "-f", *new_containers, check=False)
    for _ in range(10):  # children first: what is left of a chain goes on the next pass
        new = set(daemon.out("images", "-aq", "--no-trunc").split()) - images
        if not new:
            break
        for image_id in new:
            daemon.docker("rmi", "-f", image_id, check=False)


def build(daemon: Daemon, context: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = daemon.env()
    env["DOCKER_BUILDKIT"] = "0"
    result = subprocess.run(["docker", "build", *args, str(context)], capture_output=True, text=True, env=env,
                            timeout=120, check=False)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"docker build exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def write(context: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return context


def steps_cached(output: str) -> list[bool]:
    """For each step after the first: whether it came from the cache."""
    chunks = output.split("Step ")[1:]
    return ["Using cache" in chunk for chunk in chunks[1:]]


def leftovers(daemon: Daemon) -> tuple[list[str], list[str]]:
    """Mounts under the daemon's overlay dir that no running container holds (a scratch
    rootfs of a build), and scratch build directories. Other tests' containers may run.
    The CLI leaves as soon as it read an error, maybe before the build's cleanup ran: that
    is given a few seconds."""
    deadline = time.monotonic() + 5
    while (found := _leftovers(daemon)) != ([], []) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _leftovers(daemon: Daemon) -> tuple[list[str], list[str]]:
    running = daemon.out("ps", "-q", "--no-trunc").split()
    held = {daemon.out("inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", c) for c in running}
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    mounts = [p for p in points if p.startswith(str(daemon.data_root / "overlay")) and p not in held]
    return mounts, sorted(p.name for p in (daemon.data_root / "tmp").glob("build-*"))


FIVE_STEPS = """FROM busybox
ENV GREETING=hello
COPY app.txt /app/
RUN cat /app/app.txt > /app/copy && echo "$GREETING from run"
CMD ["cat", "/app/copy"]
"""


def test_cold_build_then_all_cached_then_a_changed_file_invalidates_from_its_step(
    daemon: Daemon, busybox: str, tmp_path: Path
) -> None:
    ctx = write(tmp_path, {"Dockerfile": FIVE_STEPS, "app.txt": "v1\n"})
    images_before = set(daemon.out("images", "-aq", "--no-trunc").split())
    containers_before = set(daemon.out("ps", "-aq").split())
    cold = build(daemon, ctx, "-t", "bt-five:1")
    # The intermediate images are listed with -a only, as dockerd lists them.
    listed = set(daemon.out("images", "-q", "--no-trunc").split()) - images_before
    listed_all = set(daemon.out("images", "-aq", "--no-trunc").split()) - images_before
    assert len(listed) == 1 and len(listed_all) == 4
    assert "Step 1/5 : FROM busybox" in cold.stdout
    assert "hello from run" in cold.stdout  # the RUN's output is streamed
    assert " ---> Running in " in cold.stdout and " ---> Removed intermediate container" in cold.stdout
    assert "Successfully tagged bt-five:1" in cold.stdout
    assert steps_cached(cold.stdout) == [False, False, False, False]
    assert daemon.out("run", "--rm", "bt-five:1") == "v1"

    warm = build(daemon, ctx, "-t", "bt-five:1")
    assert steps_cached(warm.stdout) == [True, True, True, True]
    assert warm.stdout.split("Successfully built ")[1][:12] == cold.stdout.split("Successfully built ")[1][:12]

    (ctx / "app.txt").write_text("v2\n")
    changed = build(daemon, ctx, "-t", "bt-five:1")
    assert steps_cached(changed.stdout) == [True, False, False, False]
    assert daemon.out("run", "--rm", "bt-five:1") == "v2"

    history = daemon.out("history", "--no-trunc", "--format", "{{.CreatedBy}}", "bt-five:1").splitlines()
    assert history[0] == '/bin/sh -c #(nop)  CMD ["cat" "/app/copy"]'
    assert history[1].startswith("/bin/sh -c cat /app/app.txt")
    assert history[2].startswith("/bin/sh -c #(nop) COPY file:")
    assert history[3] == "/bin/sh -c #(nop)  ENV GREETING=hello"
    # Intermediate images are kept with their parents (that is the cache); nothing else is.
    assert leftovers(daemon) == ([], [])
    assert set(daemon.out("ps", "-aq").split()) == containers_before
    removed = daemon.out("rmi", "bt-five:1")
    # Its untagged parents go with it, but the ENV step's: the first build's COPY is its child
    # too. That build's images (untagged now, its tag moved) go with the prune. As dockerd,
    # the freed layers are listed too: 3 images (CMD, RUN, COPY) and 2 layers (RUN's, COPY's).
    assert removed.count("Deleted: ") == 5
    daemon.docker("image", "prune", "-f")
    # (prune may take other tests' dangling images too: only this build's must all be gone)
    assert not set(daemon.out("images", "-aq", "--no-trunc").split()) - images_before


def test_multi_stage_copy_from_target_and_two_tags(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": """ARG BASE=busybox
FROM $BASE AS builder
WORKDIR /src
RUN echo built > out && mkdir -p tree/sub && echo deep > tree/sub/f
FROM scratch AS final
COPY --from=builder /src/out /out
COPY --from=0 /src/tree /tree
COPY --from=busybox /bin/busybox /bin/busybox
FROM builder AS extra
RUN false
"""})
    out = build(daemon, ctx, "--target", "final", "-t", "bt-ms:a", "-t", "bt-ms:b")
    assert "Step 1/8 : ARG BASE=busybox" in out.stdout
    assert "Successfully tagged bt-ms:a" in out.stdout and "Successfully tagged bt-ms:b" in out.stdout
    ids = {daemon.out("image", "inspect", "-f", "{{.Id}}", t) for t in ("bt-ms:a", "bt-ms:b")}
    assert len(ids) == 1
    assert daemon.out("run", "--rm", "bt-ms:a", "/bin/busybox", "cat", "/out", "/tree/sub/f") == "built\ndeep"
    daemon.docker("rmi", "bt-ms:a", "bt-ms:b")


def test_a_failing_run_reports_its_exit_code_and_leaves_its_container(
    daemon: Daemon, busybox: str, tmp_path: Path
) -> None:
    # A HEALTHCHECK before does not run while a RUN runs (dockerd's withoutHealthcheck).
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nHEALTHCHECK --interval=1s CMD false\nRUN echo before\n"
                                         "RUN exit 7\n"})  # fmt: skip
    before = set(daemon.out("ps", "-aq").split())
    failed = build(daemon, ctx, check=False)
    assert failed.returncode == 7
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in failed.stderr
    left = set(daemon.out("ps", "-aq").split()) - before
    assert len(left) == 1  # as dockerd: the failed step's container, for debugging
    health = json.loads(daemon.out("inspect", *left))[0]["Config"]["Healthcheck"]
    assert health["Test"] == ["NONE"]
    daemon.docker("rm", *left)

    forced = build(daemon, ctx, "--force-rm", check=False)
    assert forced.returncode == 7
    assert set(daemon.out("ps", "-aq").split()) == before
    assert leftovers(daemon) == ([], [])


def test_a_syntax_error_names_the_line(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\nFOO bar\n"})
    result = build(daemon, ctx, check=False)
    assert result.returncode != 0
    assert "dockerfile parse error on line 3: unknown instruction: FOO" in result.stderr
    assert leftovers(daemon) == ([], [])


def test_a_syntax_directive_is_ignored_with_a_note(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "# syntax=docker/dockerfile:1.7\nFROM busybox\nCMD [\"true\"]\n"})
    result = build(daemon, ctx, "-t", "bt-syntax:1")
    assert "# syntax=docker/dockerfile:1.7 is ignored: the classic builder parses the Dockerfile" in result.stdout
    assert "Step 1/2 : FROM busybox" in result.stdout
    daemon.docker("rmi", "bt-syntax:1")


def test_copy_of_a_path_outside_the_context_is_refused(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nCOPY ../outside /x\n"})
    (tmp_path / "outside").write_text("secret")
    result = build(daemon, ctx, check=False)
    assert result.returncode != 0
    assert "forbidden path outside the build context: ../outside" in result.stderr
    assert leftovers(daemon) == ([], [])


def test_a_symlink_out_of_the_context_is_copied_as_the_link(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY link /link\nCOPY dir /dir/\n", "dir/plain": "p\n"})
    (ctx / "link").symlink_to("/etc/shadow")
    (ctx / "dir" / "up").symlink_to("../../../../etc/shadow")
    build(daemon, ctx, "-t", "bt-link:1")
    out = daemon.out("run", "--rm", "bt-link:1", "sh", "-c", "readlink /link; readlink /dir/up; cat /dir/plain")
    assert out.splitlines() == ["/etc/shadow", "../../../../etc/shadow", "p"]
    daemon.docker("rmi", "bt-link:1")


def test_dockerignore_chown_add_tar_workdir_and_config_steps(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as tar:
        data = b"from the tar\n"
        info = tarfile.TarInfo("inside/file")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ctx = write(tmp_path, {
        "Dockerfile": """FROM busybox
COPY . /ctx/
COPY --chown=nobody:nogroup --chmod=600 owned /owned
ADD files.tar.gz /unpacked/
WORKDIR /made/here
USER nobody
EXPOSE 8080/tcp
LABEL stage=test
VOLUME /data
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "-c"]
CMD ["pwd"]
""",
        ".dockerignore": "*.log\nsecret\n!keep.log\n",
        "a.log": "x", "keep.log": "k", "secret/s": "s", "owned": "o", "plain": "p",
    })  # fmt: skip
    (ctx / "files.tar.gz").write_bytes(layer.getvalue())
    build(daemon, ctx, "-t", "bt-rules:1")
    listing = daemon.out("run", "--rm", "--entrypoint", "ls", "bt-rules:1", "-A", "/ctx").split()
    assert "a.log" not in listing and "secret" not in listing
    assert "keep.log" in listing and "plain" in listing
    assert daemon.out("run", "--rm", "--entrypoint", "stat", "bt-rules:1", "-c", "%u:%g %a", "/owned") == "65534:65534 600"
    assert daemon.out("run", "--rm", "--entrypoint", "cat", "bt-rules:1", "/unpacked/inside/file") == "from the tar"
    assert daemon.out("run", "--rm", "bt-rules:1") == "/made/here"
    config = json.loads(daemon.out("image", "inspect", "bt-rules:1"))[0]["Config"]
    assert config["User"] == "nobody" and config["WorkingDir"] == "/made/here"
    assert "8080/tcp" in config["ExposedPorts"] and config["Labels"] == {"stage": "test"}
    assert "/data" in config["Volumes"] and config["StopSignal"] == "SIGINT"
    daemon.docker("rmi", "bt-rules:1")


def test_docker_py_build_with_build_args_labels_and_quiet(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nARG WHO=nobody\nRUN echo \"hi $WHO\" > /who\n"})
    client = daemon.client()
    image, logs = client.images.build(path=str(ctx), tag="bt-py:1", buildargs={"WHO": "py"},
                                      labels={"made-by": "docker-py", "price": "$WHO"}, rm=True)  # fmt: skip
    text = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Successfully tagged bt-py:1" in text
    assert image.labels == {"made-by": "docker-py", "price": "$WHO"}  # --label values are not expanded
    assert client.containers.run("bt-py:1", ["cat", "/who"], remove=True) == b"hi py\n"
    # Another value of the ARG is another cache key for the RUN after it.
    again, logs = client.images.build(path=str(ctx), tag="bt-py:2", buildargs={"WHO": "other"}, rm=True)
    text = "".join(chunk.get("stream", "") for chunk in logs)
    assert text.count("Using cache") == 1  # the ARG step only
    quiet = build(daemon, ctx, "-q", "--build-arg", "WHO=other", "-t", "bt-py:quiet")
    assert quiet.stdout.strip() == again.id
    assert daemon.out("image", "inspect", "-f", "{{.Id}}", "bt-py:quiet") == again.id  # tagged, quietly
    client.images.remove("bt-py:quiet")
    client.images.remove("bt-py:1")
    client.images.remove("bt-py:2")


def test_no_cache_and_a_missing_base_image(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nENV A=1\n"})
    build(daemon, ctx)
    fresh = build(daemon, ctx, "--no-cache")
    assert "Using cache" not in fresh.stdout
    # Not here: pulled from its registry (one on loopback that nothing answers on: refused).
    write(ctx, {"Dockerfile": f"FROM 127.0.0.1:{_closed_port()}/not-here:1\n"})
    missing = build(daemon, ctx, check=False)
    assert missing.returncode != 0 and "connection refused" in missing.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_base_image_that_is_not_here_is_pulled(daemon: Daemon, busybox_tar: bytes, tmp_path: Path) -> None:
    from tests.registry import start_registry

    registry = start_registry()
    try:
        registry.push_image("build/base", "1", [busybox_tar], cmd=["sh"])
        ref = f"{registry.host}/build/base:1"
        ctx = write(tmp_path, {"Dockerfile": f"FROM {ref}\nRUN echo pulled > /p\n"})
        out = build(daemon, ctx, "-t", "bt-pulled:1")
        assert "Pulling from build/base" in out.stdout or "Download complete" in out.stdout
        assert daemon.out("run", "--rm", "bt-pulled:1", "cat", "/p") == "pulled"
        again = build(daemon, ctx, "--pull")  # pulled again: up to date, then the cache
        assert "Using cache" in again.stdout
        daemon.docker("rmi", "bt-pulled:1", ref)
    finally:
        registry.stop()


def test_from_platform_pulls_that_platforms_image(daemon: Daemon, busybox_tar: bytes, tmp_path: Path) -> None:
    from tests.registry import layer_tar, start_registry

    registry = start_registry()
    try:
        amd = registry.push_image("build/multi", "amd64", [busybox_tar], arch="amd64", labels={"t": "bt-platform"})
        arm = registry.push_image("build/multi", "arm64", [layer_tar({"arm": b"64"})], arch="arm64")
        registry.push_index("build/multi", "1", [(amd, "linux/amd64"), (arm, "linux/arm64/v8")], oci=False)
        ref = f"{registry.host}/build/multi:1"
        arch = ["image", "inspect", "-f", "{{.Architecture}}"]
        ctx = write(tmp_path, {"Dockerfile": f"ARG P=linux/arm64\nFROM --platform=$P {ref}\nCMD [\"/arm\"]\n"})
        build(daemon, ctx, "-t", "bt-platform:arm")
        assert daemon.out(*arch, "bt-platform:arm") == "arm64"
        assert daemon.out("image", "inspect", "-f", "{{.Id}}", ref) == arm.config_digest
        (ctx / "Dockerfile").write_text(f"FROM --platform=linux/amd64 {ref}\nRUN echo on-amd64 > /p\n")
        build(daemon, ctx, "-t", "bt-platform:amd")  # the local arm64 one does not do: amd64 is pulled
        assert daemon.out("run", "--rm", "bt-platform:amd", "cat", "/p") == "on-amd64"
        daemon.docker("rmi", "bt-platform:arm", "bt-platform:amd", ref)  # the arm64 base goes with its child
    finally:
        registry.stop()


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_contexts(daemon: Daemon, busybox: str, mode: str) -> None:
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode=mode) as tar:  # type: ignore[call-overload]
        data = b"FROM busybox\nCOPY f /f\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("f")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"c\n"))
    client = daemon.client()
    client.images.build(fileobj=io.BytesIO(body.getvalue()), custom_context=True, encoding=mode[2:],
                        tag="bt-z:1")  # fmt: skip
    assert client.containers.run("bt-z:1", ["cat", "/f"], remove=True) == b"c\n"
    client.images.remove("bt-z:1")


def test_a_context_that_is_not_a_tar(daemon: Daemon, busybox: str) -> None:
    import docker

    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as info:
        list(client.api.build(fileobj=io.BytesIO(b"x" * 2048), custom_context=True, decode=True))
    assert info.value.status_code == 400
    assert "build context" in str(info.value)
    assert leftovers(daemon) == ([], [])


def test_add_from_a_url_served_on_loopback(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.txt").write_text("from http\n")
    with tarfile.open(served / "packed.tar", "w") as tar:  # ADD never unpacks what it fetched
        tar.add(served / "remote.txt", "inner.txt")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(served), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        ctx = write(tmp_path / "ctx", {"Dockerfile": f"FROM busybox\nADD {base}/remote.txt {base}/packed.tar /got/\n"
                                                     f"ADD {base}/remote.txt /renamed\n"})  # fmt: skip
        build(daemon, ctx, "-t", "bt-url:1")
        out = daemon.out("run", "--rm", "bt-url:1", "sh", "-c", "cat /got/remote.txt /renamed; ls /got; stat -c %a /renamed")
        assert out.splitlines() == ["from http", "from http", "packed.tar", "remote.txt", "600"]
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {base}/missing /x\n"})
        missing = build(daemon, ctx, check=False)
        assert missing.returncode != 0 and "404" in missing.stderr
        daemon.docker("rmi", "bt-url:1")
    finally:
        server.shutdown()
        server.server_close()
    assert leftovers(daemon) == ([], [])


def test_compose_builds_with_buildkit_off_and_runs(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    from tests.conftest import COMPOSE_PLUGIN

    assert COMPOSE_PLUGIN.exists(), "dev/setup test installs the compose plugin"
    project = write(tmp_path / "proj", {
        "Dockerfile": "FROM busybox\nARG WORD\nRUN echo \"built $WORD\" > /word\nCMD [\"cat\", \"/word\"]\n",
        "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args:\n        WORD: composed\n"
                        "    image: bt-compose:1\n    network_mode: none\n",
    })  # fmt: skip
    env = daemon.env()
    env["DOCKER_BUILDKIT"] = "0"
    base = ["docker", "compose", "--project-directory", str(project), "--project-name", "btcompose"]
    built = subprocess.run([*base, "build"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([*base, "run", "--rm", "--pull", "never", "app"], capture_output=True, text=True, env=env,
                         timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "built composed"
    labels = json.loads(daemon.out("image", "inspect", "bt-compose:1"))[0]["Config"]["Labels"]
    assert labels.get("com.docker.compose.image.builder") == "classic"  # compose's --label, as a LABEL step
    subprocess.run([*base, "down", "--rmi", "all"], capture_output=True, env=env, timeout=120, check=False)


def test_a_realistic_app_a_host_binary_and_its_libraries_from_scratch(
    daemon: Daemon, busybox: str, tmp_path: Path
) -> None:
    """Several stages; the last FROM scratch with a dynamic host binary and what `ldd` lists."""
    binary = Path("/bin/echo")
    libs = [part for line in subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
            .stdout.splitlines() for part in line.split() if part.startswith("/")]  # fmt: skip
    ctx = tmp_path / "ctx"
    for path in (binary, *map(Path, libs)):
        target = ctx / "rootfs" / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.resolve().read_bytes())
        target.chmod(0o755)
    write(ctx, {"Dockerfile": """FROM busybox AS config
RUN mkdir -p /out/etc && echo "app:x:1000:1000::/:/bin/false" > /out/etc/passwd
FROM scratch AS app
COPY rootfs/ /
COPY --from=config /out/ /
USER app
ENTRYPOINT ["/bin/echo"]
CMD ["hello from", "scratch"]
"""})
    build(daemon, ctx, "-t", "bt-app:1")
    assert daemon.out("run", "--rm", "bt-app:1") == "hello from scratch"
    assert daemon.out("run", "--rm", "bt-app:1", "other", "words") == "other words"
    doc = json.loads(daemon.out("image", "inspect", "bt-app:1"))[0]
    assert len(doc["RootFS"]["Layers"]) == 2 and doc["Config"]["User"] == "app"
    saved = daemon.docker("save", "bt-app:1").stdout
    assert len(saved) > 100_000  # saves like any other image
    daemon.docker("rmi", "bt-app:1")


def test_onbuild_triggers_shell_and_variables(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    base = write(tmp_path / "base", {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\n"})
    build(daemon, base, "-t", "bt-onbuild:base")
    child = write(tmp_path / "child", {"Dockerfile": """# escape=`
FROM bt-onbuild:base
ENV DIR=/data NAME=file
SHELL ["/bin/sh", "-ec"]
COPY f ${DIR}/${NAME:-none}.txt
ARG PREFIX
RUN echo "${PREFIX:-unset} $0 $-" > /shell && `
    cat ${DIR}/file.txt >> /shell
""", "f": "copied\n"})
    out = build(daemon, child, "-t", "bt-onbuild:child", "--build-arg", "PREFIX=given")
    assert "# Executing 1 build trigger" in out.stdout
    result = daemon.out("run", "--rm", "bt-onbuild:child", "cat", "/t", "/shell").splitlines()
    assert result[0] == "triggered"
    assert result[1].startswith("given /bin/sh") and "e" in result[1].split()[-1]
    assert result[2] == "copied"
    config = json.loads(daemon.out("image", "inspect", "bt-onbuild:child"))[0]["Config"]
    assert not config.get("OnBuild")  # triggers are not inherited further
    assert config["Shell"] == ["/bin/sh", "-ec"]
    history = daemon.out("history", "--no-trunc", "--format", "{{.CreatedBy}}", "bt-onbuild:child").splitlines()
    assert history[0].startswith("|1 PREFIX=given /bin/sh -ec echo")  # the ARG is in the RUN's key
    daemon.docker("rmi", "bt-onbuild:child", "bt-onbuild:base")


def test_builder_prune_takes_older_builds_steps_and_keeps_the_live_cache(
    daemon: Daemon, busybox: str, tmp_path: Path
) -> None:
    ctx = write(tmp_path, {"Dockerfile": FIVE_STEPS, "app.txt": "v1\n"})
    before = set(daemon.out("images", "-aq", "--no-trunc").split())
    build(daemon, ctx, "-t", "bt-prune:1")
    first = set(daemon.out("images", "-aq", "--no-trunc").split()) - before
    (ctx / "app.txt").write_text("v2\n")
    build(daemon, ctx, "-t", "bt-prune:1")  # the tag moves: v1's COPY, RUN and CMD steps are stale
    after = set(daemon.out("images", "-aq", "--no-trunc").split()) - before
    out = daemon.out("builder", "prune", "-f")
    assert "Deleted build cache objects:" in out and "Total reclaimed space:" in out
    remaining = set(daemon.out("images", "-aq", "--no-trunc").split()) - before
    stale = after - remaining
    assert len(stale) == 3 and stale <= first  # the ENV step is shared with the live build
    assert all(s.removeprefix("sha256:") in out for s in stale)
    rebuilt = build(daemon, ctx, "-t", "bt-prune:1")
    assert steps_cached(rebuilt.stdout) == [True, True, True, True]  # the live cache is intact
    daemon.docker("rmi", "bt-prune:1")
