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
import json
import os
import secrets
import shutil
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.engine.buildsteps import BuildRun, layer_writer
from dockyard.engine.containers import ContainerService
from dockyard.engine.images import ImageService
from dockyard.engine.lifecycle import Lifecycle
from dockyard.engine.logs import LogService
from dockyard.engine.pulls import PullService
from dockyard.engine.transfer import Body, spool
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.layers.buildcontext import (
    read_context_file,
    remove_ignored,
    unpack_context,
)
from dockyard.layers.overlay import LayerDirs
from dockyard.model import times
from dockyard.model.buildfile import (
    Buildfile,
    Step,
    parse_buildfile,
)
from dockyard.model.builds import (
    BuildEvent,
    BuildOptions,
    BuildProgress,
    same_cache_key,
)
from dockyard.model.dockerfile import (
    KeyValue,
    LabelCommand,
)
from dockyard.model.ignorepatterns import parse_ignore_file
from dockyard.model.imageentries import ImageEntry
from dockyard.model.images import Image, ImageConfig, image_config_to_json
from dockyard.model.manifests import Platform
from dockyard.model.references import parse_reference
from dockyard.model.registryauth import credentials_for
from dockyard.model.shellwords import go_quote

ENGINE_NAME = "dockyard"


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
        self._tmp = tmp_dir  # one build-<hex> scratch directory per build, nothing else

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
            # As dockerd's buildLabelOptions: one LABEL step at the end, its words not expanded
            # (a "$" is escaped for our lexer; the line shown is dockerd's).
            items = sorted(opts.labels.items())
            pairs = tuple(KeyValue(_literal(k), _literal(v)) for k, v in items)
            text_line = "LABEL " + " ".join(f"{go_quote(k)}={go_quote(v)}" for k, v in items)
            step = Step(last.line, text_line, LabelCommand(pairs))
            stages = (*buildfile.stages[:-1], replace(last, steps=(*last.steps, step)))
            buildfile = replace(buildfile, stages=stages)
        return buildfile

    async def _run(
        self, scratch: Path, root: Path, buildfile: Buildfile, opts: BuildOptions
    ) -> AsyncGenerator[BuildEvent, None]:
        try:
            run = BuildRun(self, root, buildfile, opts)
            async for event in run.events():
                yield event
        finally:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, scratch, True))

    async def prune(self) -> tuple[list[str], int]:
        """`docker builder prune`: the classic builder's stale cache, the untagged images made
        here (they have a parent) that no tagged image stands on: older builds' steps. The
        steps under a tagged image stay, being what makes its rebuild instant. Returns the
        ids deleted and the layer bytes freed."""
        entries = {e.id: e for e in self._images.all()}
        live: set[str] = set()
        for entry in entries.values():
            step: ImageEntry | None = entry if entry.names else None
            while step is not None and step.id not in live:
                live.add(step.id)
                step = entries.get(step.parent)
        stale = [e for e in entries.values() if e.id not in live and e.parent]
        before = self._images.layers_size()
        deleted: list[str] = []
        for entry in sorted(stale, key=lambda e: e.image.created, reverse=True):  # children first
            with contextlib.suppress(NotFound, Conflict):  # gone with a child, or in use
                records = await self._images.remove(entry.id, force=False)
                deleted += [r.deleted for r in records if r.deleted in entries]
        return deleted, before - self._images.layers_size()

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
            return await self.commit(parent_id, None if empty else layer_writer(upper), config, key, author)

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

    async def pull(self, name: str, opts: BuildOptions, platform: Platform | None = None) -> AsyncIterator[BuildProgress]:
        """A FROM image that is not here (or every one, with --pull), from its registry."""
        ref = parse_reference(name)
        pulling = await self._pulls.pull(ref, credentials_for(opts.registry_auth, ref.domain), platform)
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


def _literal(text: str) -> str:
    """A word the shell lexer reads back as `text`, unexpanded."""
    return go_quote(text).replace("$", "\\$")
