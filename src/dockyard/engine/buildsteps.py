"""One build's run, step by step: what each instruction does to the stage's image and
config, with dockerd's output lines. The I/O it needs (images, containers, the cache, scratch
overlays) is the BuildService's (engine/builds.py), through the narrow StepBackend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dockyard.engine.buildurls import fetch
from dockyard.engine.containers import ContainerService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.layers.buildcontext import (
    CopyPlan,
    Source,
    checksum,
    copy_into,
    find_sources,
    make_dir,
)
from dockyard.layers.overlay import LayerDirs
from dockyard.layers.tarlayer import write_layer_tar
from dockyard.linux.rootpath import ContainerRoot
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
    parse_build_command,
)
from dockyard.model.builds import (
    BuildEvent,
    BuildFailure,
    BuildOptions,
    BuildOutput,
    BuildProgress,
    BuildResult,
    cache_config,
    nop_cmd,
    parse_chmod,
    proxy_args,
    run_cmd,
    step_comment,
    visible_args,
)
from dockyard.model.changes import apply_command
from dockyard.model.containers import ContainerSpec, HostSpec
from dockyard.model.dockerfile import DEFAULT_SHELL, WorkdirCommand, parse_instruction
from dockyard.model.ids import short_id
from dockyard.model.imageentries import ImageEntry
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.model.logs import LogQuery
from dockyard.model.manifests import Platform, matches, parse_platform
from dockyard.model.shellwords import ShellLexer, env_mapping
from dockyard.runtime.users import parse_group, parse_passwd


class StepBackend(Protocol):
    """What a build's steps need from the BuildService."""

    @property
    def containers(self) -> ContainerService: ...

    @property
    def lifecycle(self) -> Lifecycle: ...

    @property
    def logs(self) -> LogService: ...

    @property
    def dirs(self) -> LayerDirs: ...

    def image(self, name: str) -> ImageEntry: ...

    def cached(self, parent_id: str, key: dict[str, Any]) -> str | None: ...

    async def commit(
        self, parent_id: str, write: Callable[[BinaryIO], None] | None, config: ImageConfig, key: dict[str, Any],
        author: str, container_id: str = "",
    ) -> str: ...

    async def commit_edit(
        self, parent_id: str, edit: Callable[[Path], None], config: ImageConfig, key: dict[str, Any], author: str
    ) -> str: ...

    def scratch_rootfs(self, image_id: str) -> contextlib.AbstractAsyncContextManager[tuple[Path, str]]: ...

    def pull(self, name: str, opts: BuildOptions, platform: Platform | None = None) -> AsyncIterator[BuildProgress]: ...

    def lineage(self, names: tuple[str, ...]) -> frozenset[str]: ...

    async def tag(self, image_id: str, opts: BuildOptions) -> list[str]: ...


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


def _owner_in(rootfs: Path, chown: str) -> tuple[int, int]:
    """--chown's ids: numeric, or names from the target's /etc/passwd and /etc/group (a
    lone user names the group too, as dockerd's parseChownFlag)."""
    if chown.count(":") > 1:
        raise InvalidArgument(f"invalid chown string format: {chown}")
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


def layer_writer(upper: Path) -> Callable[[BinaryIO], None]:
    def write(out: BinaryIO) -> None:
        write_layer_tar(upper, out)

    return write


class BuildRun:
    """One build's state: the stages made so far and the step being run."""

    def __init__(self, svc: StepBackend, root: Path, buildfile: Buildfile, opts: BuildOptions) -> None:
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
        if self.bf.directives.syntax and not self.opts.quiet:
            # A BuildKit frontend image: the classic builder reads the Dockerfile itself.
            yield BuildOutput(f"# syntax={self.bf.directives.syntax} is ignored: the classic builder parses the Dockerfile\n")
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
            names = await self.svc.tag(image_id, self.opts)
            if self.opts.quiet:  # the id alone, no `aux` (as dockerd's wire shows)
                yield BuildOutput(f"{image_id}\n")
                return
            yield BuildResult(image_id)
            yield BuildOutput(f"Successfully built {short_id(image_id)}\n")
            for name in names:
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
        # An earlier stage by its name (FROM takes no stage numbers; COPY --from does).
        ref_stage = next((s.index for s in self.bf.stages[: stage.index] if s.name and s.name == base.lower()), None)
        if base.lower() == "scratch":
            state = _StageState("", ImageConfig())
        elif ref_stage is not None and ref_stage in self.stage_images:
            image_id = self.stage_images[ref_stage]
            state = _StageState(image_id, self.svc.image(image_id).image.config)
        else:
            wanted = self.lexer.process_word(stage.start.platform, meta_env) if stage.start.platform else ""
            platform = parse_platform(wanted) if wanted else None
            try:
                entry: ImageEntry | None = self.svc.image(base)
            except NotFound:
                entry = None
            if entry is not None and platform is not None and not _of_platform(entry, platform):
                entry = None  # `FROM --platform=`: another platform's image is pulled over it
            if entry is None or self.opts.pull:
                # As dockerd: a base image that is not here is pulled (so is every one with --pull).
                async for progress in self.svc.pull(base, self.opts, platform):
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
            comment = step_comment(command, config)
        key = cache_config(config, nop_cmd(config.shell, comment, split=True))
        hit = self._probe(state, key)
        if hit is not None:
            yield self.out(" ---> Using cache\n")
            state.image_id, state.config = hit, config
            return
        if isinstance(command, WorkdirCommand):
            path = config.working_dir
            state.image_id = await self.svc.commit_edit(state.image_id, lambda root: make_dir(root, path), config, key,
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
        # As dockerd's: no healthcheck while a RUN runs (withoutHealthcheck).
        env = (*state.config.env, *(f"{k}={v}" for k, v in {**proxy_args(self.opts.build_args), **args}.items()))
        o = self.opts
        host = HostSpec(network_mode=o.network_mode or "default", extra_hosts=o.extra_hosts, memory=o.memory,
                        memory_swap=o.memory_swap, cpu_shares=o.cpu_shares, cpu_period=o.cpu_period,
                        cpu_quota=o.cpu_quota, cpuset_cpus=o.cpuset_cpus, cpuset_mems=o.cpuset_mems)  # fmt: skip
        if o.shm_size:
            host = replace(host, shm_size=o.shm_size)
        spec = ContainerSpec(image=state.image_id, hostname="", user=state.config.user, env=env, cmd=cmdline,
                             entrypoint=("",), working_dir=state.config.working_dir, attach_stdout=True,
                             attach_stderr=True, host=host, healthcheck=HealthConfig(test=("NONE",)))  # fmt: skip
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
                raise StepFailed(f"The command '{' '.join(cmdline)}' returned a non-zero code: {status.code}",
                                 status.code)  # fmt: skip
            upper = self.svc.dirs.diff(containers.resolve(cid).rw_layer)
            empty = not any(os.scandir(upper))
            write = None if empty else layer_writer(upper)
            state.image_id = await self.svc.commit(state.image_id, write, state.config, key, state.author, cid)
            if not self.opts.remove:
                keep = True
            else:
                yield self.out(f" ---> Removed intermediate container {short_id(cid)}\n")  # dockerd 28's words
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
        urls = [w for w in words if w.startswith(("http://", "https://"))]
        if urls and not command.is_add:
            raise StepFailed(f"{name} failed: source can't be a URL for COPY")
        if urls and command.source_stage:
            raise StepFailed("ADD failed: source can't be a URL with --from")
        if len(words) > 1 and not dest.endswith("/"):
            raise StepFailed(f"When using {name} with more than one source file, the destination must be a directory and end with a /")
        if not dest.startswith("/"):
            workdir = state.config.working_dir or "/"
            dest = workdir.rstrip("/") + "/" + dest if dest not in (".", "./") else workdir.rstrip("/") + "/"
        chown = self.lexer.process_word(command.chown, env) if command.chown else ""
        chmod = parse_chmod(command.chmod)
        async with contextlib.AsyncExitStack() as stack:
            source_root, in_context = self.root, True
            if command.source_stage:
                source_root = await stack.enter_async_context(self._source_image(command.source_stage))
                in_context = False
            found: list[Source] = []
            for word in words:
                if word in urls:
                    found.append(await fetch(word, self.root.parent / "downloads"))
                    continue
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


def _of_platform(entry: ImageEntry, wanted: Platform) -> bool:
    image = entry.image
    return matches(wanted, Platform(image.os, image.architecture, image.variant))
