"""Elastic workers: how long an ``ll.fit`` waits on an adaptive cluster that starts at 0
workers, against the same run on a warm cluster whose workers are already up.

Run:  .venv/bin/python bench/bench_adaptive.py [--repeats 3] [--interval 1s]

Two embedded clusters of the lab's own kind (``ClusterManager``: LocalCluster with the lab's
nannies, 1 thread per worker), alternated in one run so drift on a shared machine hits both:

1. warm: a fixed 2-worker cluster; torch already imported in its workers by an untimed run.
2. adaptive: the same cluster at 0 workers with ``set_adapt(0, 2, interval=--interval)``;
   before each repeat it is left to shrink back to 0 (Dask's default ``wait_count`` of 3
   checks), so every repeat starts workers from nothing, as a user's first run of the day does.

The run is ``ll.fit(loop, framework="torch", workers=2)`` of a small DDP loop that reports
``time.time()`` at its first step. Measured per repeat: launch (the call to rank 0's first
step), wall (the call to the result), and for the adaptive cluster the time until it is back at
0 workers after the run. The table shows medians and the adaptive/warm ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def loop(config):
    import time as clock

    import torch

    import lepton_lab as ll

    ctx = ll.context()
    first = clock.time()
    net = ctx.prepare(torch.nn.Linear(32, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(config["steps"]):
        opt.zero_grad()
        net(torch.randn(64, 32)).sum().backward()
        opt.step()
        ctx.report(step=step, first_step_at=first)
    return ctx.rank


def timed_fit(client, store, folder) -> tuple[float, float]:
    import lepton_lab as ll

    start = time.time()
    run = ll.fit(
        loop,
        framework="torch",
        workers=2,
        config={"steps": 20},
        client=client,
        store=store,
        artifact_dir=folder,
        wait=True,
    )
    wall = time.time() - start
    assert run.status == "completed", run.error
    first = min(m["value"] for m in run.metrics() if m["name"] == "first_step_at")
    return first - start, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", default="1s", help="Dask's adaptive check interval")
    args = parser.parse_args()
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)  # workers come and go by design

    from lepton_lab.cluster.manager import ClusterManager
    from lepton_lab.store import Store

    common = dict(mode="local", threads_per_worker=1, dashboard_address="127.0.0.1:0")
    warm = ClusterManager(n_workers=2, **common)
    elastic = ClusterManager(n_workers=0, **common)
    warm.start()
    elastic.start()
    folder = tempfile.mkdtemp(prefix="bench-adaptive-")
    store = Store(f"sqlite:///{folder}/runs.db")
    rows: dict[str, list[tuple[float, float]]] = {"warm": [], "adaptive": []}
    shrink: list[float] = []
    try:
        timed_fit(warm.client, store, folder)  # untimed: torch imported in the warm workers
        elastic.set_adapt(0, 2, interval=args.interval)
        for _ in range(args.repeats):
            rows["warm"].append(timed_fit(warm.client, store, folder))
            while len(elastic.client.scheduler_info()["workers"]):
                time.sleep(0.1)
            rows["adaptive"].append(timed_fit(elastic.client, store, folder))
            done = time.time()
            while len(elastic.client.scheduler_info()["workers"]):
                time.sleep(0.1)
            shrink.append(time.time() - done)
    finally:
        warm.close()
        elastic.close()

    launch = {k: statistics.median(v[0] for v in rows[k]) for k in rows}
    wall = {k: statistics.median(v[1] for v in rows[k]) for k in rows}
    print(f"\nll.fit of 2 workers, medians of {args.repeats} (adaptive interval {args.interval})")
    print(f"{'cluster':<28}{'launch s':>10}{'wall s':>10}{'launch ratio':>14}")
    for name, label in (("warm", "warm, 2 workers up"), ("adaptive", "adaptive, from 0 workers")):
        ratio = launch[name] / launch["warm"]
        print(f"{label:<28}{launch[name]:>10.2f}{wall[name]:>10.2f}{ratio:>14.2f}")
    print(f"adaptive: back at 0 workers {statistics.median(shrink):.1f} s after the run (median)")


if __name__ == "__main__":
    main()
