"""``lepton-lab``: the command line of Lepton Lab.

Subcommands are small functions registered with argparse; each prints for people and exits
non-zero with one readable line on failure (no traceback): status 2 for a request that cannot
be done (a user mistake, a missing job), 1 for a service that cannot be reached now (the
database, the cluster's scheduler), 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from lepton_lab.cli.common import CLIError, database_unavailable, format_status
from lepton_lab.cluster.manager import ClusterError, ClusterManager


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from lepton_lab.cluster.attach import lab_scheduler_address

    address = args.address or lab_scheduler_address(timeout=5)
    manager = ClusterManager(
        mode=address or "auto", dashboard_address="127.0.0.1:0", start_timeout=args.timeout
    )
    try:
        manager.start()
        status = manager.status()
    finally:
        manager.close()
    if not address:
        status["note"] = "no lab cluster found: this was a temporary embedded cluster"
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lepton_lab.cli.demo import run_demo

    return run_demo(args.address, args.epochs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lepton-lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the end-to-end demo on the embedded local cluster")
    demo.add_argument("--address", help="use this scheduler instead of an embedded cluster")
    demo.set_defaults(func=cmd_demo)
    demo.add_argument("--epochs", type=int, default=8, help="epochs of the demo training run")

    cluster = sub.add_parser("cluster", help="the lab's Dask cluster")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    status = cluster_sub.add_parser("status", help="show mode, workers, memory and GPUs")
    status.add_argument("--address", help="scheduler address (default: the lab's, else embedded)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--timeout", type=float, default=10, help="seconds to wait for the scheduler (default 10)"
    )
    status.set_defaults(func=cmd_cluster_status)

    from lepton_lab.cli import jobs, models, notify, serving, usage

    jobs.register(sub)
    models.register(sub)
    notify.register(sub)
    serving.register(sub)
    usage.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    from lepton_lab.cli.jobs import ParamError
    from lepton_lab.contract import RequestError
    from lepton_lab.contract.base import Unavailable
    from lepton_lab.models.artifacts import CorruptArtifact
    from lepton_lab.store import StoreVersionError, UnknownJob, UnknownModelVersion, UnknownSchedule

    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        status = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # `lepton-lab models list | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (UnknownJob, UnknownSchedule, UnknownModelVersion) as exc:
        print(f"lepton-lab: error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:  # the database or the scheduler, which may come back
        print(f"lepton-lab: error: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:  # a database error outside the store's own methods
        print(f"lepton-lab: error: {database_unavailable(exc)}", file=sys.stderr)
        return 1
    except (
        CLIError,
        ClusterError,
        CorruptArtifact,
        TimeoutError,
        OSError,
        RequestError,
        ParamError,
        StoreVersionError,
        ValueError,
    ) as exc:
        print(f"lepton-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
