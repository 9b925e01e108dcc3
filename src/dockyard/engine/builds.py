"""`docker build` with the classic builder (POST /build): a Dockerfile run step by step.

As dockerd's: every step makes an image on the one before (kept, with its parent, so the
next build finds it: the cache is "a child of this image made by the same step", the step's
recorded container config compared, with a checksum of the sources for COPY and ADD). RUN
runs a real container and commits its changes; COPY, ADD and WORKDIR edit a scratch
overlay of the image and commit its upper directory; the other steps change the config only.

The context is received whole and the Dockerfile parsed before the stream starts, so a bad
context or a syntax error is an error status; what fails later is an `errorDetail`. Nothing
is left behind but what dockerd leaves: the failed RUN's container (unless forcerm).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
import shutil
import tarfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.engine.containers import ContainerService
from dockyard.engine.images import ImageEntry, ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.engine.pulls import PullService
from dockyard.engine.transfer import Body, spool
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.layers.buildcontext import (
    CopyPlan,
    Source,
    checksum,
    copy_into,
    find_sources,
    read_context_file,
    remove_ignored,
    unpack_context,
)
from dockyard.layers.containerfs import ContainerFS, extract_archive
from dockyard.layers.overlay import LayerDirs
from dockyard.layers.tarlayer import write_layer_tar
from dockyard.linux.rootpath import ContainerRoot
from dockyard.model import times
from dockyard.model.buildfile import (
    ArgCommand,
    BuildCommand,
    Buildfile,
    CopyCommand,
    FromCommand,
    MaintainerCommand,
    RunCommand,
    ShellCommand,
    Stage,
    Step,
    parse_build_command,
    parse_buildfile,
)
from dockyard.model.builds import (
    BuildEvent,
    BuildFailure,
    BuildOptions,
    BuildOutput,
    BuildProgress,
    BuildResult,
    cache_config,
    go_strings,
    nop_cmd,
    proxy_args,
    run_cmd,
    same_cache_key,
    visible_args,
)
from dockyard.model.changes import apply_command
from dockyard.model.containers import ContainerSpec, HostSpec
from dockyard.model.dockerfile import (
    DEFAULT_SHELL,
    CmdCommand,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    KeyValue,
    LabelCommand,
    OnbuildCommand,
    StopSignalCommand,
    UserCommand,
    VolumeCommand,
    WorkdirCommand,
    parse_instruction,
)
from dockyard.model.ids import short_id
from dockyard.model.ignorepatterns import parse_ignore_file
from dockyard.model.images import Image, ImageConfig, image_config_to_json
from dockyard.model.logs import LogQuery
from dockyard.model.references import parse_reference
from dockyard.model.registryauth import credentials_for
from dockyard.model.shellwords import ShellLexer, env_mapping, go_quote
from dockyard.runtime.users import parse_group, parse_passwd

ENGINE_NAME = "dockyard"


class StepFailed(DockyardError):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _StageState:
    image_id: str  # "" while FROM scratch has made nothing yet
    config: ImageConfig
    declared: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    author: str = ""

    @property
    def shell(self) -> tuple[str, ...]:
        return self.config.shell or DEFAULT_SHELL


class BuildService:
    def __init__(
        self,
        images: ImageService,
        containers: ContainerService,
        lifecycle: Lifecycle,
        logs: LogService,
        dirs: LayerDirs,
        tmp_dir: Path,
        pulls: PullService,
    ) -> None:
        self._pulls = pulls
        self._images = images
        self._containers = containers
        self._lifecycle = lifecycle
        self._logs = logs
        self._dirs = dirs
        self._tmp = tmp_dir
        self._tmp.mkdir(parents=True, exist_ok=True)

    async def build(self, body: Body, opts: BuildOptions) -> AsyncGenerator[BuildEvent, None]:
        """Receive and unpack the context, read and parse the Dockerfile (errors here are
        statuses); then the build itself, as the events it yields."""
        scratch = self._tmp / f"build-{secrets.token_hex(8)}"
        scratch.mkdir(mode=0o700)
        try:
            spooled = await spool(body, scratch, "context")
            root = scratch / "context"
            try:
                await asyncio.to_thread(unpack_context, spooled, root)
            finally:
                spooled.unlink(missing_ok=True)
            buildfile = await asyncio.to_thread(self._read_buildfile, root, opts)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
            raise
        return self._run(scratch, root, buildfile, opts)

    @staticmethod
    def _read_buildfile(root: Path, opts: BuildOptions) -> Buildfile:
        name = opts.dockerfile or "Dockerfile"
        text = read_context_file(root, name)
        if text is None and name == "Dockerfile":
            text = read_context_file(root, "dockerfile")
        if text is None:
            raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
        if not text.strip():
            raise InvalidArgument(f"the Dockerfile ({name}) cannot be empty")
        buildfile = parse_buildfile(text.decode(errors="replace")).up_to(opts.target)
        ignore = read_context_file(root, ".dockerignore")
        if ignore is not None:
            patterns = parse_ignore_file(ignore.decode(errors="replace"))
            remove_ignored(root, patterns, frozenset())
        if opts.labels:
            last = buildfile.stages[-1]
            pairs = tuple(KeyValue(go_quote(k), go_quote(v)) for k, v in sorted(opts.labels.items()))
            text_line = "LABEL " + " ".join(f"{p.key}={p.value}" for p in pairs)
            step = Step(last.line, text_line, LabelCommand(pairs))
            stages = (*buildfile.stages[:-1], replace(last, steps=(*last.steps, step)))
            buildfile = replace(buildfile, stages=stages)
        return buildfile

    async def _run(
        self, scratch: Path, root: Path, buildfile: Buildfile, opts: BuildOptions
    ) -> AsyncGenerator[BuildEvent, None]:
        try:
            run = _Build(self, root, buildfile, opts)
            async for event in run.events():
                yield event
        finally:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, scratch, True))

    # ---- the I/O a build needs -------------------------------------------------------

    def image(self, name: str) -> ImageEntry:
        return self._images.resolve(name)

    def cached(self, parent_id: str, key: dict[str, Any]) -> str | None:
        """A child of `parent_id` that the same step made (dockerd's local image cache)."""
        for entry in self._images.all():
            if entry.parent != parent_id:
                continue
            doc = json.loads(entry.image.raw_config)
            if same_cache_key(doc.get("container_config"), key):
                return entry.id
        return None

    async def commit(
        self,
        parent_id: str,
        write: Callable[[BinaryIO], None] | None,
        config: ImageConfig,
        key: dict[str, Any],
        author: str,
        container_id: str = "",
    ) -> str:
        def make_config(parent: Image, diff_id: str | None) -> bytes:
            doc: dict[str, Any] = json.loads(parent.raw_config)
            created = times.now()
            history = list(doc.get("history") or [])
            entry: dict[str, Any] = {"created": created, "created_by": " ".join(key["Cmd"])}
            if author:
                entry["author"] = author
            if diff_id is None:
                entry["empty_layer"] = True
            history.append(entry)
            rootfs = dict(doc.get("rootfs") or {"type": "layers"})
            rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), *([diff_id] if diff_id else [])]
            doc.update({"config": image_config_to_json(config), "container_config": key, "container": container_id,
                        "created": created, "docker_version": ENGINE_NAME, "history": history, "rootfs": rootfs,
                        "author": author})  # fmt: skip
            doc.pop("comment", None)
            return json.dumps(doc, separators=(",", ":")).encode()

        entry = await self._images.derive(parent_id, write, make_config, None)
        return entry.id

    async def commit_edit(
        self, parent_id: str, edit: Callable[[Path], None], config: ImageConfig, key: dict[str, Any], author: str
    ) -> str:
        """Run `edit` on a scratch overlay of `parent_id` and commit what it changed."""
        async with self.scratch_rootfs(parent_id) as (merged, cache_id):
            await asyncio.to_thread(edit, merged)
            await asyncio.to_thread(self._dirs.unmount, cache_id)
            upper = self._dirs.diff(cache_id)
            empty = not any(os.scandir(upper))
            return await self.commit(parent_id, None if empty else _layer_writer(upper), config, key, author)

    @contextlib.asynccontextmanager
    async def scratch_rootfs(self, image_id: str) -> AsyncIterator[tuple[Path, str]]:
        cache_id = self._dirs.new_cache_id()
        lowers = self._images.layer_cache_ids(image_id) if image_id else []

        def mount() -> Path:
            self._dirs.create_rw(cache_id)
            return self._dirs.mount(cache_id, lowers)

        try:
            yield await asyncio.to_thread(mount), cache_id
        finally:
            await asyncio.shield(asyncio.to_thread(self._dirs.remove, cache_id))

    async def pull(self, name: str, opts: BuildOptions) -> AsyncIterator[BuildProgress]:
        """A FROM image that is not here (or every one, with --pull), from its registry."""
        ref = parse_reference(name)
        pulling = await self._pulls.pull(ref, credentials_for(opts.registry_auth, ref.domain), None)
        async with contextlib.aclosing(pulling):
            async for progress in pulling:
                yield BuildProgress(progress)

    def lineage(self, names: tuple[str, ...]) -> frozenset[str]:
        """The images named (those that exist) and all their parents."""
        found: set[str] = set()
        for name in names:
            try:
                image_id = self._images.resolve(name).id
            except NotFound:
                continue
            while image_id and image_id not in found:
                found.add(image_id)
                try:
                    image_id = self._images.get(image_id).parent
                except NotFound:
                    break
        return frozenset(found)

    async def tag(self, image_id: str, opts: BuildOptions) -> list[str]:
        names = []
        for ref in opts.tags:
            await self._images.tag(image_id, ref)
            names.append(ref.with_default_tag().familiar())
        return names

    @property
    def containers(self) -> ContainerService:
        return self._containers

    @property
    def lifecycle(self) -> Lifecycle:
        return self._lifecycle

    @property
    def logs(self) -> LogService:
        return self._logs

    @property
    def dirs(self) -> LayerDirs:
        return self._dirs


def _owner_in(rootfs: Path, chown: str) -> tuple[int, int]:
    """--chown's ids: numeric, or names from the target's /etc/passwd and /etc/group (a
    lone user names the group too, as dockerd's parseChownFlag)."""
    user, _, group = chown.partition(":")
    group = group or user
    if user.isdigit() and group.isdigit():
        return int(user), int(group)
    with ContainerRoot(rootfs, ()) as root:
        passwd = parse_passwd((root.read_file("/etc/passwd") or b"").decode(errors="replace"))
        groups = parse_group((root.read_file("/etc/group") or b"").decode(errors="replace"))
    if user.isdigit():
        uid = int(user)
    else:
        found = next((p for p in passwd if p.name == user), None)
        if found is None:
            raise InvalidArgument(
                f"unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            )
        uid = found.uid
    if group.isdigit():
        gid = int(group)
    else:
        grp = next((g for g in groups if g.name == group), None)
        if grp is None:
            raise InvalidArgument(
                f"unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such group: {group}"
            )
        gid = grp.gid
    return uid, gid


def _chmod(text: str) -> int | None:
    if not text:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {text}") from None
    if value > 0o7777:
        raise InvalidArgument(f"invalid chmod parameter: {text}")
    return value


def _layer_writer(upper: Path) -> Callable[[BinaryIO], None]:
    def write(out: BinaryIO) -> None:
        write_layer_tar(upper, out)

    return write


def _mkdir_in(rootfs: Path, path: str) -> None:
    """WORKDIR: the directory is made (root's, 0755) if the image lacks it."""
    with ContainerRoot(rootfs, ()) as root:
        try:
            with root.resolve(path, follow=True):
                return
        except (FileNotFoundError, NotADirectoryError):
            pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.strip("/"))
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(info)
    buf.seek(0)
    extract_archive(ContainerFS(rootfs, label="build"), "/", buf)


class _Build:
    """One build's state: the stages made so far and the step being run."""

    def __init__(self, svc: BuildService, root: Path, buildfile: Buildfile, opts: BuildOptions) -> None:
        self.svc = svc
        self.root = root
        self.bf = buildfile
        self.opts = opts
        self.lexer = ShellLexer(buildfile.escape)
        self.stage_images: dict[int, str] = {}
        self.step_no = 0
        self.used_args: set[str] = set()
        self.cache_sources: frozenset[str] | None = None  # --cache-from's images and their parents

    def out(self, text: str) -> BuildOutput | None:
        return None if self.opts.quiet else BuildOutput(text)

    def _header(self, original: str) -> BuildOutput | None:
        self.step_no += 1
        return self.out(f"Step {self.step_no}/{self.bf.step_count} : {original}\n")

    async def events(self) -> AsyncIterator[BuildEvent]:
        meta = {a.name: a.default for a in self.bf.meta_args}
        given = self.opts.build_args
        try:
            for step in self.bf.meta_steps:
                if (line := self._header(step.original)) is not None:
                    yield line
            for a in meta:
                if a in given:
                    self.used_args.add(a)
            meta_values = {k: (given[k] if k in given and given[k] is not None else v) for k, v in meta.items()}
            meta_env = {k: v for k, v in meta_values.items() if v is not None}
            state: _StageState | None = None
            for stage in self.bf.stages:
                async for item in self._stage(stage, meta_env, meta_values):
                    if isinstance(item, _StageState):
                        state = item
                    elif item is not None:
                        yield item
            assert state is not None
            if not state.image_id:
                raise StepFailed("No image was generated. Is your Dockerfile empty?")
            unused = sorted(set(given) - self.used_args - set(proxy_args(given)))
            warning = f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n"
            if unused and (w := self.out(warning)) is not None:
                yield w
            image_id = state.image_id
            yield BuildResult(image_id)
            if self.opts.quiet:
                yield BuildOutput(f"{image_id}\n")
                return
            yield BuildOutput(f"Successfully built {short_id(image_id)}\n")
            for name in await self.svc.tag(image_id, self.opts):
                yield BuildOutput(f"Successfully tagged {name}\n")
        except StepFailed as exc:
            yield BuildFailure(exc.message, exc.code)
        except DockyardError as exc:
            yield BuildFailure(exc.message)
        except OSError as exc:
            yield BuildFailure(f"build failed: {exc.strerror or exc}")

    # ---- stages --------------------------------------------------------------------------

    async def _stage(
        self, stage: Stage, meta_env: dict[str, str], meta_values: dict[str, str | None]
    ) -> AsyncIterator[BuildOutput | BuildProgress | _StageState | None]:
        yield self._header(stage.original)
        base = self.lexer.process_word(stage.start.base, meta_env)
        if not base:
            raise StepFailed("base name (" + stage.start.base + ") should not be blank")
        ref_stage = self.bf.stage_index(base) if base.lower() != "scratch" else None
        if base.lower() == "scratch":
            state = _StageState("", ImageConfig())
        elif ref_stage is not None and ref_stage < stage.index and ref_stage in self.stage_images:
            image_id = self.stage_images[ref_stage]
            state = _StageState(image_id, self.svc.image(image_id).image.config)
        else:
            try:
                entry: ImageEntry | None = self.svc.image(base)
            except NotFound:
                entry = None
            if entry is None or self.opts.pull:
                # As dockerd: a base image that is not here is pulled (so is every one with --pull).
                async for progress in self.svc.pull(base, self.opts):
                    yield None if self.opts.quiet else progress
                entry = self.svc.image(base)
            state = _StageState(entry.id, entry.image.config)
        yield self.out(f" ---> {short_id(state.image_id)}\n")
        triggers = state.config.on_build
        state.config = replace(state.config, on_build=())
        if triggers:
            yield self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trigger in triggers:
                command = parse_build_command(parse_instruction(trigger, self.bf.escape))
                async for line in self._dispatch(state, command, meta_values):
                    yield line
        for step in stage.steps:
            yield self._header(step.original)
            async for out in self._dispatch(state, step.command, meta_values):
                yield out
            yield self.out(f" ---> {short_id(state.image_id)}\n")
        self.stage_images[stage.index] = state.image_id
        yield state

    def _env(self, state: _StageState) -> dict[str, str]:
        args = visible_args(state.declared, self.opts.build_args, env_mapping(state.config.env))
        return {**args, **env_mapping(state.config.env)}

    async def _dispatch(
        self, state: _StageState, command: BuildCommand, meta: dict[str, str | None]
    ) -> AsyncIterator[BuildOutput | None]:
        if isinstance(command, RunCommand):
            async for line in self._run(state, command):
                yield line
            return
        if isinstance(command, CopyCommand):
            async for line in self._copy(state, command):
                yield line
            return
        config, comment = state.config, ""
        if isinstance(command, ArgCommand):
            parts = []
            for decl in command.args:
                default = decl.default
                if default is None and decl.name in meta:
                    default = meta[decl.name]  # `ARG NAME` in a stage takes the meta ARG's value
                elif default is not None:
                    default = self.lexer.process_word(default, self._env(state))
                state.declared[decl.name] = default
                if decl.name in self.opts.build_args:
                    self.used_args.add(decl.name)
                parts.append(decl.name + (f"={default}" if default is not None else ""))
            comment = "ARG " + " ".join(parts)
        elif isinstance(command, ShellCommand):
            config = replace(config, shell=command.shell)
            comment = "SHELL [" + " ".join(command.shell) + "]"
        elif isinstance(command, MaintainerCommand):
            state.author = self.lexer.process_word(command.maintainer, self._env(state))
            comment = f"MAINTAINER {state.author}"
        elif isinstance(command, FromCommand):
            raise StepFailed("FROM is not allowed here")  # an ONBUILD trigger (checked when it was added)
        else:
            args = visible_args(state.declared, self.opts.build_args, env_mapping(config.env))
            config, state.cmd_set = apply_command(config, command, args, self.bf.escape, state.cmd_set)
            comment = _comment(command, config)
        key = cache_config(config, nop_cmd(config.shell, comment, split=True))
        hit = self._probe(state, key)
        if hit is not None:
            yield self.out(" ---> Using cache\n")
            state.image_id, state.config = hit, config
            return
        if isinstance(command, WorkdirCommand):
            path = config.working_dir
            state.image_id = await self.svc.commit_edit(state.image_id, lambda root: _mkdir_in(root, path), config, key,
                                                        state.author)  # fmt: skip
        else:
            state.image_id = await self.svc.commit(state.image_id, None, config, key, state.author)
        state.config = config

    def _probe(self, state: _StageState, key: dict[str, Any]) -> str | None:
        if self.opts.no_cache:
            return None
        hit = self.svc.cached(state.image_id, key)
        if hit is None or not self.opts.cache_from:
            return hit
        # With --cache-from, only what the named images are made of may be reused (dockerd).
        if self.cache_sources is None:
            self.cache_sources = self.svc.lineage(self.opts.cache_from)
        return hit if hit in self.cache_sources else None

    # ---- RUN -----------------------------------------------------------------------------

    async def _run(self, state: _StageState, command: RunCommand) -> AsyncIterator[BuildOutput | None]:
        if not state.image_id:
            raise StepFailed("a RUN needs an image to run in: FROM scratch has no shell")
        cmdline = (*state.shell, *command.cmdline) if command.prepend_shell else command.cmdline
        args = visible_args(state.declared, self.opts.build_args, env_mapping(state.config.env))
        key = cache_config(replace(state.config, entrypoint=None), run_cmd(args, cmdline))
        hit = self._probe(state, key)
        if hit is not None:
            yield self.out(" ---> Using cache\n")
            state.image_id = hit
            return
        env = (*state.config.env, *(f"{k}={v}" for k, v in {**proxy_args(self.opts.build_args), **args}.items()))
        o = self.opts
        host = HostSpec(network_mode=o.network_mode or "default", extra_hosts=o.extra_hosts, memory=o.memory,
                        memory_swap=o.memory_swap, cpu_shares=o.cpu_shares, cpu_period=o.cpu_period,
                        cpu_quota=o.cpu_quota, cpuset_cpus=o.cpuset_cpus, cpuset_mems=o.cpuset_mems)  # fmt: skip
        if o.shm_size:
            host = replace(host, shm_size=o.shm_size)
        spec = ContainerSpec(image=state.image_id, hostname="", user=state.config.user, env=env, cmd=cmdline,
                             entrypoint=("",), working_dir=state.config.working_dir, attach_stdout=True,
                             attach_stderr=True, host=host)  # fmt: skip
        containers = self.svc.containers
        created = await containers.create(spec, "")
        cid = created.container.id
        keep = False
        try:
            yield self.out(f" ---> Running in {short_id(cid)}\n")
            exited = self.svc.lifecycle.waiter(cid, "next-exit")
            try:
                await containers.start(cid)
            except BaseException:
                exited.cancel()
                raise
            c = containers.resolve(cid)
            reader = self.svc.logs.records(c, LogQuery(), follow=True)
            async with contextlib.aclosing(reader):  # type: ignore[type-var]
                async for batch in reader:
                    for record in batch:
                        text = record.data.decode(errors="replace")
                        # dockerd shows a RUN's stderr in red (docker-py's tests look for it)
                        yield self.out(f"\x1b[91m{text}\x1b[0m" if record.stream == "stderr" else text)
            status = await exited
            if status.code != 0:
                keep = not self.opts.force_remove
                shown = " ".join(cmdline) if command.prepend_shell else go_strings(cmdline)
                raise StepFailed(f"The command '{shown}' returned a non-zero code: {status.code}", status.code)
            upper = self.svc.dirs.diff(containers.resolve(cid).rw_layer)
            empty = not any(os.scandir(upper))
            write = None if empty else _layer_writer(upper)
            state.image_id = await self.svc.commit(state.image_id, write, state.config, key, state.author, cid)
            if not self.opts.remove:
                keep = True
            else:
                yield self.out(f"Removing intermediate container {short_id(cid)}\n")
        finally:
            if not keep:
                with contextlib.suppress(DockyardError):
                    await asyncio.shield(containers.remove(cid, force=True, volumes=True))

    # ---- COPY and ADD --------------------------------------------------------------------

    async def _copy(self, state: _StageState, command: CopyCommand) -> AsyncIterator[BuildOutput | None]:
        name = "ADD" if command.is_add else "COPY"
        env = self._env(state)
        words = [self.lexer.process_word(w, env) for w in command.sources]
        dest = self.lexer.process_word(command.dest, env)
        if any(w.startswith(("http://", "https://")) for w in words):
            raise StepFailed(f"{name} failed: source URLs are not supported by dockyard's builder")
        if len(words) > 1 and not dest.endswith("/"):
            raise StepFailed(f"When using {name} with more than one source file, the destination must be a directory and end with a /")
        if not dest.startswith("/"):
            workdir = state.config.working_dir or "/"
            dest = workdir.rstrip("/") + "/" + dest if dest not in (".", "./") else workdir.rstrip("/") + "/"
        chown = self.lexer.process_word(command.chown, env) if command.chown else ""
        chmod = _chmod(command.chmod)
        async with contextlib.AsyncExitStack() as stack:
            source_root, in_context = self.root, True
            if command.source_stage:
                source_root = await stack.enter_async_context(self._source_image(command.source_stage))
                in_context = False
            found: list[Source] = []
            for word in words:
                found += await asyncio.to_thread(find_sources, source_root, word, in_context=in_context,
                                                 instruction=name)  # fmt: skip
            if len(found) > 1 and not dest.endswith("/"):
                raise StepFailed(f"When using {name} with more than one source file, the destination must be a directory and end with a /")
            digest = await asyncio.to_thread(checksum, found)
            kind = "multi" if len(found) > 1 else ("dir" if found[0].is_dir else "file")
            origin = f"--from={command.source_stage} " if command.source_stage else ""
            comment = f"{name} {origin}{kind}:{digest} in {dest} "
            key = cache_config(state.config, nop_cmd(state.shell, comment))
            if chown:
                key["Chown"] = chown
            if chmod is not None:
                key["Chmod"] = f"{chmod:o}"
            hit = self._probe(state, key)
            if hit is not None:
                yield self.out(" ---> Using cache\n")
                state.image_id = hit
                return
            spool_path = self.root.parent / f"copy-{secrets.token_hex(6)}"

            def edit(rootfs: Path) -> None:
                owner = _owner_in(rootfs, chown) if chown else None
                plan = CopyPlan(tuple(found), dest, owner, chmod, unpack_archives=command.is_add)
                try:
                    with spool_path.open("w+b") as f:
                        copy_into(rootfs, plan, f, from_context=in_context)
                finally:
                    spool_path.unlink(missing_ok=True)

            state.image_id = await self.svc.commit_edit(state.image_id, edit, state.config, key, state.author)

    @contextlib.asynccontextmanager
    async def _source_image(self, ref: str) -> AsyncIterator[Path]:
        index = self.bf.stage_index(ref)
        if index is not None:
            if index not in self.stage_images:
                raise StepFailed(f"invalid from flag value {ref}: stage not built yet")
            image_id = self.stage_images[index]
        else:
            try:
                image_id = self.svc.image(ref).id
            except NotFound:
                raise StepFailed(f"invalid from flag value {ref}: No such image: {ref}") from None
        async with self.svc.scratch_rootfs(image_id) as (merged, _):
            yield merged


def _comment(command: BuildCommand, config: ImageConfig) -> str:
    """What dockerd writes after `#(nop) ` for a config step (its history's CreatedBy)."""
    if isinstance(command, EnvCommand):
        env = env_mapping(config.env)
        return "ENV " + " ".join(f"{k}={env.get(k, '')}" for k in dict.fromkeys(p.key for p in command.pairs))
    if isinstance(command, LabelCommand):
        return "LABEL " + " ".join(f"{k}={config.labels.get(k, '')}" for k in dict.fromkeys(p.key for p in command.pairs))
    if isinstance(command, CmdCommand):
        return f"CMD {go_strings(config.cmd or ())}"
    if isinstance(command, EntrypointCommand):
        return f"ENTRYPOINT {go_strings(config.entrypoint or ())}"
    if isinstance(command, ExposeCommand):
        return "EXPOSE " + " ".join(config.exposed_ports)
    if isinstance(command, UserCommand):
        return f"USER {config.user}"
    if isinstance(command, VolumeCommand):
        return "VOLUME [" + " ".join(config.volumes) + "]"
    if isinstance(command, WorkdirCommand):
        return f"WORKDIR {config.working_dir}"
    if isinstance(command, StopSignalCommand):
        return f"STOPSIGNAL {config.stop_signal}"
    if isinstance(command, HealthcheckCommand):
        h = command.health
        return f"HEALTHCHECK &{{{go_strings(h.test)} {h.interval_ns} {h.timeout_ns} {h.start_period_ns} {h.retries}}}"
    if isinstance(command, OnbuildCommand):
        return f"ONBUILD {command.expression}"
    return type(command).__name__
