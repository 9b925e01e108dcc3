"""Console entry points: `dockyard daemon ...` and `dockyardd ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dockyard.errors import DockyardError


def daemon_main(argv: Sequence[str] | None = None) -> int:
    from dockyard.config import parse_daemon_args
    from dockyard.daemon import run_daemon
    from dockyard.runtime.catalog import resolve_runtimes

    try:
        config = parse_daemon_args(list(sys.argv[1:] if argv is None else argv))
        # Which runtimes work on this host, and the default (belongs in run_daemon, once its
        # logging is set up: the lead moves it there).
        return run_daemon(resolve_runtimes(config))
    except DockyardError as exc:
        print(f"dockyardd: {exc.message}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dockyard", description="a container engine that speaks the Docker Engine API")
    parser.add_argument("command", choices=["daemon", "version"])
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] == "daemon":
        return daemon_main(args[1:])
    if args[0] == "version":
        from importlib.metadata import version

        print(f"dockyard {version('dockyard')}")
        return 0
    parser.parse_args(args)
    return 2
