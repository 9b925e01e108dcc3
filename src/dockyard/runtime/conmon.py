"""conmon's command line, for a container (an exec's is in runtime/execsession.py).

conmon (podman's and CRI-O's monitor, Debian's 2.1) is the fallback where dockyard-monitor
is not installed; both speak the same protocol to the daemon (runtime/monitor.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.runtime.monitor import MonitorRequest

CONMON = "/usr/bin/conmon"


def conmon_argv(path: str, req: MonitorRequest) -> list[str]:
    argv = [
        path, "--api-version", "1",
        "-c", req.container_id, "-u", req.container_id, "-n", req.name,
        "-r", req.runtime_path, "-b", str(req.bundle),
        "-p", str(req.bundle / "pidfile"), "-P", str(req.bundle / "conmon.pid"),
        "-l", "none" if req.log_path is None else f"k8s-file:{req.log_path}",
        "--exit-dir", str(req.exit_dir),
        "--persist-dir", str(req.persist_dir),
        # --full-attach: the socket is <bundle>/attach, with no symlink left in a socket dir.
        "--full-attach", "--socket-dir-path", str(req.bundle),
        "--log-level", "error",
        # No sync(2) of the whole system at every exit: the log is not worth that stall.
        "--no-sync-log",
    ]  # fmt: skip
    if req.log_path is not None and req.log_size_max > 0:
        argv += ["--log-size-max", str(req.log_size_max)]
    for arg in req.runtime_args:
        argv += ["--runtime-arg", arg]
    if req.tty:
        argv.append("-t")
    if req.stdin:
        argv.append("-i")
        if req.leave_stdin_open:
            argv.append("--leave-stdin-open")
    return argv
