"""``lepton-lab serve`` and ``lepton-lab deployments ...``: serve a registered version from
the command line, and list, inspect and stop any deployment in the store (the lab's server
started it, another ``serve``, or a kernel).

``serve`` supervises its deployment in the foreground (restarts on a crash, the same as the
server does) until Ctrl-C or ``lepton-lab deployments stop ID`` from anywhere.
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import time
from typing import Any

from lepton_lab.cli.common import CLIError


def _store() -> Any:
    from lepton_lab.store import open_store

    return open_store()


def _request(args: argparse.Namespace) -> Any:
    from lepton_lab.contract import parse
    from lepton_lab.contract.serving import DeploymentRequest

    body: dict[str, Any] = {
        "model": args.model,
        "format": args.format,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "max_batch_size": args.max_batch_size,
        "max_batch_delay_ms": args.max_batch_delay_ms,
        "max_request_bytes": args.max_request_mb << 20,
        "max_restarts": args.max_restarts,
    }
    return parse(DeploymentRequest, body)


def cmd_serve(args: argparse.Namespace) -> int:
    from lepton_lab.serving import require_mlserver, supervisor

    try:
        require_mlserver()
    except RuntimeError as exc:
        raise CLIError(str(exc)) from None
    store = _store()
    handle = supervisor.start(store, _request(args), owner="cli", supervise=False)
    # SIGTERM (a service manager, `kill`) stops as Ctrl-C does: the model server with it
    signal.signal(signal.SIGTERM, lambda *_: handle.request_stop())
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"lepton-lab: warning: listening on {args.host}: the endpoint has no authentication "
            "of its own; anyone who reaches this port can call the model (docs/guide/serving.md)",
            file=sys.stderr,
        )
    print(
        f"deployment {handle.id}: serving {handle.model} v{handle.spec['version']} "
        f"({handle.spec['format']}) at {handle.url}/v2/models/{handle.model}\n"
        f"log: {handle.log_path}   stop: Ctrl-C or `lepton-lab deployments stop {handle.id}`",
        file=sys.stderr,
        flush=True,
    )
    status = handle.run()
    record = store.get_deployment(handle.id)
    if status == "failed":
        raise CLIError(f"deployment {handle.id} failed: {record['error']}")
    print(f"deployment {handle.id}: {status}", file=sys.stderr)
    return 0


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _service() -> Any:
    from lepton_lab.config.settings import state_dir
    from lepton_lab.services.deployments import DeploymentService

    return DeploymentService(_store(), state_dir(), owner="cli")


def cmd_deployments_list(args: argparse.Namespace) -> int:
    from lepton_lab.contract.serving import DeploymentQuery

    query = DeploymentQuery(status=args.status, limit=args.limit)
    rows = [d.model_dump() for d in _service().list(query).deployments]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no deployments (start one: lepton-lab serve NAME@alias)")
        return 0
    print(f"{'id':<12}  {'model':<24} {'format':<12} {'status':<8} {'owner':<6}  url")
    for r in rows:
        model = f"{r['model']} v{r['version']}"
        print(
            f"{r['id']:<12}  {model:<24} {r['format']:<12} {r['status']:<8} {r['owner']:<6}  "
            f"{r['url'] or '-'}"
        )
    return 0


def cmd_deployments_show(args: argparse.Namespace) -> int:
    record = _service().get(args.id).model_dump()
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    for key in ("id", "ref", "model", "version", "format", "status", "url", "owner", "pid"):
        print(f"{key + ':':<18} {record[key] if record[key] is not None else '-'}")
    print(
        f"{'batching:':<18} up to {record['max_batch_size']} rows, "
        f"{record['max_batch_delay_ms']} ms"
    )
    print(f"{'restarts:':<18} {record['restarts']} of {record['max_restarts']}")
    print(f"{'created:':<18} {_when(record['created_at'])}")
    print(f"{'ready:':<18} {_when(record['ready_at'])}")
    print(f"{'ended:':<18} {_when(record['ended_at'])}")
    if record["error"]:
        print(f"error:\n{record['error']}")
    return 0


def cmd_deployments_logs(args: argparse.Namespace) -> int:
    from lepton_lab.contract.serving import DeploymentLogQuery

    service, offset = _service(), 0
    while True:
        page = service.logs(args.id, DeploymentLogQuery(offset=offset))
        sys.stdout.write(page.text)
        if page.next == offset:
            return 0
        offset = page.next


def cmd_deployments_stop(args: argparse.Namespace) -> int:
    service = _service()
    service.stop(args.id)  # 404 and 409 (already ended) are one line, status 2
    if args.no_wait:
        print(f"deployment {args.id}: stop requested")
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = service.get(args.id).status
        if status in ("stopped", "failed"):
            print(f"deployment {args.id}: {status}")
            return 0
        time.sleep(0.2)
    raise CLIError(
        f"deployment {args.id} was asked to stop but its supervisor has not stopped it within "
        f"{args.timeout:g} s (is the process that serves it still running?)"
    )


def register(sub: Any) -> None:
    from lepton_lab.contract.serving import MAX_WORKERS, SERVABLE_FORMATS

    serve = sub.add_parser(
        "serve",
        help="serve a registered version over the Open Inference Protocol (foreground)",
        description="Serve NAME@alias, NAME:version or NAME (its latest version) with MLServer "
        "at /v2/models/NAME (KServe v2 / Open Inference Protocol), with adaptive batching "
        "and Prometheus metrics at /metrics, until Ctrl-C.",
    )
    serve.add_argument("model", help="NAME@alias, NAME:version or NAME")
    serve.add_argument("--format", choices=SERVABLE_FORMATS, help="default: onnx if it has it")
    serve.add_argument("--port", type=int, help="HTTP port (default: a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        choices=range(MAX_WORKERS + 1),
        metavar=f"0..{MAX_WORKERS}",
        help="inference worker processes (default 0: in the server's process)",
    )
    serve.add_argument("--max-batch-size", type=int, default=32, help="rows per batch (32)")
    serve.add_argument(
        "--max-batch-delay-ms",
        type=float,
        default=5.0,
        help="how long a request may wait for others, in ms (5; 0 turns batching off)",
    )
    serve.add_argument(
        "--max-request-mb", type=int, default=16, help="largest request body in MiB (16)"
    )
    serve.add_argument("--max-restarts", type=int, default=3, help="restarts after crashes (3)")
    serve.set_defaults(func=cmd_serve)

    deployments = sub.add_parser("deployments", help="served models: list, show, logs, stop")
    d_sub = deployments.add_subparsers(dest="deployments_command", required=True)
    ls = d_sub.add_parser("list", help="deployments, newest first")
    ls.add_argument("--status", choices=("starting", "ready", "failed", "stopped"))
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_deployments_list)
    show = d_sub.add_parser("show", help="one deployment: state, endpoint, error")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_deployments_show)
    logs = d_sub.add_parser("logs", help="the model server's log")
    logs.add_argument("id")
    logs.set_defaults(func=cmd_deployments_logs)
    stop = d_sub.add_parser("stop", help="stop a deployment, whoever supervises it")
    stop.add_argument("id")
    stop.add_argument("--timeout", type=float, default=30, help="seconds to wait (30)")
    stop.add_argument("--no-wait", action="store_true", help="ask, and do not wait")
    stop.set_defaults(func=cmd_deployments_stop)
