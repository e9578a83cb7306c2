"""What the lab's worker settings cost ordinary Dask work, and what they save a training step.

Run:  .venv/bin/python bench/bench_worker_memory.py [--repeats 3]

Two 2-worker clusters of the same shape, started one after the other in this process:
- baseline: Dask's defaults (its nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in each worker);
- lab: ``LabNanny`` (glibc's allocator defaults) with ``IdleTrim`` (``malloc_trim(0)`` one
  second after a worker's last task), which is what the lab's ClusterManager starts.

On each (medians of ``--repeats``):
1. a Dask array reduction: ``(x - x.mean(axis=0)).std(axis=0).sum()`` over a 16000 x 16000
   float64 array in 1000 x 1000 chunks (2 GB made and freed chunk by chunk);
2. the workers' RSS right after it, and 2 s later (after the idle trim);
3. one rank's step of a plain torch MLP (forward, backward, SGD; 256 x 512 batches) in a
   worker task: the allocation pattern of a training step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import dask.array as da
from distributed import Client, LocalCluster, Nanny

from lepton_lab.cluster.workers import IdleTrim, LabNanny


def reduction(client: Client) -> float:
    x = da.random.random((16_000, 16_000), chunks=(1_000, 1_000))
    t = time.perf_counter()
    client.compute((x - x.mean(axis=0)).std(axis=0).sum()).result()
    return time.perf_counter() - t


def rss_mb(client: Client) -> float:
    import psutil

    return sum(client.run(lambda: psutil.Process().memory_info().rss).values()) / 2**20


def step_ms(steps: int = 60) -> float:
    import statistics
    import time

    import torch

    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(512, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 10),
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        x, y = torch.randn(256, 512), torch.randint(0, 10, (256,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[5:]) * 1000


def measure(nanny: type[Nanny], trim: bool, repeats: int) -> dict[str, float]:
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_class=nanny,
    )
    client = Client(cluster)
    if trim:
        client.register_plugin(IdleTrim())
    try:
        worker = sorted(client.scheduler_info()["workers"])[0]
        client.submit(step_ms, 10, workers=[worker], pure=False).result()  # imports torch
        times, after, idle, steps = [], [], [], []
        for _ in range(repeats):
            times.append(reduction(client))
            after.append(rss_mb(client))
            time.sleep(2)
            idle.append(rss_mb(client))
            steps.append(client.submit(step_ms, workers=[worker], pure=False).result())
        return {
            "reduction s": statistics.median(times),
            "RSS after, MB": statistics.median(after),
            "RSS 2 s later, MB": statistics.median(idle),
            "torch step ms": statistics.median(steps),
        }
    finally:
        client.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two clusters")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"Dask defaults": [], "lab workers": []}
    for _ in range(args.rounds):  # alternated, so drift on the machine hits both
        for label, nanny, trim in (
            ("Dask defaults", Nanny, False),
            ("lab workers", LabNanny, True),
        ):
            results[label].append(measure(nanny, trim, args.repeats))
    base, lab = ({k: statistics.median(r[k] for r in rs) for k in rs[0]} for rs in results.values())
    print(f"\n2 workers x 1 thread, medians of {args.rounds} rounds x {args.repeats} repeats")
    print(f"{'measure':<22}{'Dask defaults':>15}{'lab workers':>14}{'ratio':>8}")
    for key in base:
        print(f"{key:<22}{base[key]:>15.2f}{lab[key]:>14.2f}{lab[key] / base[key]:>8.2f}")


if __name__ == "__main__":
    main()
