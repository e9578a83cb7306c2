"""Cluster start-up and status latency of a real `jupyter lab` with Lepton Lab.

Run:  .venv/bin/python bench/bench_cluster.py [--repeat 3] [--calls 200]

Prints two tables:
1. start-up: seconds from spawning `jupyter lab` to the server answering, and to the lab's
   cluster being ready; the baseline is a bare `distributed.LocalCluster` of the same shape
   started in a fresh process (what the lab cannot go below).
2. GET /lepton-lab/api/cluster latency over N calls while every worker runs a busy task;
   the baseline is Jupyter's own GET /api/status in the same server, same moment.
Targets (issue #2): cluster ready < 3 s after the server is up; status p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.labserver import LabServer  # noqa: E402

LAB = {
    "cluster_mode": "local",
    "n_workers": 2,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
}

BARE_CLUSTER = """
import time
t = time.perf_counter()
from distributed import LocalCluster, Client
c = LocalCluster(
    n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
)
cl = Client(c)
print(time.perf_counter() - t)
cl.close(); c.close()
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def busy(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def measure_startup(root: Path) -> tuple[float, float]:
    server = LabServer(root, LAB).start()
    try:
        server.wait_cluster(timeout=120)
        ready = time.monotonic()
        return server.up_at - server.started_at, ready - server.up_at
    finally:
        server.stop()


def bare_cluster_seconds() -> float:
    out = subprocess.run(
        [sys.executable, "-c", BARE_CLUSTER], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure_latency(root: Path, calls: int) -> tuple[list[float], list[float]]:

    server = LabServer(root, LAB).start()
    try:
        status = server.wait_cluster(lambda s: s["totals"]["workers"] == 2)
        with server.cluster_client() as client:
            futures = [
                client.submit(busy, 60, workers=[w["address"]], pure=False)
                for w in status["workers"]
            ]
            time.sleep(0.5)
            ours, baseline = [], []
            wrong: list = []
            for _ in range(calls):
                t = time.perf_counter()
                code, body = server.request("GET", "lepton-lab/api/cluster")
                ours.append((time.perf_counter() - t) * 1000)
                if code != 200 or body["totals"]["workers"] != 2:
                    wrong.append((code, body if code != 200 else body["totals"]))
                t = time.perf_counter()
                code, _ = server.request("GET", "api/status")
                baseline.append((time.perf_counter() - t) * 1000)
            busy_cpu = sum(
                w["cpu"] for w in server.request("GET", "lepton-lab/api/cluster")[1]["workers"]
            )
            client.cancel(futures)
        print(f"(workers' CPU during the calls: {busy_cpu:.0f}% summed over 2 workers)")
        print(f"(answers that were not 200 with 2 workers: {len(wrong)}; first: {wrong[:1]})")
        return ours, baseline
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        up, after_up, bare = [], [], []
        total: list[float] = []
        for i in range(args.repeat):
            s_up, s_ready = measure_startup(Path(tmp) / f"start{i}")
            up.append(s_up)
            after_up.append(s_ready)
            total.append(s_up + s_ready)
            bare.append(bare_cluster_seconds())
        print("\nstart-up (seconds, median of", args.repeat, "runs)")
        print(f"{'measure':<48}{'median':>8}{'max':>8}")
        rows = [
            ("jupyter lab spawn -> server answers", up),
            ("server answers -> lab cluster ready", after_up),
            ("jupyter lab spawn -> lab cluster ready", total),
            ("baseline: bare LocalCluster(2) in fresh process", bare),
        ]
        for name, values in rows:
            print(f"{name:<48}{statistics.median(values):>8.2f}{max(values):>8.2f}")
        ratio = statistics.median(total) / statistics.median(bare)
        print(f"ratio lab-ready-from-spawn / bare cluster: {ratio:.2f}")
        print(f"target: ready < 3 s after server up -> {'MET' if max(after_up) < 3 else 'MISSED'}")

        ours, baseline = measure_latency(Path(tmp) / "latency", args.calls)
        print(f"\nstatus latency over {args.calls} calls with busy workers (ms)")
        print(f"{'route':<36}{'median':>8}{'p99':>8}{'max':>8}")
        for name, values in (
            ("GET /lepton-lab/api/cluster", ours),
            ("baseline GET /api/status", baseline),
        ):
            print(
                f"{name:<36}{statistics.median(values):>8.1f}"
                f"{percentile(values, 99):>8.1f}{max(values):>8.1f}"
            )
        print(f"ratio of medians: {statistics.median(ours) / statistics.median(baseline):.2f}")
        print(f"target: p99 < 50 ms -> {'MET' if percentile(ours, 99) < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
