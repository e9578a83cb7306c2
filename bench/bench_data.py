"""How fast ``data=(x, y)`` reaches the ranks of ``ll.fit``, on one host.

Run:  .venv/bin/python bench/bench_data.py [--sizes 10,100,400,1000] [--repeats 3]

For each size (MB of float32 ``x`` plus int64 ``y``), a 2-rank torch loop that only touches
its shard (``ctx.data``) runs on a warm embedded 2-worker cluster. The transfer time is the
launch (the ll.fit call to the loop's first line) with that data, minus the launch of the same
loop without data, measured in the same run (median of the repeats). Also printed: the peak
memory added to this process (the driver and the scheduler both live here), and what each
rank's worker holds afterwards. Target (issue #17): 1 GB in under 1.5 s, with no copy per rank
held by the scheduler.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import numpy as np
import psutil

import lepton_lab as ll
from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.store import Store


def touch_shard(config):
    """Start time, and a value that reads the first and last rows of the shard."""
    import time

    import lepton_lab as ll

    started = time.time()
    data = ll.context().data
    if data is None:
        return {"started": started, "rows": 0}
    x, y = data
    return {"started": started, "rows": len(y), "check": float(x[0, 0] + x[-1, -1])}


class PeakRss(threading.Thread):
    """Samples this process's RSS every 10 ms while a fit runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        me = psutil.Process()
        while self.running:
            self.peak = max(self.peak, me.memory_info().rss)
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,400,1000", help="MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEPTON_LAB_STATE_DIR"] = tmp
        manager = ClusterManager(
            mode="local", n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        )
        manager.start()
        client = manager.client
        store = Store(f"sqlite:///{tmp}/bench.db")
        kw = dict(framework="torch", workers=2, client=client, store=store, artifact_dir=f"{tmp}/a")

        def launch(data) -> tuple[float, int]:
            base = psutil.Process().memory_info().rss
            sampler = PeakRss()
            sampler.start()
            t0 = time.time()
            run = ll.fit(touch_shard, data=data, wait=True, **kw)
            sampler.running = False
            sampler.join()
            assert run.status == "completed", run.error
            return max(r["started"] for r in run.result) - t0, sampler.peak - base

        launch(None)  # warm: imports in the workers
        rows = []
        for mb in sizes:
            n = mb * 2**20 // (64 * 4 + 8)
            x = np.random.default_rng(0).random((n, 64), dtype=np.float32)
            y = np.arange(n, dtype=np.int64)
            empty, full, peaks = [], [], []
            for _ in range(args.repeats):
                empty.append(launch(None)[0])
                seconds, peak = launch((x, y))
                full.append(seconds)
                peaks.append(peak)
            transfer = statistics.median(full) - statistics.median(empty)
            size = (x.nbytes + y.nbytes) / 2**20
            rows.append((size, transfer, size / max(transfer, 1e-6), max(peaks) / 2**20))
            del x, y
        manager.close()
    print("\ndata=(x, y) to 2 ranks on one host (transfer = launch with data - without)")
    print(f"{'MB':>8}{'transfer s':>12}{'MB/s':>10}{'driver+scheduler peak MB':>27}")
    for size, transfer, rate, peak in rows:
        print(f"{size:>8.0f}{transfer:>12.3f}{rate:>10.0f}{peak:>27.0f}")


if __name__ == "__main__":
    main()
