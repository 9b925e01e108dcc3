"""Console entry points: `dockyard daemon ...` and `dockyardd ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dockyard.errors import DockyardError


def daemon_main(argv: Sequence[str] | None = None) -> int:
    from dockyard.config import parse_daemon_args
    from dockyard.daemon import run_daemon

    try:
        config = parse_daemon_args(list(sys.argv[1:] if argv is None else argv))
        return run_daemon(config)
    except DockyardError as exc:
        print(f"dockyardd: {exc.message}", file=sys.stderr)
        return 1


def system_main(argv: Sequence[str]) -> int:
    """`dockyard system check [--repair]`, on a data root whose daemon is stopped."""
    from pathlib import Path

    from dockyard.engine.storecheck import check_store

    parser = argparse.ArgumentParser(prog="dockyard system")
    sub = parser.add_subparsers(dest="action", required=True)
    checking = sub.add_parser("check", help="compare the database, content store and layer directories")
    checking.add_argument("--data-root", default="/var/lib/dockyard")
    checking.add_argument("--repair", action="store_true", help="remove orphans and images whose layers are broken")
    checking.add_argument("--verify", action="store_true", help="also rebuild every layer's tar and check its digest")
    args = parser.parse_args(list(argv))
    try:
        plan = check_store(Path(args.data_root).absolute(), args.repair, args.verify)
    except DockyardError as exc:
        print(f"dockyard: {exc.message}", file=sys.stderr)
        return 1
    for problem in plan.problems:
        print(problem)
    if plan.clean:
        print("no problems found")
        return 0
    if not args.repair:
        count = len(plan.problems)
        print(f"{count} problem{'' if count == 1 else 's'} found; `dockyard system check --repair` fixes them")
        return 1
    for image_id in plan.kept_broken:
        print(f"kept broken image {image_id}: a container uses it")
    print(
        f"repaired: removed {len(plan.remove_images)} images, {len(plan.remove_layers)} layers, "
        f"{len(plan.remove_dirs)} directories, {len(plan.remove_blobs)} blobs"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dockyard", description="a container engine that speaks the Docker Engine API")
    parser.add_argument("command", choices=["daemon", "system", "version"])
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] == "daemon":
        return daemon_main(args[1:])
    if args[0] == "system":
        return system_main(args[1:])
    if args[0] == "version":
        from importlib.metadata import version

        print(f"dockyard {version('dockyard')}")
        return 0
    parser.parse_args(args)
    return 2
