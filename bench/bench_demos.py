"""Wall time and peak memory of each demo notebook in notebooks/, run as a job.

Run:  .venv/bin/python bench/bench_demos.py [--shared-cluster] [--only 01_quickstart.ipynb ...]

Each notebook runs with its own defaults through the real CLI (`lepton-lab run NB --wait`), in
order (01 ... 06, then evaluate.ipynb), on one fresh state directory, as a newcomer would run
them. The figures come from each job's usage record (the job metering of `lepton_lab.metering`:
the runner measures its whole process tree: runner, kernel and the kernel's children):

- wall s: the job's attempt, kernel start to end (the record's `wall_seconds`);
- CPU s: CPU seconds of the tree;
- peak MiB: peak memory of the tree (sampled every 0.5 s, so a shorter peak may be missed);
- command s: the whole `lepton-lab run` command, as a user waits for it.

By default no cluster is configured, so each job's kernel starts an embedded 2-worker cluster
(`ll.attach()`), whose nannies and workers are the kernel's children: the peak memory is then
everything the notebook needed, cluster included (what a Binder user's 2 GB must hold).
`--shared-cluster` starts one 2-worker cluster here and points the kernels at it, as the lab's
server does: the figures then leave the workers out (they are not the job's processes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support, as bench_cluster.py does
from tests.support.demos import NOTEBOOKS, ORDER  # noqa: E402


def notebooks(only: list[str] | None) -> list[str]:
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    ordered = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    return [n for n in ordered if not only or n in only]


def run_one(name: str, env: dict[str, str]) -> dict:
    from lepton_lab.store import Store

    cmd = [sys.executable, "-m", "lepton_lab.cli.main", "run", str(NOTEBOOKS / name), "--wait"]
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    found = re.search(r"lepton-lab: job (\w+): ", done.stderr)
    if not found:
        raise SystemExit(f"{name}: no job id in the CLI's output:\n{done.stderr[-3000:]}")
    job_id = found.group(1)
    store = Store(env["LEPTON_LAB_DATABASE_URL"])
    job = store.get_job(job_id, details=False)
    deadline = time.monotonic() + 30
    while not (records := store.usage_records(kind="job", subject_prefix=f"{job_id}#")):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: job {job_id} has no usage record")
        time.sleep(0.2)
    usage = records[-1]
    if job["status"] != "completed":
        print(f"{name}: job {job_id} {job['status']}: {job['error']}", file=sys.stderr)
        print(done.stdout[-3000:], file=sys.stderr)
    return {
        "notebook": name,
        "status": job["status"],
        "wall_s": usage["wall_seconds"],
        "cpu_s": usage["cpu_seconds"],
        "peak_mib": usage["peak_memory"] / 2**20,
        "command_s": seconds,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| notebook | status | wall s | CPU s | peak MiB | command s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['notebook']} | {r['status']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['peak_mib']:.0f} | {r['command_s']:.1f} |"
        )
    total_wall = sum(r["wall_s"] for r in rows)
    peak = max((r["peak_mib"] for r in rows), default=0.0)
    lines.append(
        f"| all | | {total_wall:.1f} | {sum(r['cpu_s'] for r in rows):.1f} | "
        f"{peak:.0f} (max) | {sum(r['command_s'] for r in rows):.1f} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-cluster", action="store_true", help="one cluster for all")
    parser.add_argument("--only", nargs="*", help="notebook file names to run (default: all)")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="bench-demos-")) / "state"
    state.mkdir()
    env = dict(os.environ)
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
        "LEPTON_LAB_ARTIFACT_DIR",
        "LEPTON_LAB_JOB_ID",
    ):
        env.pop(name, None)
    env.update(
        LEPTON_LAB_STATE_DIR=str(state),
        LEPTON_LAB_DATABASE_URL=f"sqlite:///{state / 'lab.db'}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    cluster = None
    if args.shared_cluster:
        from tests.support.labcluster import start_published_cluster

        cluster, cluster_file = start_published_cluster(state)
        env.update(
            LEPTON_LAB_CLUSTER_FILE=str(cluster_file),
            LEPTON_LAB_SCHEDULER_ADDRESS=cluster.scheduler_address,
        )
    import platform

    where = (
        "one shared 2-worker cluster (workers not counted)"
        if cluster
        else "embedded, per job (counted)"
    )
    print(
        f"# demo notebooks as jobs, defaults; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; cluster: {where}"
    )
    rows = []
    try:
        for name in notebooks(args.only):
            row = run_one(name, env)
            print(
                f"{name}: {row['status']} {row['wall_s']:.1f} s, {row['peak_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    finally:
        if cluster is not None:
            cluster.close()
    print(table(rows))
    if any(r["status"] != "completed" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
