"""ll.fit against its peers: one identical DDP loop run by ll.fit, torchrun and Ray Train.

Run:  .venv/bin/python bench/bench_peers.py [--repeats 3] [--steps 200] [--peers ll,torchrun,ray]
      [--verbose]

Ray is a bench-only dependency (never one of the package): ``make bench-deps`` installs the
``bench`` extra.
Without it the Ray column is skipped with a note.

The same loop (``train_loop`` below; only rank/world detection, DDP wrapping and reporting
differ) runs 2 ranks on gloo, one thread each, seeded: an MLP 512 -> 1024 -> 1024 -> 10 (ReLU),
SGD, on random 256 x 512 batches (a few made before the first step and cycled, so data making is
not timed), ``--steps`` steps. It is run three ways, alternated in one run (ll.fit, torchrun,
Ray, ll.fit, torchrun, Ray, ...) so drift on a shared machine hits every peer alike:

1. ll.fit: ``ll.fit(loop, framework="torch", workers=2, wait=True)`` on the lab's own embedded
   cluster (``ClusterManager(mode="local", n_workers=2, threads_per_worker=1)``), started once
   and warm; the process group is made by ll.fit, ``ctx.prepare`` wraps in DDP, and the loop
   reports the loss every step (``ctx.report(step=i, loss=...)``).
2. torchrun: ``torchrun --standalone --nproc_per_node=2 bench/bench_peers.py --torchrun-worker
   ...`` as a subprocess (this file is the worker script: only the standard library is imported
   before the loop); the loop makes the process group itself, wraps in DDP and reports nothing.
   This is the baseline of every ratio.
3. Ray Train (V2 API, 2.60): ``TorchTrainer`` with ``ScalingConfig(num_workers=2,
   use_gpu=False)`` on a warm local Ray (``ray.init(num_cpus=2)`` once, before timing);
   ``ray.train.torch.prepare_model`` wraps in DDP; the loop calls ``ray.train.report`` once, at
   its end (every report is a cross-rank barrier through the Ray controller, so per-step
   reports would time Ray's report rather than its training; ``--ray-report-every N`` reports
   every N steps instead).

Each peer first runs ``--warmup`` untimed rounds (imports torch in the Dask workers, fills the
page cache). Warm Ray still starts fresh processes on every ``TorchTrainer.fit`` (a controller,
the 2 workers and a few helper actors, each importing ray), which is most of its launch time.
Measured per run, from rank 0:
- per-step time: median of the step-start to step-start intervals, the first 5 steps skipped;
- wall: from the call (ll.fit / subprocess start / TorchTrainer.fit) to the result in hand;
- launch: from the call to the start of rank 0's first step (``time.time()``, one machine).
The table shows medians over ``--repeats`` and ratios against torchrun from the same run; the
header names the lepton_lab checkout measured (commit, uncommitted files). ``--verbose`` prints
each repeat (with the per-step median of the first and second half of the loop, and the
MALLOC_TRIM_THRESHOLD_ / OMP_NUM_THREADS that rank 0 saw) and Ray's worker logs; Ray runs
without its dashboard, so its PlacementGroupCleaner then warns every few seconds that the state
API is unavailable (harmless here).
"""

from __future__ import annotations

import os

# A copy of the environment from before anything starts. Dask's nanny writes its
# `distributed.nanny.pre-spawn-environ` (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS, MKL_NUM_THREADS,
# OPENBLAS_NUM_THREADS) into this process's os.environ when it spawns a worker; a torchrun child
# built from os.environ afterwards would inherit them (and Dask's allocator tuning) and stop
# being a plain-torchrun baseline. torchrun gets this copy instead; Ray is started before the
# Dask cluster, so its raylet (and the workers it spawns) never saw them. Each rank returns the
# values it saw (`--verbose` prints them).
CLEAN_ENV = dict(os.environ)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

SKIP = 5  # warm-up steps left out of the per-step median
PEERS = ("ll", "torchrun", "ray")
TITLES = {"ll": "ll.fit", "torchrun": "torchrun", "ray": "Ray Train"}


def _framework(peer: str):
    """(rank, world_size, wrap_in_ddp, report_step) for the framework running this rank."""
    if peer == "ll":
        import lepton_lab as ll

        ctx = ll.context()

        def report(step, loss):
            ctx.report(step=step, loss=loss)

        return ctx.rank, ctx.world_size, ctx.prepare, report
    if peer == "ray":
        import ray.train
        import ray.train.torch

        rctx = ray.train.get_context()
        return (
            rctx.get_world_rank(),
            rctx.get_world_size(),
            ray.train.torch.prepare_model,
            None,  # reports are made by the loop (end / every N), see the docstring
        )
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    return dist.get_rank(), dist.get_world_size(), DistributedDataParallel, None


def train_loop(config):
    """The loop every peer runs; returns rank's median step time, first-step wall time, loss."""
    import os
    import time

    import torch

    peer = config["peer"]
    rank, world, wrap, report = _framework(peer)
    ray_every = config.get("ray_report_every", 0) if peer == "ray" else 0
    if ray_every:
        import ray.train
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    net = torch.nn.Sequential(
        torch.nn.Linear(512, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 10),
    )
    model = wrap(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(config["seed"] + 1 + rank)
    batches = [
        (torch.randn(256, 512, generator=gen), torch.randint(0, 10, (256,), generator=gen))
        for _ in range(8)
    ]
    starts = []
    first_wall = None
    loss_value = float("nan")
    for step in range(config["steps"]):
        starts.append(time.perf_counter())
        if first_wall is None:
            first_wall = time.time()
        x, y = batches[step % len(batches)]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        if report is not None:
            report(step, loss_value)
        if ray_every and (step + 1) % ray_every == 0 and step + 1 < config["steps"]:
            ray.train.report({"step": step, "loss": loss_value})
    starts.append(time.perf_counter())
    steps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    kept = steps[SKIP:] if len(steps) > SKIP else steps
    out = {
        "rank": rank,
        "world_size": world,
        "step_s": sorted(kept)[len(kept) // 2],
        "steps_s": steps,
        "first_step_wall": first_wall,
        "loss": loss_value,
        # variables Dask's nanny sets; torchrun and Ray ranks must not get them from this bench
        "env": {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")},
    }
    if peer == "ray":
        import ray.train

        ray.train.report({"step": config["steps"] - 1, "loss": loss_value})
    return out


def torchrun_worker(config_json: str) -> None:
    """Entry point of each torchrun rank: own process group, the loop, rank 0 writes JSON."""
    import torch.distributed as dist

    config = json.loads(config_json)
    dist.init_process_group("gloo")
    try:
        out = train_loop(config)
    finally:
        dist.destroy_process_group()
    if out["rank"] == 0:
        Path(config["out"]).write_text(json.dumps(out))


# -- the three peers, as the caller sees them ---------------------------------------------------
def run_ll(config, client, store, artifact_dir):
    import lepton_lab as ll

    called = time.time()
    run = ll.fit(
        train_loop,
        framework="torch",
        workers=2,
        config=config,
        client=client,
        store=store,
        artifact_dir=artifact_dir,
        wait=True,
    )
    if run.status != "completed":
        raise RuntimeError(f"ll.fit run {run.id} ended {run.status}: {run.error}")
    rank0 = next(r for r in run.result if r["rank"] == 0)
    return called, time.time(), rank0


def run_torchrun(config, tmp: Path, n: int):
    out = tmp / f"torchrun-{n}.json"
    cfg = dict(config, out=str(out))
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = (
        [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    )
    cmd = [
        *launcher,
        "--standalone",
        "--nproc_per_node=2",
        str(Path(__file__).resolve()),
        "--torchrun-worker",
        json.dumps(cfg),
    ]
    called = time.time()
    proc = subprocess.run(cmd, env=dict(CLEAN_ENV), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    rank0 = json.loads(out.read_text())
    return called, time.time(), rank0


def run_ray(config, storage: Path, n: int):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    called = time.time()
    trainer = TorchTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
        run_config=RunConfig(storage_path=str(storage), name=f"peers-{n}"),
    )
    result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"Ray Train run failed: {result.error}")
    rank0 = result.return_value  # rank 0's return value (Ray Train V2)
    return called, time.time(), rank0


# -- driver ---------------------------------------------------------------------------------------
def lepton_lab_source() -> str:
    """Where the measured lepton_lab comes from: version, checkout commit, uncommitted edits."""
    import lepton_lab

    root = Path(lepton_lab.__file__).resolve().parent
    where = f"{lepton_lab.__version__} from {root}"
    try:
        git = ["git", "-C", str(root)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.split("\n")
        edits = sum(1 for line in dirty if line.strip())
        return f"{where} (commit {head}" + (f", {edits} uncommitted file(s))" if edits else ")")
    except (OSError, subprocess.CalledProcessError):
        return f"{where} (not a git checkout)"


def median(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds per peer first")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--ray-report-every", type=int, default=0, help="0: report at the end")
    parser.add_argument("--verbose", action="store_true", help="per-repeat raw numbers")
    parser.add_argument("--torchrun-worker", metavar="CONFIG_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torchrun_worker is not None:
        torchrun_worker(args.torchrun_worker)
        return

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {','.join(PEERS)}")
    notes = []
    try:
        from importlib.metadata import PackageNotFoundError, version

        ray_version = version("ray")
    except PackageNotFoundError:
        ray_version = "not installed"
    if "ray" in peers:
        try:
            import ray
            import ray.train.torch  # noqa: F401

        except ImportError as exc:
            peers.remove("ray")
            notes.append(f"Ray Train skipped: {exc} (pip install 'ray[train]')")
    import torch

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    os.environ["LEPTON_LAB_STATE_DIR"] = str(tmp / "state")  # nothing under ~/
    manager = client = None
    try:
        if "ray" in peers:
            # before the Dask cluster exists, so Ray's processes never see the nanny's variables
            os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=args.verbose,
                runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}},
                _temp_dir=str(tmp / "ray"),
            )
        if "ll" in peers:
            import distributed

            from lepton_lab.cluster.manager import ClusterManager
            from lepton_lab.cluster.security import client_security
            from lepton_lab.store import Store

            manager = ClusterManager(
                mode="local", n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
            )
            manager.start()
            client = distributed.Client(
                manager.scheduler_address,
                security=client_security(manager.client_security()),  # the lab's TLS keys
            )
            store = Store(f"sqlite:///{tmp}/bench.db")
        source = lepton_lab_source()  # as the workers imported it, before the tree can change
        leaked = {k: os.environ[k] for k in os.environ if os.environ.get(k) != CLEAN_ENV.get(k)}

        n = 0

        def one(peer: str, steps: int):
            nonlocal n
            n += 1
            config = {
                "peer": peer,
                "steps": steps,
                "seed": 0,
                "ray_report_every": args.ray_report_every,
            }
            if peer == "ll":
                called, done, rank0 = run_ll(config, client, store, str(tmp / "art"))
            elif peer == "torchrun":
                called, done, rank0 = run_torchrun(config, tmp, n)
            else:
                called, done, rank0 = run_ray(config, tmp / "ray_results", n)
            return {
                "step_ms": rank0["step_s"] * 1e3,
                "wall_s": done - called,
                "launch_s": rank0["first_step_wall"] - called,
                "loss": rank0["loss"],
                "env": rank0["env"],
                "halves_ms": [
                    median(half) * 1e3
                    for half in (
                        rank0["steps_s"][SKIP : steps // 2],
                        rank0["steps_s"][steps // 2 :],
                    )
                ],
            }

        for _ in range(args.warmup):
            for peer in peers:
                one(peer, min(args.steps, 2 * SKIP))
        raw: dict[str, list[dict]] = {p: [] for p in peers}
        for r in range(args.repeats):
            for peer in peers:
                raw[peer].append(one(peer, args.steps))
                if args.verbose:
                    m = raw[peer][-1]
                    print(
                        f"repeat {r + 1} {TITLES[peer]:<10} step {m['step_ms']:6.2f} ms "
                        f"(halves {m['halves_ms'][0]:.2f} / {m['halves_ms'][1]:.2f})  "
                        f"wall {m['wall_s']:6.2f} s  launch {m['launch_s']:6.2f} s  "
                        f"loss {m['loss']:.5f}  rank-0 env {m['env']}",
                        flush=True,
                    )
    finally:
        if client is not None:
            client.close()
        if manager is not None:
            manager.close()
        if "ray" in peers:
            ray.shutdown()
        shutdown_s = time.perf_counter() - started
        shutil.rmtree(tmp, ignore_errors=True)

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    print(f"\nlepton_lab {source}")
    print(
        f"machine: {platform.machine()}, {cpus} CPUs ({affinity} usable), "
        f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray_version}"
    )
    print(
        f"loop: 2 ranks, gloo, 1 thread each, MLP 512-1024-1024-10, batch 256/rank, "
        f"{args.steps} steps; medians of {args.repeats} alternated repeats "
        f"(+{args.warmup} untimed warm-up round)"
    )
    for note in notes:
        print(f"note: {note}")
    if args.verbose and leaked:
        print(f"env changed here since start (torchrun gets the start copy): {sorted(leaked)}")

    keys = ("step_ms", "wall_s", "launch_s", "loss")
    med = {p: {k: median([m[k] for m in raw[p]]) for k in keys} for p in peers if raw[p]}
    cols = [p for p in PEERS if p in med]
    base = med.get("torchrun")
    rows = [
        ("per-step time (ms)", "step_ms", "{:.2f}"),
        ("wall: call -> result (s)", "wall_s", "{:.2f}"),
        ("launch: call -> first step (s)", "launch_s", "{:.2f}"),
    ]
    header = "| measure | " + " | ".join(TITLES[p] for p in cols) + " |"
    print()
    print(header)
    print("|" + "---|" * (len(cols) + 1))
    for title, key, fmt in rows:
        print(f"| {title} | " + " | ".join(fmt.format(med[p][key]) for p in cols) + " |")
    if base is not None:
        for title, key, _ in rows:
            name = title.split(" (")[0]
            print(
                f"| {name}: ratio vs torchrun | "
                + " | ".join(f"{med[p][key] / base[key]:.2f}x" for p in cols)
                + " |"
            )
    else:
        print("(no torchrun column: ratios need it)")
    print(
        "| final loss, rank 0 (sanity) | "
        + " | ".join(f"{med[p]['loss']:.5f}" for p in cols)
        + " |"
    )
    report_note = {
        "ll": "ll.fit reports the loss every step",
        "torchrun": "torchrun reports nothing",
        "ray": (
            f"Ray reports every {args.ray_report_every} steps and at the end"
            if args.ray_report_every
            else "Ray reports once, at the end"
        ),
    }
    print("; ".join(report_note[p] for p in cols) + ".")
    print(f"total bench time {shutdown_s:.0f} s")


if __name__ == "__main__":
    main()
