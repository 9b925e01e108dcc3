"""The read-only layers images share: their rows, their directories (each with the tar-split
index that rebuilds its exact tar), and, for layers stored before those indexes, the
uncompressed tar blob in the content store.

A layer's bytes are stored once, in its directory. A layer goes (row, directory, index, any
old tar blob) when the last image using it goes; containers hold their image, so a layer
under a container stays.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from dockyard.errors import Internal, InvalidArgument, NotFound, StorageFull
from dockyard.images.archive import SaveLayer
from dockyard.layers.overlay import LayerDirs, chain_id
from dockyard.store.content import ContentStore
from dockyard.store.images import ImageRepository, LayerRow
from dockyard.streams.compression import CORRUPT


class ImageLayers:
    def __init__(self, repo: ImageRepository, content: ContentStore, dirs: LayerDirs) -> None:
        self._repo = repo
        self._content = content
        self._dirs = dirs
        self._rows: dict[str, LayerRow] = {row.chain_id: row for row in repo.layers()}

    # ---- reads -------------------------------------------------------------------------

    def __contains__(self, chain: str) -> bool:
        return chain in self._rows

    def row(self, chain: str) -> LayerRow:
        return self._rows[chain]

    def rows(self) -> list[LayerRow]:
        return list(self._rows.values())

    def size_of(self, chains: Iterable[str]) -> int:
        return sum(self._rows[c].size for c in chains if c in self._rows)

    def total_size(self) -> int:
        return sum(r.size for r in self._rows.values())

    def cache_ids(self) -> set[str]:
        return {row.cache_id for row in self._rows.values()}

    def tar(self, diff_id: str) -> SaveLayer:
        """A layer's uncompressed tar: replayed from a directory's index, or the old blob."""
        rows = [r for r in self._rows.values() if r.diff_id == diff_id]
        for row in rows:
            if self._dirs.has_index(row.cache_id):
                cache_id = row.cache_id
                return SaveLayer(diff_id, self._dirs.tar_size(cache_id), self._replay(cache_id, diff_id), verified=True)
        if self._content.exists(diff_id):  # a layer stored before tar-split indexes
            return SaveLayer(diff_id, self._content.size(diff_id), self._blob(diff_id))
        if not rows:
            raise NotFound(f"layer {diff_id} not found")
        raise Internal(f"layer {diff_id}: neither an index nor a tar is stored; `dockyard system check` reports it")

    def _replay(self, cache_id: str, diff_id: str) -> Callable[[], BinaryIO]:
        def open_tar() -> BinaryIO:
            return self._dirs.open_tar(cache_id, diff_id)

        return open_tar

    def _blob(self, diff_id: str) -> Callable[[], BinaryIO]:
        return lambda: self._content.open(diff_id)

    # ---- adding ------------------------------------------------------------------------

    def add_blocking(self, parent: str | None, stream: BinaryIO, expected_diff: str | None) -> tuple[LayerRow, bool]:
        """Unpack a layer tar (any compression) into a new directory with its index, in one
        pass; not registered until `register`. Returns (row, new). Runs in a thread."""
        if expected_diff is not None:
            existing = self._rows.get(chain_id(parent, expected_diff))
            if existing is not None:
                return existing, False
        cache_id = self._dirs.new_cache_id()
        try:
            applied = self._dirs.extract(cache_id, stream, expected_diff)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFull(f"failed to register layer: {exc}") from exc
            raise InvalidArgument(f"failed to register layer: {exc}") from exc
        except (EOFError, ValueError) as exc:
            raise InvalidArgument(f"failed to register layer: {exc}") from exc
        except CORRUPT as exc:  # OSError is caught above
            raise InvalidArgument(f"failed to register layer: {exc}") from exc
        except Internal as exc:
            if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.ENOSPC:
                raise StorageFull(f"failed to register layer: {exc.message}") from exc
            raise
        chain = chain_id(parent, applied.diff_id)
        existing = self._rows.get(chain)
        if existing is not None:
            self._dirs.remove(cache_id)
            return existing, False
        return LayerRow(chain, applied.diff_id, parent, cache_id, applied.size), True

    async def add(self, unpack: Callable[[], tuple[LayerRow, bool]]) -> tuple[LayerRow, bool]:
        """Run `unpack` (which calls add_blocking) in a thread. A thread cannot be cancelled:
        if the caller is, the thread is waited for and a layer it made is removed."""
        future = asyncio.get_running_loop().run_in_executor(None, unpack)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait({future})
            if not future.cancelled() and future.exception() is None:
                row, new = future.result()
                if new:
                    await asyncio.to_thread(self._dirs.remove, row.cache_id)
            raise

    async def register(self, new_rows: Sequence[LayerRow]) -> None:
        for row in new_rows:
            if row.chain_id in self._rows:
                if self._rows[row.chain_id].cache_id != row.cache_id:
                    await asyncio.to_thread(self._dirs.remove, row.cache_id)
                continue
            self._repo.add_layer(row)
            self._rows[row.chain_id] = row

    async def discard(self, rows: Sequence[LayerRow]) -> None:
        """Undo prepared layers that were never registered: their directories."""
        registered = self.cache_ids()
        doomed = [row.cache_id for row in rows if row.cache_id not in registered]

        def remove() -> None:
            for cache_id in doomed:
                self._dirs.remove(cache_id)

        await asyncio.to_thread(remove)

    # ---- removing ----------------------------------------------------------------------

    def forget(self, chains: Sequence[str]) -> list[LayerRow]:
        """Take the rows out of the map (the caller deleted them from the database)."""
        return [self._rows.pop(c) for c in chains if c in self._rows]

    def remove_files_blocking(self, rows: Sequence[LayerRow]) -> None:
        """The directories of forgotten layers, and old tar blobs no layer needs any more."""
        live_diffs = {r.diff_id for r in self._rows.values()}
        for row in rows:
            self._dirs.remove(row.cache_id)
            if row.diff_id not in live_diffs:
                self._content.delete(row.diff_id)
