"""nft scripts run in-process through libnftables, the library the `nft` command is built on.

Spawning `nft -f -` costs 10-35 ms here (its start-up, then a fetch of the whole ruleset),
the library 0.4 ms for the same transaction: that is most of a network's create and rm,
and of a start or exit with published ports. Same parser, same transaction, same words in
its errors. Where the library cannot be loaded, the command is run instead.

A context is not safe for concurrent use: callers serialise (Firewall calls under its lock).
"""

from __future__ import annotations

import ctypes
import logging
import threading

log = logging.getLogger(__name__)

_LIBRARY = "libnftables.so.1"
_CTX_DEFAULT = 0


class NftError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Nftables:
    """One libnftables context (raises OSError when the library is not there)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(_LIBRARY, use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        ctx = lib.nft_ctx_new(_CTX_DEFAULT)
        if not ctx:
            raise OSError("nft_ctx_new failed")
        # Output and errors into buffers, not the daemon's stdout/stderr.
        if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
            lib.nft_ctx_free(ctx)
            raise OSError("libnftables: cannot buffer its output")
        self._lib = lib
        self._ctx = ctx
        self._busy = threading.Lock()  # a guard, not a queue: callers serialise already

    def run(self, script: str, *, check: bool = False) -> None:
        """One script as one transaction (`check`: parsed and checked by the kernel, not
        loaded, as `nft -c`). Blocking: a netlink round trip with the kernel."""
        with self._busy:
            self._lib.nft_ctx_set_dry_run(self._ctx, check)
            try:
                rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
                errors = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace").strip()
                self._lib.nft_ctx_get_output_buffer(self._ctx)  # read, so the next run starts empty
            finally:
                if check:
                    self._lib.nft_ctx_set_dry_run(self._ctx, False)
        if rc != 0:
            raise NftError(errors or f"libnftables returned {rc}")


def open_nftables() -> Nftables | None:
    """A context, or None (the library is missing or unusable: run the command instead)."""
    try:
        return Nftables()
    except (OSError, AttributeError) as exc:
        log.info("libnftables not usable (%s): running nft for every change", exc)
        return None
