"""What TLS on the lab's cluster costs: the same ll.fit work over TLS and over plain TCP (#14).

Run:  flock /tmp/cpu.lock .venv/bin/python bench/bench_tls.py [--repeats 3] [--steps 150]
      [--reports 2000]

Each repeat starts two fresh Python processes in turn (TLS, then TCP; the order flips every
repeat so drift on a shared machine hits both): each starts the lab's own cluster
(``ClusterManager(mode="local", n_workers=2, threads_per_worker=1)``, with ``tls`` on or off;
everything else equal), warms it with one untimed ``ll.fit`` (torch imported in the workers),
then measures, with a SQLite store of its own:

- ``launch``: ``ll.fit`` of a one-step loop, from the call to the start of rank 0's step
  (median of 3 calls in the process);
- ``reports/s``: a loop whose 2 ranks call ``ctx.report(step=i, loss=...)`` ``--reports``
  times each with nothing else to do; every report travels from the rank to the driver (over
  the cluster's comms) and into the store. Reports stored / seconds from the call to the run's
  end;
- ``epoch``: bench_peers' DDP loop (2 ranks, gloo, an MLP on 256 x 512 batches, a report per
  step), ``--steps`` steps: rank 0's time from its first step to its last, and the median step.

The table shows medians over the repeats and TLS / TCP. Target (#14): the epoch within 3 %.
The ranks' own DDP traffic goes over gloo's sockets, not Dask's comms, so TLS touches the
launch, the reports and the result, not the all-reduce.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_step(config):
    import time

    import lepton_lab as ll

    ctx = ll.context()
    started = time.time()
    ctx.report(step=0, loss=1.0)
    return {"rank": ctx.rank, "first_step_wall": started}


def reporter(config):
    import time

    import lepton_lab as ll

    ctx = ll.context()
    t0 = time.perf_counter()
    for step in range(config["reports"]):
        ctx.report(step=step, loss=1.0 / (step + 1))
    return {"rank": ctx.rank, "loop_s": time.perf_counter() - t0}


def child(variant: str, args: argparse.Namespace, out: Path) -> None:
    """One process: the cluster with TLS on or off, and the three measurements."""
    os.environ["DASK_LEPTON_LAB__CLUSTER__TLS"] = "True" if variant == "tls" else "False"
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-tls-{variant}-"))
    os.environ["LEPTON_LAB_STATE_DIR"] = str(tmp / "state")
    sys.path.insert(0, str(HERE))
    import bench_peers
    import cloudpickle

    import lepton_lab as ll
    from lepton_lab.cluster.manager import ClusterManager
    from lepton_lab.store import Store

    cloudpickle.register_pickle_by_value(bench_peers)  # the workers cannot import bench/
    manager = ClusterManager(
        mode="local", n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    )
    manager.start()
    client = manager.client
    address = manager.scheduler_address
    store = Store(f"sqlite:///{tmp}/bench.db")
    common = {"framework": "torch", "workers": 2, "client": client, "store": store}
    common["artifact_dir"] = str(tmp / "artifacts")

    def fit(loop, config):
        run = ll.fit(loop, config=config, wait=True, **common)
        if run.status != "completed":
            raise RuntimeError(f"run {run.id} ended {run.status}: {run.error}")
        return run

    peer_config = {"peer": "ll", "seed": 0, "steps": args.steps}
    fit(bench_peers.train_loop, dict(peer_config, steps=5))  # warm: torch in the workers

    launches = []
    for _ in range(3):
        called = time.time()
        run = fit(one_step, {})
        rank0 = next(r for r in run.result if r["rank"] == 0)
        launches.append(rank0["first_step_wall"] - called)

    called = time.perf_counter()
    run = fit(reporter, {"reports": args.reports})
    elapsed = time.perf_counter() - called
    stored = store.count_metrics(run.id)
    expected = 2 * args.reports
    if stored < args.reports:
        raise RuntimeError(f"only {stored} of {expected} reports were stored")

    run = fit(bench_peers.train_loop, peer_config)
    rank0 = next(r for r in run.result if r["rank"] == 0)
    manager.close()
    out.write_text(
        json.dumps(
            {
                "address": address,
                "launch_s": statistics.median(launches),
                "reports_per_s": stored / elapsed,
                "stored": stored,
                "expected": expected,
                "epoch_s": sum(rank0["steps_s"]),
                "step_s": rank0["step_s"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="steps of the DDP epoch")
    parser.add_argument("--reports", type=int, default=2000, help="reports per rank")
    parser.add_argument("--child", choices=("tls", "tcp"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args, Path(args.out))
        return

    results: dict[str, list[dict]] = {"tcp": [], "tls": []}
    tmp = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    for repeat in range(args.repeats):
        order = ("tls", "tcp") if repeat % 2 == 0 else ("tcp", "tls")
        for variant in order:
            out = tmp / f"{variant}-{repeat}.json"
            cmd = [sys.executable, __file__, "--child", variant, "--out", str(out)]
            cmd += ["--steps", str(args.steps), "--reports", str(args.reports)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{variant} repeat {repeat} failed:\n{done.stderr[-3000:]}")
            results[variant].append(json.loads(out.read_text()))
            print(f"repeat {repeat + 1} {variant}: {results[variant][-1]}", file=sys.stderr)

    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    addresses = {v: results[v][0]["address"].split("://")[0] for v in results}
    print(f"\nll.fit over the lab's cluster, TLS against TCP, medians of {args.repeats} repeats")
    print(f"(comms: {addresses['tls']} vs {addresses['tcp']}; 2 workers, 1 thread each)\n")
    rows = [
        ("launch, call to rank 0's first step (s)", "launch_s", "{:.3f}"),
        (f"reports/s stored ({args.reports} per rank)", "reports_per_s", "{:.0f}"),
        (f"DDP epoch, {args.steps} steps (s)", "epoch_s", "{:.3f}"),
        ("DDP median step (ms)", "step_s", "{:.2f}"),
    ]
    print(f"| {'measure':<45} | {'TCP':>9} | {'TLS':>9} | {'TLS/TCP':>7} |")
    print(f"|{'-' * 47}|{'-' * 11}|{'-' * 11}|{'-' * 9}|")
    for title, key, fmt in rows:
        tcp, tls = med("tcp", key), med("tls", key)
        scale = 1000 if key == "step_s" else 1
        print(
            f"| {title:<45} | {fmt.format(tcp * scale):>9} | {fmt.format(tls * scale):>9} "
            f"| {tls / tcp:>7.3f} |"
        )
    ratio = med("tls", "epoch_s") / med("tcp", "epoch_s")
    verdict = "met" if ratio < 1.03 else "NOT met"
    print(f"\nTarget: the TLS epoch within 3 % of TCP's: {verdict} ({(ratio - 1) * 100:+.1f} %).")


if __name__ == "__main__":
    main()
