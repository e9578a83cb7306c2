"""``lepton-lab run | schedule | jobs | schedules | scheduler``: notebook jobs from a shell.

They read and write the same store as the lab's server (``LEPTON_LAB_DATABASE_URL`` or the
default state directory), so a job submitted here shows in JupyterLab and the other way round.
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lepton_lab.cli.notify import add_notify_option, parse_specs
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.services.jobs import JobService
from lepton_lab.services.schedules import ScheduleService
from lepton_lab.store.schema import JOB_FINAL_STATUSES

EXIT_FAILED = 1


class ParamError(Exception):
    """A ``-p``/``-f`` value that cannot be read."""


def parse_value(raw: str) -> Any:
    """A ``-p`` value, typed the way YAML reads it (``3`` int, ``0.1`` float, ``true`` bool,
    ``[1, 2]`` list, ``{a: 1}`` dict, ``null``), else the string itself; papermill's own
    ``-y`` option reads parameters with YAML too."""
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def collect_parameters(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for path in args.parameters_file or []:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ParamError(f"cannot read parameters file {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ParamError(f"parameters file {path} must hold a mapping of name: value")
        params.update(loaded)
    for name, raw in args.parameter or []:
        params[name] = parse_value(raw)
    for name, raw in args.raw_parameter or []:
        params[name] = raw
    return params


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebook", help="the notebook to execute")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter; VALUE is typed like YAML (3, 0.5, true, [1, 2], text)",
    )
    p.add_argument(
        "-r",
        "--raw-parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter passed as a string, untyped",
    )
    p.add_argument(
        "-f",
        "--parameters-file",
        action="append",
        metavar="YAML",
        help="parameters from a YAML file (-p wins over it)",
    )
    p.add_argument("--kernel", help="kernelspec (default: the notebook's own)")
    p.add_argument("--timeout", type=float, help="seconds before the job is ended as timed_out")
    p.add_argument("--executor", help="where the job runs: an installed executor (default: local)")
    p.add_argument("--cwd", help="working directory (default: the notebook's folder)")
    p.add_argument("--name", help="a name to show instead of the notebook's")
    p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument("--html", action="store_true", help="also write the output as HTML")
    p.add_argument(
        "--allow-unknown", action="store_true", help="pass parameters the notebook does not declare"
    )
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME",
        help="give the job the secret NAME, as the environment variable NAME of its kernel "
        "(repeatable): the value is read from your environment variable NAME, or asked for "
        "when it is not set; never from the command line. Stored encrypted, redacted from "
        "the job's log and output",
    )
    add_notify_option(p)


def _job_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"path": args.notebook, "parameters": collect_parameters(args)}
    for key in ("kernel", "timeout", "executor", "cwd", "name"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.tag:
        body["tags"] = args.tag
    if args.html:
        body["output_formats"] = ["ipynb", "html"]
    if args.allow_unknown:
        body["allow_unknown"] = True
    if args.notify:  # checked here: a bad SPEC stores nothing
        body["notify"] = parse_specs(args.notify)
    if args.secret:
        body["secrets"] = read_secrets(args.secret)
    return body


def read_secrets(names: list[str]) -> dict[str, str]:
    """The values of ``--secret NAME``: the environment variable NAME, else a prompt that does
    not echo (when stdin is a terminal). A value on the command line is refused: other users
    see a process's arguments (``ps``, ``/proc/PID/cmdline``) and shells keep them in their
    history."""
    import getpass
    import os

    values: dict[str, str] = {}
    for name in names:
        if "=" in name:
            raise ParamError(
                f"--secret takes a NAME only, not NAME=value ({name.split('=', 1)[0]!r}): a "
                "value on the command line is visible to other users (ps, /proc) and kept in "
                "your shell's history. Put it in the environment variable of that name, or "
                "let lepton-lab ask for it"
            )
        if name in os.environ:
            values[name] = os.environ[name]
        elif sys.stdin.isatty():
            values[name] = getpass.getpass(f"lepton-lab: value of secret {name}: ")
        else:
            raise ParamError(
                f"--secret {name}: the environment variable {name} is not set, and there is no "
                "terminal to ask for it; export it first"
            )
    return values


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _print_failure(job: dict[str, Any]) -> None:
    print(f"lepton-lab: job {job['id']} {job['status']}", file=sys.stderr)
    if job["error"]:
        print(job["error"], file=sys.stderr)
    print(f"output notebook: {JobFiles.of(job).output}", file=sys.stderr)


# -- run / schedule ------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from lepton_lab.config.settings import state_dir
    from lepton_lab.jobs.dispatcher import LEASE, Dispatcher

    body = _job_body(args)
    body["retries"] = args.retries
    body["retry_backoff"] = args.retry_backoff
    service = _jobs()
    store = service.store
    job = service.submit(body).model_dump()
    for warning in job["warnings"]:
        print(f"lepton-lab: warning: {warning}", file=sys.stderr)
    if not args.wait:
        print(job["id"])
        if store.lease_holder(LEASE) is None:
            print(
                "lepton-lab: note: no Lepton Lab server or `lepton-lab scheduler` is running; "
                "the job starts when one does (or use --wait)",
                file=sys.stderr,
            )
        return 0
    print(f"lepton-lab: job {job['id']}: {job['notebook']}", file=sys.stderr)
    dispatcher = Dispatcher(store, state_dir(), concurrency=1, name="cli")
    offset = 0

    def follow() -> None:
        nonlocal offset
        if args.quiet:
            return
        offset = _print_log(service, job["id"], offset)

    started = time.monotonic()
    while True:
        try:
            record = dispatcher.run_foreground(job["id"], on_step=follow)
        except KeyboardInterrupt:
            follow()
            print(f"\nlepton-lab: job {job['id']} stopped", file=sys.stderr)
            return 130
        follow()
        if record["status"] != "queued":
            break
        wait = max(0.0, record["not_before"] - time.time())
        print(f"lepton-lab: {record['events'][-1]['message']}", file=sys.stderr)
        time.sleep(wait)
    elapsed = time.monotonic() - started
    if record["status"] == "completed":
        print(
            f"lepton-lab: job {job['id']} completed in {elapsed:.1f} s; output: "
            f"{JobFiles.of(record).output}",
            file=sys.stderr,
        )
        return 0
    _print_failure(record)
    return EXIT_FAILED


def cmd_schedule(args: argparse.Namespace) -> int:
    body = _job_body(args)
    body.update(
        cron=args.cron,
        timezone=args.timezone,
        overlap=args.overlap,
        catchup=args.catchup,
        retries=args.retries,
    )
    record = _schedules().create(body).model_dump()
    print(record["id"])
    print(
        f"lepton-lab: next run {_when(record['next_fire_at'])} ({record['timezone']})",
        file=sys.stderr,
    )
    return 0


# -- jobs ----------------------------------------------------------------------------------


def _jobs() -> JobService:
    """The jobs facade on this user's store (paths are the user's own: no root)."""
    from lepton_lab.config.settings import state_dir
    from lepton_lab.store import open_store

    return JobService(open_store(), state_dir())


def _schedules() -> ScheduleService:
    return ScheduleService(_jobs())


def _print_log(service: JobService, job_id: str, offset: int) -> int:
    """Print the job's log from ``offset`` (pages of the same reader REST uses); returns the
    offset to continue from."""
    from lepton_lab.contract.jobs import LogQuery

    while True:
        page = service.logs(job_id, LogQuery(offset=offset))
        if page.text:
            sys.stdout.write(page.text)
            sys.stdout.flush()
        if page.next == offset or page.next >= page.size:
            return page.next
        offset = page.next


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from lepton_lab.contract.jobs import JobQuery

    query = JobQuery(status=args.status, limit=args.limit)
    jobs = [j.model_dump() for j in _jobs().list(query).jobs]
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    print(f"{'id':<12}  {'status':<9}  {'attempt':>7}  {'created':<19}  notebook")
    for job in jobs:
        print(
            f"{job['id']:<12}  {job['status']:<9}  {job['attempt']:>7}  "
            f"{_when(job['created_at']):<19}  {job['notebook']}"
        )
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    job = _jobs().get(args.id).model_dump()
    if args.json:
        print(json.dumps(job, indent=2))
        return 0
    progress = job["progress"] or {}
    lines = [
        f"job:        {job['id']} ({job['name']})",
        f"status:     {job['status']} (attempt {job['attempt']} of {job['retries'] + 1})",
        f"notebook:   {job['notebook']}",
        f"parameters: {json.dumps(job['parameters'])}",
        f"kernel:     {job['kernel']}   executor: {job['executor']}",
        *([f"secrets:    {', '.join(job['secret_names'])}"] if job["secret_names"] else []),
        f"created:    {_when(job['created_at'])}   started: {_when(job['started_at'])}   "
        f"ended: {_when(job['ended_at'])}",
        f"output:     {JobFiles.of(job).output}",
    ]
    if progress:
        lines.append(f"progress:   cell {progress.get('cell')} of {progress.get('cells')}")
    if job["metrics"]:
        last = {m["name"]: m["value"] for m in job["metrics"]}
        lines.append("metrics:    " + ", ".join(f"{k}={v:g}" for k, v in last.items()))
    for warning in job["warnings"]:
        lines.append(f"warning:    {warning}")
    lines.append("events:")
    lines += [f"  {_when(e['time'])}  {e['status']:<9} {e['message']}" for e in job["events"]]
    if job["error"]:
        lines += ["error:", job["error"]]
    print("\n".join(lines))
    return 0


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    service = _jobs()
    offset = 0
    while True:
        offset = _print_log(service, args.id, offset)
        if not args.follow or service.record(args.id, details=False)["status"] in (
            JOB_FINAL_STATUSES
        ):
            return 0
        time.sleep(0.5)


def cmd_jobs_stop(args: argparse.Namespace) -> int:
    service = _jobs()
    status = service.stop(args.id).status
    if status == "running" and args.wait:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = service.record(args.id, details=False)["status"]
            if status in JOB_FINAL_STATUSES:
                break
            time.sleep(0.2)
    print(f"job {args.id}: {status if status != 'running' else 'stop requested'}")
    return 0


# -- schedules -----------------------------------------------------------------------------


def cmd_schedules_list(args: argparse.Namespace) -> int:
    schedules = [s.model_dump() for s in _schedules().list().schedules]
    if args.json:
        print(json.dumps(schedules, indent=2))
        return 0
    print(f"{'id':<12}  {'state':<6}  {'cron':<18}  {'next run':<19}  {'fired':>5}  notebook")
    for s in schedules:
        state = "active" if s["active"] else "paused"
        print(
            f"{s['id']:<12}  {state:<6}  {s['cron']:<18}  {_when(s['next_fire_at']):<19}  "
            f"{s['fired']:>5}  {s['notebook']}"
        )
    return 0


def cmd_schedules_action(args: argparse.Namespace) -> int:
    service = _schedules()
    service.record(args.id)  # unknown id: a readable error before anything changes
    if args.action == "pause":
        service.pause(args.id)
    elif args.action == "resume":
        service.resume(args.id)
    elif args.action == "delete":
        service.delete(args.id)
    elif args.action == "run":
        print(service.run_now(args.id).id)
        return 0
    print(f"schedule {args.id}: {args.action}d")
    return 0


# -- the daemon ----------------------------------------------------------------------------


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Dispatch jobs and fire schedules until SIGINT/SIGTERM."""
    from lepton_lab.config.settings import state_dir
    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.store import open_store

    store = open_store()
    service = Dispatcher(store, state_dir(), concurrency=args.concurrency, name="daemon")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    service.start()
    print(
        f"lepton-lab scheduler: running jobs ({service.concurrency} at once) and schedules "
        f"from {_safe_url(store.url)}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    leader = None
    while not done.wait(1.0):
        if service.is_leader != leader:
            leader = service.is_leader
            print(
                "lepton-lab scheduler: "
                + (
                    "dispatching"
                    if leader
                    else "standing by (another process holds the dispatcher lease)"
                ),
                file=sys.stderr,
                flush=True,
            )
    service.close()
    print("lepton-lab scheduler: stopped", file=sys.stderr)
    return 0


def _safe_url(url: str) -> str:
    """The database URL without its password, for the log."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="execute a notebook as a job (papermill)")
    _add_job_options(run)
    run.add_argument("--retries", type=int, default=0, help="retries after a failure")
    run.add_argument(
        "--retry-backoff",
        type=float,
        default=1.0,
        help="seconds before the first retry, doubling after each",
    )
    run.add_argument(
        "--wait",
        action="store_true",
        help="run it here and now, stream its log, exit non-zero if it fails",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="with --wait: no log stream")
    run.set_defaults(func=cmd_run)

    sched = sub.add_parser("schedule", help="run a notebook on a cron schedule")
    _add_job_options(sched)
    sched.add_argument(
        "--cron",
        required=True,
        help="cron expression; 6 fields put seconds last ('* * * * * */10')",
    )
    sched.add_argument("--timezone", default="UTC", help="IANA timezone of the cron times")
    sched.add_argument(
        "--overlap",
        choices=("skip", "queue"),
        default="skip",
        help="when the previous run is still going",
    )
    sched.add_argument(
        "--catchup",
        choices=("once", "none"),
        default="once",
        help="after downtime: run once for the missed times, or not at all",
    )
    sched.add_argument("--retries", type=int, default=0)
    sched.set_defaults(func=cmd_schedule)

    jobs = sub.add_parser("jobs", help="notebook jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    ls = jobs_sub.add_parser("list", help="jobs, newest first")
    ls.add_argument(
        "--status", choices=("queued", "running", "completed", "failed", "stopped", "timed_out")
    )
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_jobs_list)
    show = jobs_sub.add_parser("show", help="one job: status, events, metrics, error")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_jobs_show)
    logs = jobs_sub.add_parser("logs", help="a job's log")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true", help="until the job ends")
    logs.set_defaults(func=cmd_jobs_logs)
    stop = jobs_sub.add_parser("stop", help="stop a queued or running job")
    stop.add_argument("id")
    stop.add_argument("--wait", action="store_true", help="until it has stopped")
    stop.set_defaults(func=cmd_jobs_stop)

    schedules = sub.add_parser("schedules", help="cron schedules")
    s_sub = schedules.add_subparsers(dest="schedules_command", required=True)
    s_ls = s_sub.add_parser("list", help="schedules and their next run")
    s_ls.add_argument("--json", action="store_true")
    s_ls.set_defaults(func=cmd_schedules_list)
    for action, text in (
        ("pause", "stop firing"),
        ("resume", "fire again"),
        ("delete", "remove"),
        ("run", "run now, outside the schedule"),
    ):
        p = s_sub.add_parser(action, help=text)
        p.add_argument("id")
        p.set_defaults(func=cmd_schedules_action, action=action)

    daemon = sub.add_parser("scheduler", help="headless daemon: run queued jobs and fire schedules")
    daemon.add_argument("--concurrency", type=int, help="jobs at once (default: 1/GPU or 2)")
    daemon.set_defaults(func=cmd_scheduler)
