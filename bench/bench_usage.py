"""Costs of usage metering (#15) on jobs and runs, and report latency over a large ledger.

Run:  .venv/bin/python bench/bench_usage.py [--quick] [--rows 100000] [--repeat 5]

Tables (each ratio against a baseline measured in the same run, on/off cells alternating,
the order swapped every repeat so drift on the machine hits both alike):
1. jobs: a notebook job with a fixed amount of CPU-bound work (~--job-seconds) through the
   job queue (``Dispatcher`` in this process, private state dir), metering on vs
   ``LEPTON_LAB_METERING=0`` in the runner's environment (the sampling thread off; the CPU
   via getrusage stays). Wall seconds from submission to the job's end, and the job's CPU
   seconds (its usage record). Target: ratio on/off < 1.01. Plus the sampler's own cost,
   measured directly: CPU per ``TreeMeter.sample()`` over a runner-like tree of 2 processes,
   times 2 samples a second, as a share of one core.
2. runs: a 2-worker ``ll.fit`` (torch, fixed CPU-bound work per rank of ~--rank-seconds) on
   one warm embedded cluster, with the driver's usage recording on vs off. There is no switch
   for runs: "off" monkeypatches ``RunDriver._record_usage`` (the run's usage record and its
   checkpoints' bytes, what #15 added to a run) to a no-op in this process; "on" wraps it
   with a timer, so its own duration is measured directly too. The ranks' getrusage calls
   (two per rank, no thread on CPU) stay in both cells. Target: ratio on/off < 1.01.
3. reports: a private SQLite store seeded with --rows realistic usage records (kinds
   run/job/deployment/storage/transfer, 20 users, 200 notebooks, 0-3 tags, over 90 days);
   for windows of 7/30/90 days: the store query (``Store.usage_rows``), then per group_by
   ``report.build`` on those rows, the whole ``UsageService.report`` (query + build +
   validation) and ``UsageService.csv``; medians of --repeat.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

DAY = 86400.0
ENV = "LEPTON_LAB_METERING"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> str:
    """min..max as a percentage around the median."""
    m = med(xs)
    return f"{100 * (min(xs) / m - 1):+.1f}..{100 * (max(xs) / m - 1):+.1f}%"


# ---------------------------------------------------------------------------------- 1. jobs


def work_notebook(path: Path) -> Path:
    """A fixed amount of CPU work (``n`` rounds), so that a slower job takes longer."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("n = 0")
    params.metadata["tags"] = ["parameters"]
    work = "for _ in range(n):\n    sum(range(1000))\nprint('done')"
    nb.cells = [params, nbformat.v4.new_code_cell(work)]
    nbformat.write(nb, path)
    return path


def rounds_for(seconds: float) -> int:
    """How many ``sum(range(1000))`` rounds this interpreter does in ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        for _ in range(1000):
            sum(range(1000))
        n += 1000
    return int(n / (time.perf_counter() - t0) * seconds)


def bench_jobs(work: Path, args: argparse.Namespace) -> None:
    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.jobs.spec import validate_job
    from lepton_lab.jobs.submission import create_job, installed_kernels
    from lepton_lab.store import open_store

    store = open_store()
    state = Path(os.environ["LEPTON_LAB_STATE_DIR"])
    nb = work_notebook(work / "work.ipynb")
    rounds = rounds_for(args.job_seconds)
    spec = validate_job({"path": str(nb), "parameters": {"n": rounds}}, None, installed_kernels())
    service = Dispatcher(store, state, concurrency=1, name="bench-usage")
    service.start()

    def one(metering: bool) -> tuple[float, float, bool]:
        os.environ[ENV] = "1" if metering else "0"  # the runner's environment is ours
        t0 = time.perf_counter()
        job_id = create_job(store, state, spec)["id"]
        while store.get_job(job_id, details=False)["status"] in ("queued", "running"):
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        status = store.get_job(job_id, details=False)["status"]
        if status != "completed":
            raise SystemExit(f"job {job_id} ended {status}")
        # the supervisor writes the usage record just after the job's end
        deadline = time.monotonic() + 10
        while not (records := store.usage_records(kind="job", subject_prefix=f"{job_id}#")):
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} has no usage record")
            time.sleep(0.02)
        [record] = records
        sampled = record["peak_memory"] > 0  # only the sampling thread sees memory
        return wall, record["cpu_seconds"], sampled

    try:
        one(True)  # warm-up: file cache, kernel start
        on_wall, off_wall, on_cpu, off_cpu = [], [], [], []
        sampled_on = sampled_off = 0
        for i in range(args.repeat):
            for metering in (True, False) if i % 2 == 0 else (False, True):
                wall, cpu, sampled = one(metering)
                (on_wall if metering else off_wall).append(wall)
                (on_cpu if metering else off_cpu).append(cpu)
                if metering:
                    sampled_on += sampled
                else:
                    sampled_off += sampled
    finally:
        os.environ.pop(ENV, None)
        service.close()

    print(
        f"1. jobs: {rounds} rounds of CPU work (~{args.job_seconds:g} s), queued through the "
        f"Dispatcher, median of {args.repeat} (spread min..max)"
    )
    print(f"{'':<24}{'metering on':>14}{'off (=0)':>14}{'on/off':>9}{'< 1 %':>7}")
    for name, a, b in (("wall s (submit->end)", on_wall, off_wall), ("job CPU s", on_cpu, off_cpu)):
        ratio = med(a) / med(b)
        print(
            f"{name:<24}{med(a):>14.3f}{med(b):>14.3f}{ratio:>9.4f}"
            f"{'yes' if ratio < 1.01 else 'NO':>7}"
        )
        print(f"{'  spread':<24}{spread(a):>14}{spread(b):>14}")
    print(
        f"sanity: {sampled_on}/{args.repeat} 'on' jobs have a sampled peak memory, "
        f"{sampled_off}/{args.repeat} 'off' jobs do"
    )
    sampler_cost()


def sampler_cost() -> None:
    """CPU seconds of one TreeMeter.sample() over a tree of this process and one child."""
    import subprocess

    from lepton_lab.metering.meter import INTERVAL, TreeMeter

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meter = TreeMeter()
        meter.sample(INTERVAL)  # first call imports psutil
        count = 400
        t0 = time.thread_time()
        for _ in range(count):
            meter.sample(INTERVAL)
        per = (time.thread_time() - t0) / count
    finally:
        child.kill()
        child.wait()
    share = per / INTERVAL
    print(
        f"sampler, measured directly: {1e3 * per:.3f} ms CPU per sample of a 2-process tree, "
        f"every {INTERVAL:g} s = {100 * share:.3f} % of one core "
        f"({'< 1 %' if share < 0.01 else 'NOT < 1 %'})"
    )


# ---------------------------------------------------------------------------------- 2. runs


def rank_loop(config):
    """Fixed CPU-bound work per rank (torch, one thread), one checkpoint at the end."""
    import torch

    import lepton_lab as ll

    ctx = ll.context()
    torch.manual_seed(ctx.rank)
    torch.set_num_threads(1)
    a = torch.randn(192, 192)
    t0 = time.perf_counter()
    for _ in range(config["steps"]):
        a = torch.tanh(a @ a) * 0.5
    elapsed = time.perf_counter() - t0
    ctx.report(step=config["steps"], checkpoint={"a": a}, loop_seconds=elapsed)
    return elapsed


def bench_runs(work: Path, args: argparse.Namespace) -> None:
    import lepton_lab as ll
    from lepton_lab.store import Store
    from lepton_lab.training.fit import RunDriver

    store = Store(f"sqlite:///{work}/runs.db")
    client = ll.attach()
    kw = dict(framework="torch", client=client, store=store, artifact_dir=f"{work}/art")
    original = RunDriver._record_usage
    recorded: list[float] = []

    def timed_record(self) -> None:
        t0 = time.perf_counter()
        original(self)
        recorded.append(time.perf_counter() - t0)

    def one(metering: bool, steps: int) -> tuple[float, float, float]:
        RunDriver._record_usage = timed_record if metering else (lambda self: None)
        try:
            t0 = time.perf_counter()
            run = ll.fit(rank_loop, workers=2, wait=True, config={"steps": steps}, **kw)
            wall = time.perf_counter() - t0
        finally:
            RunDriver._record_usage = original
        if run.status != "completed":
            raise SystemExit(f"run {run.id} ended {run.status}: {run.error}")
        cpu = sum(u.get("cpu_seconds") or 0.0 for u in store.get_run(run.id).get("usage") or [])
        if metering and store.usage_record("run", run.id) is None:
            raise SystemExit(f"run {run.id} has no usage record")
        return wall, cpu, max(run.result)

    try:
        probe = 100
        _, _, loop = one(True, probe)  # warm-up: imports torch on the workers
        _, _, loop = one(True, probe)
        steps = max(probe, int(probe * args.rank_seconds / loop))
        recorded.clear()
        on_wall, off_wall, on_cpu, off_cpu = [], [], [], []
        for i in range(args.repeat):
            for metering in (True, False) if i % 2 == 0 else (False, True):
                wall, cpu, _ = one(metering, steps)
                (on_wall if metering else off_wall).append(wall)
                (on_cpu if metering else off_cpu).append(cpu)
    finally:
        ll.detach()

    print(
        f"\n2. runs: ll.fit, 2 workers, torch, {steps} steps per rank (~{args.rank_seconds:g} s), "
        f"warm embedded cluster, median of {args.repeat}"
    )
    print("   off = RunDriver._record_usage patched to a no-op in this process")
    print(f"{'':<24}{'usage on':>14}{'off (no-op)':>14}{'on/off':>9}{'< 1 %':>7}")
    for name, a, b in (
        ("wall s (ll.fit call)", on_wall, off_wall),
        ("ranks' CPU s", on_cpu, off_cpu),
    ):
        ratio = med(a) / med(b)
        print(
            f"{name:<24}{med(a):>14.3f}{med(b):>14.3f}{ratio:>9.4f}"
            f"{'yes' if ratio < 1.01 else 'NO':>7}"
        )
        print(f"{'  spread':<24}{spread(a):>14}{spread(b):>14}")
    share = med(recorded) / med(on_wall)
    print(
        f"RunDriver._record_usage measured directly: median {1e3 * med(recorded):.1f} ms, "
        f"max {1e3 * max(recorded):.1f} ms (n={len(recorded)}) = {100 * share:.2f} % of the "
        f"run's wall time ({'< 1 %' if share < 0.01 else 'NOT < 1 %'})"
    )


# ------------------------------------------------------------------------------- 3. reports


def seed(store, rows: int, now: float, rng: random.Random) -> dict[str, int]:
    """``rows`` usage records over the 90 days before ``now``, inserted in bulk."""
    from sqlalchemy import insert

    from lepton_lab.store.schema import UsageRecordRow

    users = [f"user{i:02d}" for i in range(20)]
    notebooks = [f"/home/{rng.choice(users)}/project{i % 17}/nb{i:03d}.ipynb" for i in range(200)]
    tag_pool = [f"exp-{i}" for i in range(15)] + ["nightly", "weekly", "prod", "ablation"]
    tag_pool += [f"schedule:s{i}" for i in range(8)] + [f"model:m{i}" for i in range(5)]
    gpus = ["NVIDIA H100 80GB HBM3", "Tesla T4", "NVIDIA A100-SXM4-40GB"]
    kinds = ["run", "job", "deployment", "storage", "transfer"]
    weights = [35, 40, 3, 15, 7]
    counts = dict.fromkeys(kinds, 0)
    batch: list[dict] = []

    def flush() -> None:
        with store.session() as s, s.begin():
            s.execute(insert(UsageRecordRow), batch)
        batch.clear()

    for i in range(rows):
        kind = rng.choices(kinds, weights)[0]
        counts[kind] += 1
        started = now - rng.uniform(0, 90 * DAY)
        wall = rng.expovariate(1 / 1800)
        row = dict(
            kind=kind,
            subject=f"{kind}-{i}",
            user=rng.choice(users),
            notebook=rng.choice(notebooks) if kind in ("run", "job", "storage") else None,
            tags=rng.sample(tag_pool, rng.randint(0, 3)),
            started_at=started,
            ended_at=started + wall,
            cpu_seconds=0.0,
            gpu_seconds=0.0,
            gpu_util_seconds=0.0,
            gpu_model=None,
            wall_seconds=0.0,
            peak_memory=0,
            gpu_peak_memory=0,
            requests=0,
            bytes=0,
            deleted_at=None,
            detail={},
        )
        if kind in ("run", "job"):
            row.update(
                cpu_seconds=wall * rng.uniform(0.5, 8),
                wall_seconds=wall,
                peak_memory=rng.randint(100 << 20, 16 << 30),
                detail={"status": "completed", "executor": "local"}
                if kind == "job"
                else {"framework": "torch", "world_size": 2},
            )
            if rng.random() < 0.3:
                gpu = wall * rng.randint(1, 4)
                row.update(
                    gpu_seconds=gpu,
                    gpu_util_seconds=gpu * rng.uniform(0.2, 0.95),
                    gpu_model=rng.choice(gpus),
                    gpu_peak_memory=rng.randint(1 << 30, 40 << 30),
                )
        elif kind == "deployment":
            ended = started + rng.uniform(3600, 20 * DAY)
            row.update(
                ended_at=ended if ended < now and rng.random() < 0.7 else None,
                requests=rng.randint(0, 10**6),
            )
        elif kind == "storage":
            row.update(
                started_at=now - rng.uniform(0, 120 * DAY),
                ended_at=None,
                bytes=rng.randint(1 << 20, 20 << 30),
                detail={"location": f"/data/art/{i}"},
            )
            if rng.random() < 0.4:
                row["deleted_at"] = min(now, row["started_at"] + rng.uniform(DAY, 60 * DAY))
        else:  # transfer
            row.update(bytes=rng.randint(1 << 10, 2 << 30), ended_at=started)
        batch.append(row)
        if len(batch) >= 5000:
            flush()
    if batch:
        flush()
    return counts


def bench_reports(work: Path, args: argparse.Namespace) -> None:
    from datetime import datetime, timezone

    from lepton_lab.contract.usage import USAGE_GROUPS
    from lepton_lab.metering import report
    from lepton_lab.metering.config import Prices
    from lepton_lab.services.usage import UsageService
    from lepton_lab.store import open_store

    store = open_store(f"sqlite:///{work}/usage.db")
    now = time.time()
    t0 = time.perf_counter()
    counts = seed(store, args.rows, now, random.Random(15))
    seeded = time.perf_counter() - t0
    prices = Prices(cpu_hour=0.05, gpu_hour={"H100": 3.0, "T4": 0.5, "default": 1.5}, gb_month=0.02)
    service = UsageService(store, prices)
    print(
        f"\n3. reports over {store.count_usage()} usage records "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}; seeded in {seeded:.1f} s), "
        f"priced, median of {args.repeat} (ms)"
    )
    print(
        f"{'window':<8}{'rows':>7}{'query':>8}{'group_by':>10}{'groups':>8}{'build':>8}"
        f"{'report':>9}{'csv':>8}"
    )
    slowest = 0.0
    for days in (7, 30, 90):
        start = datetime.fromtimestamp(now - days * DAY, tz=timezone.utc).isoformat()
        lo, hi = report.window(start, None, now=now)
        query_s, rows = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = store.usage_rows(lo, hi)
            query_s.append(time.perf_counter() - t0)
        for n, group_by in enumerate(USAGE_GROUPS):
            q = {"from": start, "group_by": group_by}
            build_s, report_s, csv_s = [], [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                built = report.build(rows, lo, hi, group_by, prices, now=now)
                build_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                service.report(q)
                report_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                service.csv(q)
                csv_s.append(time.perf_counter() - t0)
            slowest = max(slowest, med(report_s))
            head = f"{days} d" if n == 0 else ""
            count = f"{len(rows)}" if n == 0 else ""
            query = f"{1e3 * med(query_s):.0f}" if n == 0 else ""
            print(
                f"{head:<8}{count:>7}{query:>8}{group_by:>10}{len(built['groups']):>8}"
                f"{1e3 * med(build_s):>8.0f}{1e3 * med(report_s):>9.0f}{1e3 * med(csv_s):>8.0f}"
            )
    print(
        "query: Store.usage_rows; build: report.build on its rows; report: UsageService.report "
        "(query + build + model validation); csv: UsageService.csv (query + build + CSV)"
    )
    print(f"slowest whole report: {slowest:.2f} s ({'<= 1 s' if slowest <= 1 else '> 1 s'})")
    if args.profile:
        profile_build(store, now, prices)


def profile_build(store, now: float, prices) -> None:
    import cProfile
    import pstats

    from lepton_lab.metering import report

    lo, hi = now - 90 * DAY, now
    rows = store.usage_rows(lo, hi)
    for group_by in ("day", "tag"):
        print(f"\nprofile: report.build, 90 days, group_by={group_by}")
        prof = cProfile.Profile()
        prof.runcall(report.build, rows, lo, hi, group_by, prices, now)
        pstats.Stats(prof).sort_stats("tottime").print_stats(8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats, less work: a smoke run"
    )
    parser.add_argument("--rows", type=int, default=100_000, help="usage records to seed")
    parser.add_argument("--repeat", type=int, default=None, help="repeats per cell (5; quick 2)")
    parser.add_argument("--job-seconds", type=float, default=None, help="CPU work per job (8)")
    parser.add_argument("--rank-seconds", type=float, default=None, help="CPU work per rank (4)")
    parser.add_argument(
        "--parts", default="jobs,runs,reports", help="comma-separated: jobs, runs, reports"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile report.build (90 days)")
    args = parser.parse_args()
    args.repeat = args.repeat or (2 if args.quick else 5)
    args.job_seconds = args.job_seconds or (1.0 if args.quick else 8.0)
    args.rank_seconds = args.rank_seconds or (1.0 if args.quick else 4.0)
    if args.quick and args.rows == 100_000:
        args.rows = 10_000
    parts = set(args.parts.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LEPTON_LAB_STATE_DIR"] = str(work / "state")
        os.environ["LEPTON_LAB_DATABASE_URL"] = f"sqlite:///{work / 'state' / 'lab.db'}"
        (work / "state").mkdir()
        t0 = time.perf_counter()
        if "jobs" in parts:
            bench_jobs(work, args)
        if "runs" in parts:
            bench_runs(work, args)
        if "reports" in parts:
            bench_reports(work, args)
        print(f"\n(bench took {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
