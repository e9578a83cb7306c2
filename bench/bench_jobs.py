"""Costs of notebook jobs against plain papermill, queue throughput, schedule firing delay.

Run:  .venv/bin/python bench/bench_jobs.py [--repeat 3] [--long 30] [--jobs 20]

Tables (each ratio against a baseline measured in the same run, same notebook, same kernel):
1. overhead: `lepton-lab run NB --wait` vs `papermill NB OUT`, wall time of the whole command,
   for a trivial notebook and a notebook that works for --long seconds (targets <= 1.15 and
   <= 1.02).
2. throughput: --jobs trivial jobs through the job queue (2 at once) vs the same notebooks as
   plain papermill commands, two at a time.
3. firing delay: a schedule firing every second; delay from each cron time to its job's row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

BIN = Path(sys.executable).parent


def notebook(path: Path, seconds: float) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("seconds = 0.0")
    params.metadata["tags"] = ["parameters"]
    work = (
        "import time\nend = time.perf_counter() + seconds\n"
        "while time.perf_counter() < end:\n    sum(range(1000))\nprint('done')"
    )
    nb.cells = [params, nbformat.v4.new_code_cell(work)]
    nbformat.write(nb, path)
    return path


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{done.stderr[-3000:]}")
    return elapsed


def overhead(work: Path, env: dict, seconds: float, repeat: int) -> tuple[float, float]:
    nb = notebook(work / f"nb-{seconds:g}.ipynb", seconds)
    out = work / "out.ipynb"
    lepton = [
        str(BIN / "lepton-lab"),
        "run",
        str(nb),
        "-p",
        "seconds",
        str(seconds),
        "--wait",
        "-q",
    ]
    plain = [
        str(BIN / "papermill"),
        str(nb),
        str(out),
        "-p",
        "seconds",
        str(seconds),
        "--no-progress-bar",
    ]
    timed(plain, env)  # warm the file cache for both
    a, b = [], []
    for _ in range(repeat):  # interleaved, so drift on the machine hits both alike
        b.append(timed(plain, env))
        a.append(timed(lepton, env))
    return statistics.median(a), statistics.median(b)


def throughput(work: Path, env: dict, count: int) -> tuple[float, float]:
    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.jobs.spec import validate_job
    from lepton_lab.jobs.submission import create_job, installed_kernels
    from lepton_lab.store import open_store

    nb = notebook(work / "tp.ipynb", 0.0)
    outs = [work / f"tp-{i}.ipynb" for i in range(count)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda o: timed(
                    [str(BIN / "papermill"), str(nb), str(o), "--no-progress-bar"], env
                ),
                outs,
            )
        )
    plain = time.perf_counter() - t0

    store = open_store()
    state = Path(os.environ["LEPTON_LAB_STATE_DIR"])
    spec = validate_job({"path": str(nb)}, None, installed_kernels())
    service = Dispatcher(store, state, concurrency=2, name="bench")
    t0 = time.perf_counter()
    ids = [create_job(store, state, spec)["id"] for _ in range(count)]
    service.start()
    while any(store.get_job(i, details=False)["status"] in ("queued", "running") for i in ids):
        time.sleep(0.05)
    queued = time.perf_counter() - t0
    service.close()
    bad = [i for i in ids if store.get_job(i, details=False)["status"] != "completed"]
    if bad:
        raise SystemExit(f"jobs did not complete: {bad}")
    return queued, plain


def firing(work: Path, seconds: float) -> list[float]:
    import re

    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.services.jobs import JobService
    from lepton_lab.services.schedules import ScheduleService
    from lepton_lab.store import open_store

    store = open_store()
    nb = notebook(work / "fire.ipynb", 0.0)
    state = Path(os.environ["LEPTON_LAB_STATE_DIR"])
    schedules = ScheduleService(JobService(store, state, kernels=lambda: {"python3"}))
    sched = schedules.create(
        {"path": str(nb), "cron": "* * * * * *", "overlap": "queue"}
    ).model_dump()
    service = Dispatcher(
        store, Path(os.environ["LEPTON_LAB_STATE_DIR"]), concurrency=1, name="bench-fire"
    )
    service.start()
    time.sleep(seconds)
    store.update_schedule(sched["id"], active=False, next_fire_at=None)
    service.close()
    delays = []
    for job in store.list_jobs(schedule_id=sched["id"], limit=10000):
        message = store.get_job(job["id"])["events"][0]["message"]
        due = float(re.search(r"for (\d+\.\d+)$", message).group(1))
        delays.append(job["created_at"] - due)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long", type=float, default=30.0, help="seconds of the long notebook")
    parser.add_argument("--long-repeat", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--fire-seconds", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LEPTON_LAB_STATE_DIR"] = str(work / "state")
        os.environ["LEPTON_LAB_DATABASE_URL"] = f"sqlite:///{work / 'state' / 'lab.db'}"
        (work / "state").mkdir()
        env = dict(os.environ)

        print("1. overhead of `lepton-lab run --wait` vs `papermill` (median wall seconds)")
        print(f"{'notebook':<16} {'lepton-lab':>11} {'papermill':>10} {'ratio':>7} {'target':>7}")
        for seconds, repeat, target in (
            (0.0, args.repeat, 1.15),
            (args.long, args.long_repeat, 1.02),
        ):
            a, b = overhead(work, env, seconds, repeat)
            name = "trivial" if seconds == 0 else f"{seconds:g} s of work"
            print(f"{name:<16} {a:>11.2f} {b:>10.2f} {a / b:>7.3f} {target:>7.2f}")

        print(f"\n2. throughput: {args.jobs} trivial notebooks, 2 at a time")
        queued, plain = throughput(work, env, args.jobs)
        print(f"{'how':<32} {'seconds':>8} {'jobs/min':>9}")
        print(f"{'job queue (Dispatcher)':<32} {queued:>8.1f} {60 * args.jobs / queued:>9.1f}")
        print(
            f"{'papermill commands, 2 parallel':<32} {plain:>8.1f} {60 * args.jobs / plain:>9.1f}"
        )
        print(f"{'ratio (queue / papermill)':<32} {queued / plain:>8.3f}")

        delays = firing(work, args.fire_seconds)
        print(
            f"\n3. schedule firing delay, every second for {args.fire_seconds:g} s "
            f"({len(delays)} fires)"
        )
        print(f"median {1000 * statistics.median(delays):.0f} ms, max {1000 * max(delays):.0f} ms")


if __name__ == "__main__":
    main()
