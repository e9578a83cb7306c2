"""Costs of ll.fit's per-worker torch loop on an embedded 2-worker cluster.

Run:  .venv/bin/python bench/bench_runs.py [--steps 400]

Tables (each ratio against a baseline measured in the same run):
1. streaming: the same loop reporting every step vs reporting only at its end
   (slowdown; target < 2 %), and reports per second that reach the store when a loop does
   nothing but report.
2. launch: from the ll.fit call to the first reported step on a warm cluster, vs a fresh
   `python -c` that imports torch and runs one step.
3. scaling: one epoch of a compute-bound MLP over a fixed data set, 1 vs 2 workers (DDP,
   gloo). On 2 cores the second worker competes with the first for the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import lepton_lab as ll
from lepton_lab.store import Store


def compute_loop(config):
    """Fixed work per step; reports every step or only once at the end."""
    import torch

    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    a = torch.randn(192, 192)
    t0 = time.perf_counter()
    for step in range(config["steps"]):
        a = torch.tanh(a @ a) * 0.5
        value = float(a[0, 0])  # both variants compute the value; only reporting differs
        if config["report_every_step"]:
            ctx.report(step=step, value=value)
    elapsed = time.perf_counter() - t0
    ctx.report(step=config["steps"], loop_seconds=elapsed)
    return elapsed


def flood_loop(config):
    ctx = ll.context()
    end = time.perf_counter() + config["seconds"]
    step = 0
    while time.perf_counter() < end:
        step += 1
        ctx.report(step=step, a=1.0, b=2.0)
    return step


def first_step_loop(config):
    import torch

    ctx = ll.context()
    model = ctx.prepare(torch.nn.Linear(64, 10))
    loss = model(torch.randn(32, 64)).sum()
    loss.backward()
    ctx.report(step=0, loss=float(loss))
    return None


def scaling_loop(config):
    import torch

    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    n = config["samples"]
    x = torch.randn(n, 256)
    y = torch.randint(0, 10, (n,))
    x, y = x[ctx.rank :: ctx.world_size], y[ctx.rank :: ctx.world_size]
    net = torch.nn.Sequential(
        torch.nn.Linear(256, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    model = ctx.prepare(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batch = config["global_batch"] // ctx.world_size
    times = []
    for epoch in range(config["epochs"]):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i : i + batch]), y[i : i + batch]).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        ctx.report(step=epoch, epoch_seconds=times[-1])
    return times


FRESH_STEP = (
    "import time; t=time.perf_counter(); import torch; m=torch.nn.Linear(64,10); "
    "m(torch.randn(32,64)).sum().backward(); print(time.perf_counter()-t)"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        client = ll.attach()
        kw = dict(framework="torch", client=client, store=store, artifact_dir=f"{tmp}/art")

        def loop_seconds(report: bool) -> float:
            run = ll.fit(
                compute_loop,
                workers=1,
                wait=True,
                config={"steps": args.steps, "report_every_step": report},
                **kw,
            )
            assert run.status == "completed", run.error
            return run.result[0]

        loop_seconds(False)  # warm-up: imports torch on the worker
        quiet, chatty = [], []
        for _ in range(args.repeat):
            quiet.append(loop_seconds(False))
            chatty.append(loop_seconds(True))
        flood = ll.fit(flood_loop, workers=1, wait=True, config={"seconds": 5}, **kw)
        stored = store.count_metrics(flood.id)
        record = flood.record()
        span = record["ended_at"] - record["started_at"]

        print(f"\nstreaming ({args.steps} steps, median of {args.repeat})")
        print(f"{'loop':<40}{'seconds':>10}")
        print(f"{'baseline: report once at the end':<40}{statistics.median(quiet):>10.3f}")
        print(f"{'report every step':<40}{statistics.median(chatty):>10.3f}")
        slowdown = statistics.median(chatty) / statistics.median(quiet) - 1
        print(f"slowdown: {slowdown * 100:+.1f} % (target < 2 %)")
        print(
            f"flood: {flood.result[0]} reports x 2 metrics in 5 s; {stored} values stored, "
            f"{stored / span:.0f} values/s end to end (run span {span:.1f} s)"
        )

        launches = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            run = ll.fit(first_step_loop, workers=2, **kw)
            while not run.metrics():
                time.sleep(0.005)
            launches.append(time.perf_counter() - t0)
            run.wait()
        fresh = [
            float(
                subprocess.run(
                    [sys.executable, "-c", FRESH_STEP], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(args.repeat)
        ]
        print("\nlaunch (seconds, median)")
        print(
            f"{'ll.fit -> first reported step, 2 ranks, warm':<48}"
            f"{statistics.median(launches):>8.2f}"
        )
        print(
            f"{'baseline: fresh python, import torch + 1 step':<48}{statistics.median(fresh):>8.2f}"
        )
        print(f"ratio: {statistics.median(launches) / statistics.median(fresh):.2f}")

        config = {"samples": 8192, "global_batch": 256, "epochs": 3}
        per_epoch = {}
        for n in (1, 2):
            run = ll.fit(scaling_loop, workers=n, wait=True, config=config, **kw)
            assert run.status == "completed", run.error
            per_epoch[n] = statistics.median(run.result[0][1:])  # first epoch warms up
        print("\nscaling (seconds per epoch, 8192 samples, global batch 256)")
        for n, seconds in per_epoch.items():
            print(f"{n} worker(s){'':<30}{seconds:>8.3f}")
        print(f"speed-up 2 vs 1: {per_epoch[1] / per_epoch[2]:.2f}x (2 cores on this machine)")
        ll.detach()


if __name__ == "__main__":
    main()
