"""Costs of the run monitor, measured in a real ``lepton-cpu`` kernel on its embedded
2-worker cluster, with the monitor displayed (its widgets sent over the comm to this script,
which plays the frontend and reads every message).

Run:  .venv/bin/python bench/bench_widgets.py [--steps 5000] [--repeats 5] [--long 10000]

Tables (ratios against a baseline measured in the same run):
1. slowdown: the same loop (fixed compute, a report every step, progress every step) with the
   monitor displayed vs with no monitor, alternated with a second no-monitor arm (the noise
   floor); the ranks' own loop time, the run's wall time, the kernel's CPU time and the
   monitor thread's own CPU time (medians of repeats). Target < 2 %.
2. memory: kernel RSS growth over a ``--long``-step run with the monitor open vs without, and
   the points the monitor holds (bounded: curves are bucketed), its redraws per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import textwrap

from jupyter_client import KernelManager

SETUP = """
import os, time, psutil, statistics
import lepton_lab as ll
from IPython.display import display

def loop(config):
    import torch
    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    a = torch.randn(config["size"], config["size"])
    t0 = time.perf_counter()
    for step in range(config["steps"]):
        a = torch.tanh(a @ a) * 0.5
        ctx.report(step=step, loss=float(a[0, 0]), val_loss=float(a[0, 1]))
        ctx.progress(step + 1, config["steps"])
    return time.perf_counter() - t0

def cpu_seconds():
    t = psutil.Process().cpu_times()
    return t.user + t.system

def measure(steps, size, monitor):
    cpu0 = cpu_seconds()
    run = ll.fit(loop, framework="torch", workers=2, config={"steps": steps, "size": size})
    m = None
    if monitor:
        m = run.monitor()
        display(m)
    run.wait()
    rec = run.record()
    if rec["status"] != "completed":
        return {"status": rec["status"], "error": (rec["error"] or "")[:500]}
    out = {
        "status": rec["status"],
        "loop": max(run.result),
        "wall": rec["ended_at"] - rec["started_at"],
        "rss": psutil.Process().memory_info().rss,
        "kernel_cpu": cpu_seconds() - cpu0,
    }
    if m is not None:
        m.wait(10)
        h = m._follower.history
        out.update(
            points=sum(len(s) for s in h.series.values()),
            rows=h.metric_rows,
            redraws=m.redraws,
            monitor_cpu=m._follower.cpu_seconds,
            redraws_per_s=m.redraws / out["wall"],
        )
        m.close()
    return out
"""


class Kernel:
    def __init__(self) -> None:
        self.manager = KernelManager(kernel_name="lepton-cpu")
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self.messages = 0

    def run(self, code: str, timeout: float = 900) -> str:
        out: list[str] = []

        def hook(msg: dict) -> None:
            self.messages += 1  # comm and display messages: the frontend's share of the work
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))

        self.client.execute_interactive(textwrap.dedent(code), output_hook=hook, timeout=timeout)
        return "".join(out)

    def value(self, expression: str) -> dict:
        text = self.run(f"import json as _j; print(_j.dumps({expression}))")
        return json.loads(text.strip().splitlines()[-1])

    def measure(self, steps: int, size: int, monitor: bool, tries: int = 3) -> dict:
        """One run; a run that did not complete (a worker lost on a busy machine) is retried
        and said so, never averaged in."""
        for _ in range(tries):
            result = self.value(f"measure({steps}, {size}, {monitor})")
            if result["status"] == "completed":
                return result
            print(f"(a run ended {result['status']}: {result['error'][:200]!r}; retrying)")
        raise RuntimeError(f"no completed run in {tries} tries")

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--long", type=int, default=10000)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="lepton-bench-widgets-")
    os.environ["LEPTON_LAB_STATE_DIR"] = state
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "LEPTON_LAB_DATABASE_URL",
    ):
        os.environ.pop(name, None)
    kernel = Kernel()
    try:
        kernel.run(SETUP)
        # warm: the workers import torch, the kernel imports bqplot (0.6 s, once per kernel)
        kernel.measure(50, args.size, False)
        kernel.measure(50, args.size, True)
        # three arms, alternated so drift hits all alike: a second no-monitor arm shows how
        # much two identical configurations differ on this machine (the noise floor)
        arms = {"none": False, "monitor": True, "none again": False}
        results: dict[str, list[dict]] = {arm: [] for arm in arms}
        for _ in range(args.repeats):
            for arm, monitor in arms.items():
                results[arm].append(kernel.measure(args.steps, args.size, monitor))

        def median(arm: str, key: str) -> float:
            return statistics.median(r[key] for r in results[arm])

        print(
            f"\n1. slowdown: {args.steps} steps x 2 ranks, report + progress every step, "
            f"median of {args.repeats}"
        )
        print(f"{'':24}{'no monitor':>11}{'monitor':>9}{'ratio':>7}{'again':>8}{'ratio':>7}")
        for key, label in (
            ("loop", "rank loop time (s)"),
            ("wall", "run wall time (s)"),
            ("kernel_cpu", "kernel CPU time (s)"),
        ):
            base, mon, again = (median(arm, key) for arm in arms)
            print(
                f"{label:24}{base:11.3f}{mon:9.3f}{mon / base:7.3f}{again:8.3f}{again / base:7.3f}"
            )
        print(f"{'monitor redraws per s':24}{'':11}{median('monitor', 'redraws_per_s'):9.2f}")
        print(f"{'monitor thread CPU (s)':24}{'':11}{median('monitor', 'monitor_cpu'):9.3f}")

        print(f"\n2. memory: one {args.long}-step run (2 ranks x 2 metrics per step)")
        before = kernel.value("psutil.Process().memory_info().rss")
        plain = kernel.measure(args.long, 16, False)
        mid = kernel.value("psutil.Process().memory_info().rss")
        shown = kernel.measure(args.long, 16, True)
        grow_plain = (plain["rss"] - before) / 2**20
        grow_shown = (shown["rss"] - mid) / 2**20
        print(f"{'':34}{'no monitor':>12}{'monitor':>12}")
        print(
            f"{'kernel RSS after the run (MiB)':34}{plain['rss'] / 2**20:12.1f}"
            f"{shown['rss'] / 2**20:12.1f}"
        )
        print(f"{'kernel RSS growth over it (MiB)':34}{grow_plain:12.1f}{grow_shown:12.1f}")
        print(f"{'metric rows read by the monitor':34}{'':12}{shown['rows']:12d}")
        print(f"{'points held in its curves':34}{'':12}{shown['points']:12d}")
        print(
            f"{'redraws (per second)':34}{'':12}"
            f"{shown['redraws']:7d} ({shown['redraws_per_s']:.2f})"
        )
        print(f"{'run wall time (s)':34}{plain['wall']:12.2f}{shown['wall']:12.2f}")
        print(f"\nkernel -> frontend messages read by this script: {kernel.messages}")
    finally:
        kernel.close()


if __name__ == "__main__":
    main()
