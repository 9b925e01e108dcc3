"""Processes we did not spawn ourselves: identify them safely and wait for their end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


def start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: ties a pid to one process across pid reuse; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[19])


def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        return f.read().strip()


class ProcessHandle:
    """A pidfd: signals reach exactly this process, and its exit is awaitable."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd = os.pidfd_open(pid)

    @classmethod
    def adopt(cls, pid: int, expected_start: int) -> ProcessHandle | None:
        """Open a handle only if `pid` is still the process that started at `expected_start`."""
        if pid <= 0:
            return None
        try:
            handle = cls(pid)
        except ProcessLookupError:
            return None
        if expected_start and start_time(pid) != expected_start:
            handle.close()
            return None
        return handle

    def send(self, sig: int) -> bool:
        try:
            signal.pidfd_send_signal(self._fd, sig)
            return True
        except ProcessLookupError:
            return False

    async def wait(self) -> None:
        """Returns once the process has exited (it need not be our child)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ready() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(self._fd, ready)
        try:
            await done
        finally:
            loop.remove_reader(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
