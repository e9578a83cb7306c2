"""TensorFlow runs: ll.fit(backend="tensorflow") against the same tf.keras training by hand.

Run:  flock /tmp/cpu.lock .venv/bin/python bench/bench_tensorflow.py [--epochs 5 --repeats 2]
      (about 4-5 minutes on 2 cores; --diagnose adds two one-worker by-hand variants, ~1 min)

Same model (an MLP), same data, same per-rank batch size, same epochs, on an embedded 2-worker
cluster that is already up (a warm cluster), side by side in one run:

1. one worker: ``ll.fit(model_fn, data=(x, y), backend="tensorflow", workers=1)`` against a plain
   ``model.fit(x, y, batch_size=B)`` in a fresh ``python`` with ``TF_USE_LEGACY_KERAS=1``
   (tf.keras = tf_keras, as in the ranks);
2. two workers: ``ll.fit(..., workers=2)`` against MultiWorkerMirroredStrategy launched by hand:
   two ``python`` processes with ``TF_CONFIG`` (free ports on 127.0.0.1), each training on its
   half of the data through ``strategy.distribute_datasets_from_function`` with the same
   per-rank batch size and steps per epoch as ll.fit's ``_array_input``;
3. launch: wall time from the call (``ll.fit`` / ``Popen``) to the first training step (the
   first ``on_train_batch_begin``, the latest rank's), and from the call to the result.

Times come from one Keras callback (the same code in both: a factory, so ll.fit's ranks make it
in tf.keras) that records ``time.time()`` at train begin, the first batch and every epoch end,
and writes them to a JSON file per rank. An epoch time is the time between consecutive epoch
ends, so the first epoch (tracing) is left out. Configurations alternate within each repeat
(the order flips every repeat); the table shows medians over all repeats. Targets: epoch-time
ratio ll.fit / by hand <= 1.05.

``--diagnose`` splits the one-worker difference: by hand with ll.fit's tf.data pipeline and no
strategy, then that pipeline through a one-device ``MirroredStrategy`` (what ll.fit's one rank
used first: ~30% slower per step here, so one rank now uses TensorFlow's default strategy).

On 2 cores the two ranks of a 2-worker run share the CPU, as do the cluster's own processes,
which stay up (idle) during the by-hand runs too, so both sides see the same background.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

# ll.fit probes model_fn in this process with Keras 3; the ranks use tf.keras (tf_keras)
os.environ.setdefault("KERAS_BACKEND", "torch")

#: environment of the by-hand processes: what ll.fit's ranks get too (tf_process.child_env)
HAND_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "KERAS_BACKEND": "tensorflow",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
}
#: environment variables each rank records, to compare both sides' set-ups
WATCHED_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MALLOC_TRIM_THRESHOLD_",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_USE_LEGACY_KERAS",
    "KERAS_BACKEND",
)


# -- shipped to the ranks (by value: this file runs as __main__) ------------------------------
def make_model(features: int, hidden: int, classes: int) -> Any:
    """The MLP; ``keras`` is Keras 3 in the bench's process (ll.fit's probe) and tf.keras in
    the ranks and the by-hand processes."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(classes),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def timing_callback(folder: str) -> Any:
    """A Keras callback that writes its rank's timestamps to ``folder/rank-R.json``."""
    import keras

    class Timestamps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks = {"train_begin": time.time(), "first_batch": None, "epoch_ends": []}
            self.cpu0 = time.process_time()

        def on_train_batch_begin(self, batch, logs=None):
            if self.marks["first_batch"] is None:
                self.marks["first_batch"] = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.marks["epoch_ends"].append(time.time())

        def on_train_end(self, logs=None):
            import psutil

            config = json.loads(os.environ.get("TF_CONFIG") or "{}")
            rank = config.get("task", {}).get("index", 0)
            process = psutil.Process()
            # the process's start from /proc in clock ticks (psutil's create_time adds the
            # boot time, which /proc gives in whole seconds)
            with open("/proc/self/stat") as f:
                started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/uptime") as f:
                uptime = float(f.read().split()[0])
            age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
            self.marks.update(
                rank=rank,
                pid=os.getpid(),
                train_end=time.time(),
                process_start=time.time() - age,
                train_cpu_seconds=time.process_time() - self.cpu0,
                threads=process.num_threads(),
                affinity=len(os.sched_getaffinity(0)),
                nice=os.nice(0),
                steps=self.params.get("steps"),
                env={k: os.environ.get(k) for k in WATCHED_ENV},
                keras=type(self.model).__module__.split(".")[0],
            )
            with open(os.path.join(folder, f"rank-{rank}.json"), "w") as f:
                json.dump(self.marks, f)

    return Timestamps()


# -- the by-hand processes (this file run with --child SPEC) ----------------------------------
def child_main(spec: dict[str, Any]) -> None:
    """One by-hand process: plain ``model.fit(x, y)`` (one worker) or one MWMS rank.

    ``--diagnose`` adds two one-worker variants between the two: ``dataset`` (ll.fit's tf.data
    pipeline, no strategy) and ``mirrored`` (that pipeline through a one-device
    ``MirroredStrategy`` and ``distribute_datasets_from_function``, as ll.fit's one rank once
    did)."""
    import numpy as np
    import tensorflow as tf
    import tf_keras

    # the shared model_fn and callback say `import keras`; tf.keras is what they mean here
    sys.modules["keras"] = tf_keras
    world, rank, batch, mode = spec["world"], spec["rank"], spec["batch_size"], spec["mode"]
    strategy = None
    if world > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TF op
    elif mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    x = np.load(os.path.join(spec["data"], "x.npy"))
    y = np.load(os.path.join(spec["data"], "y.npy"))
    build = functools.partial(make_model, *spec["model"])
    callbacks = [timing_callback(spec["out"])]
    if mode == "plain":
        build().fit(x, y, batch_size=batch, epochs=spec["epochs"], callbacks=callbacks, verbose=0)
    else:
        n = len(y) // world  # this rank's equal share, as ll.fit's equal_shard takes it
        index = np.arange(rank, len(y), world)[:n]
        x, y = x[index], y[index]

        def per_worker(input_context):
            per_replica = input_context.get_per_replica_batch_size(batch * world)
            return (
                tf.data.Dataset.from_tensor_slices((x, y))
                .shuffle(len(y), seed=rank, reshuffle_each_iteration=True)
                .batch(per_replica, drop_remainder=True)
                .repeat()
                .prefetch(tf.data.AUTOTUNE)
            )

        if strategy is None:
            model = build()
            dataset = per_worker(tf.distribute.InputContext())
        else:
            with strategy.scope():
                model = build()
            dataset = strategy.distribute_datasets_from_function(per_worker)
        model.fit(
            dataset,
            steps_per_epoch=n // batch,
            epochs=spec["epochs"],
            callbacks=callbacks,
            verbose=0,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as ll.fit's ranks: MWMS's collective runtime can hang at interpreter exit


#: one-worker by-hand variants (--diagnose) and their child modes
DATASET = "by hand: tf.data"
MIRRORED = "by hand: tf.data + MirroredStrategy"
MODES = {"ll.fit": "ll", "by hand": "plain", DATASET: "dataset", MIRRORED: "mirrored"}


# -- the bench ----------------------------------------------------------------------------------
def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def read_marks(folder: str, world: int) -> list[dict[str, Any]]:
    marks = []
    for rank in range(world):
        with open(os.path.join(folder, f"rank-{rank}.json")) as f:
            marks.append(json.load(f))
    return marks


class CpuMeter:
    """CPU seconds used by this process and its descendants other than the training
    processes (the scheduler in this process, the nannies and workers) during one run."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()

    def _overhead(self) -> float:
        total = 0.0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                cmd = " ".join(p.cmdline())
                if "tf_child" in cmd or "--child" in cmd:
                    continue
                t = p.cpu_times()
                total += t.user + t.system
            except self.psutil.Error:
                pass
        return total

    def __enter__(self) -> CpuMeter:
        self.start = self._overhead()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = self._overhead() - self.start


def summarize(marks: list[dict[str, Any]], t_call: float, t_done: float) -> dict[str, Any]:
    ends = marks[0]["epoch_ends"]
    return {
        "epochs": [ends[i] - ends[i - 1] for i in range(1, len(ends))],  # rank 0, epoch 2..
        "launch": max(m["first_batch"] for m in marks) - t_call,
        "to_process": max(m["process_start"] for m in marks) - t_call,
        "to_train": max(m["train_begin"] for m in marks) - t_call,
        "wall": t_done - t_call,
        "steps": marks[0]["steps"],
        "train_cpu": sum(m["train_cpu_seconds"] for m in marks),
        "threads": [m["threads"] for m in marks],
        "env": marks[0]["env"],
        "keras": marks[0]["keras"],
    }


def run_by_hand(
    args: Any, tmp: str, data: str, world: int, tag: str, base: dict[str, str], mode: str
) -> dict[str, Any]:
    """``base``: the environment a user's own shell would give the processes."""
    out = tempfile.mkdtemp(prefix=f"{tag}-", dir=tmp)
    ports = free_ports(world) if world > 1 else []
    base = {k: v for k, v in base.items() if k != "TF_CONFIG"}
    procs = []
    with CpuMeter() as cpu:
        t_call = time.time()
        for rank in range(world):
            env = dict(base, **HAND_ENV)
            if world > 1:
                env["TF_CONFIG"] = json.dumps(
                    {
                        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                        "task": {"type": "worker", "index": rank},
                    }
                )
            spec = {
                "world": world,
                "rank": rank,
                "mode": mode,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "data": data,
                "out": out,
                "model": [args.features, args.hidden, args.classes],
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                    env=env,
                )
            )
        try:
            codes = [p.wait(timeout=args.timeout) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        t_done = time.time()
    if any(codes):
        raise RuntimeError(f"{tag}: by-hand processes exited with {codes}")
    result = summarize(read_marks(out, world), t_call, t_done)
    result["other_cpu"] = cpu.seconds
    return result


def run_ll_fit(args: Any, tmp: str, x: Any, y: Any, world: int, tag: str, kw: dict) -> dict:
    import lepton_lab as ll

    out = tempfile.mkdtemp(prefix=f"{tag}-", dir=tmp)
    with CpuMeter() as cpu:
        t_call = time.time()
        run = ll.fit(
            functools.partial(make_model, args.features, args.hidden, args.classes),
            data=(x, y),
            backend="tensorflow",
            workers=world,
            epochs=args.epochs,
            batch_size=args.batch_size,
            callbacks=[functools.partial(timing_callback, out)],
            **kw,
        )
        status = run.wait(timeout=args.timeout)
        t_done = time.time()
    if status != "completed":
        if status not in ("failed", "stopped"):
            run.stop()
        raise RuntimeError(f"{tag}: ll.fit ended {status}: {run.error}")
    result = summarize(read_marks(out, world), t_call, t_done)
    result["other_cpu"] = cpu.seconds
    # the driver's "start" event: validated, recorded, workers locked, ports found; the ranks'
    # tasks are submitted right after it
    result["to_submit"] = next(e["time"] for e in run.events() if e["kind"] == "start") - t_call
    return result


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="also time one-worker by-hand variants between plain fit and ll.fit's rank",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is left out)")

    import numpy as np

    import lepton_lab as ll  # noqa: F401 - imported before the cluster, as a notebook would
    from lepton_lab.cluster.manager import ClusterManager
    from lepton_lab.store import Store

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, args.features)).astype("float32")
    y = rng.integers(0, args.classes, args.samples)
    # the by-hand processes get the environment of a user's shell: this one, as it was before
    # the cluster started (LocalCluster's nannies run in this process and put their workers'
    # pre-spawn environment, OMP_NUM_THREADS=1 and co., into os.environ for good)
    user_env = dict(os.environ)
    configs = [("ll.fit", 1), ("by hand", 1), ("ll.fit", 2), ("by hand", 2)]
    if args.diagnose:
        configs[1:1] = [(DATASET, 1), (MIRRORED, 1)]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        np.save(os.path.join(data, "x.npy"), x)
        np.save(os.path.join(data, "y.npy"), y)
        manager = ClusterManager(
            mode="local",
            n_workers=2,
            threads_per_worker=1,
            memory_limit="4GiB",
            dashboard_address="127.0.0.1:0",
        )
        t0 = time.time()
        manager.start()
        changed = sorted(k for k in os.environ if os.environ.get(k) != user_env.get(k))
        log(f"cluster up in {time.time() - t0:.1f} s; it set in this process: {changed}")
        kw = dict(
            client=manager.client,
            store=Store(f"sqlite:///{tmp}/runs.db"),
            artifact_dir=f"{tmp}/artifacts",
        )
        try:
            # warm-up: the first run on a fresh cluster imports Lepton Lab's rank code in the
            # workers and Keras 3 here (ll.fit's probe); not counted
            n_warm = min(args.samples, 4 * args.batch_size * 2)
            warm = run_ll_fit(dict_args(args, epochs=2), tmp, x[:n_warm], y[:n_warm], 2, "warm", kw)
            log(f"warm-up ll.fit (2 workers, fresh cluster): launch {warm['launch']:.2f} s")
            for repeat in range(args.repeats):
                order = configs if repeat % 2 == 0 else configs[::-1]
                for side, world in order:
                    tag = f"{MODES[side]}{world}-r{repeat}"
                    if side == "ll.fit":
                        r = run_ll_fit(args, tmp, x, y, world, tag, kw)
                    else:
                        mode = MODES[side] if world == 1 else "mwms"
                        r = run_by_hand(args, tmp, data, world, tag, user_env, mode)
                    results[(side, world)].append(r)
                    log(
                        f"repeat {repeat + 1}/{args.repeats} {side:<7} {world} worker(s): "
                        f"epoch {med(r['epochs']):.3f} s ({r['steps']} steps), "
                        f"launch {r['launch']:.2f} s, wall {r['wall']:.2f} s, "
                        f"train CPU {r['train_cpu']:.1f} s, other CPU {r['other_cpu']:.1f} s, "
                        f"threads {r['threads']}, keras {r['keras']}, env {compact(r['env'])}"
                    )
        finally:
            manager.close()

    def pooled(side: str, world: int, key: str) -> float:
        rs = results[(side, world)]
        if key == "epochs":
            return med([e for r in rs for e in r["epochs"]])
        return med([r[key] for r in rs])

    print(
        f"\n### TensorFlow runs: ll.fit(backend='tensorflow') vs by hand "
        f"({args.samples} x {args.features} float32, Dense {args.hidden}-{args.hidden}-"
        f"{args.classes}, batch {args.batch_size} per rank, {args.epochs} epochs, "
        f"{args.repeats} repeat(s) alternated, {os.cpu_count()} CPUs)\n"
    )
    print("Launch breakdown (medians; seconds from the call to ...):\n")
    print(
        "| run | workers | ranks submitted | process started | train begin | first step | result |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    keys = ("to_submit", "to_process", "to_train", "launch", "wall")
    for side, world in sorted(configs, key=lambda c: (c[1], c[0] == "ll.fit")):
        cells = [
            f"{pooled(side, world, k):.2f}" if k != "to_submit" or side == "ll.fit" else "-"
            for k in keys
        ]
        print(f"| {side} | {world} | " + " | ".join(cells) + " |")
    print(
        "\nranks submitted: ll.fit's driver recorded the attempt's start (validated, probed, "
        "stored, workers locked, ports found) and submits the ranks; process started: the last "
        "rank's training process started (/proc, 10 ms ticks); train begin: its "
        "on_train_begin; first step: its first on_train_batch_begin; result: ll.fit's run "
        "done / all by-hand processes exited.\n"
    )
    if args.diagnose:
        print("One worker, by hand, step by step towards ll.fit's rank (epoch s, medians):\n")
        print("| by hand | steps/epoch | epoch s | vs plain |")
        print("|---|---:|---:|---:|")
        plain = pooled("by hand", 1, "epochs")
        for side in ("by hand", DATASET, MIRRORED, "ll.fit"):
            e = pooled(side, 1, "epochs")
            steps = results[(side, 1)][0]["steps"]
            print(f"| {side} | {steps} | {e:.3f} | {e / plain:.3f} |")
        print()
    print(
        "| workers | steps/epoch hand / ll | epoch s by hand | epoch s ll.fit | ratio | target "
        "| launch s by hand | launch s ll.fit | ratio | result s by hand | result s ll.fit "
        "| other CPU s hand / ll |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for world in (1, 2):
        hand, lab = results[("by hand", world)], results[("ll.fit", world)]
        e_h, e_l = pooled("by hand", world, "epochs"), pooled("ll.fit", world, "epochs")
        l_h, l_l = pooled("by hand", world, "launch"), pooled("ll.fit", world, "launch")
        w_h, w_l = pooled("by hand", world, "wall"), pooled("ll.fit", world, "wall")
        o_h, o_l = pooled("by hand", world, "other_cpu"), pooled("ll.fit", world, "other_cpu")
        ratio = e_l / e_h
        print(
            f"| {world} | {hand[0]['steps']} / {lab[0]['steps']} | {e_h:.3f} | {e_l:.3f} "
            f"| {ratio:.3f} {'ok' if ratio <= 1.05 else 'OVER'} | <= 1.05 | {l_h:.2f} "
            f"| {l_l:.2f} | {l_l / l_h:.2f} | {w_h:.2f} | {w_l:.2f} | {o_h:.1f} / {o_l:.1f} |"
        )
    print(
        "\nColumns: epoch s = median time between consecutive epoch ends on rank 0 (epochs "
        f"2..{args.epochs}, all repeats; by hand: 1 worker = plain model.fit(x, y), 2 workers = "
        "MWMS over TF_CONFIG with distribute_datasets_from_function); ratio = ll.fit / by hand; "
        "launch s = from the call (ll.fit on the warm cluster / Popen) to the first batch of "
        "the last rank; result s = from the call to ll.fit's result / to the by-hand processes' "
        "exit; other CPU s = CPU seconds of the bench process (Dask scheduler, ll.fit's driver) "
        "and the cluster's nannies and workers during the run, training processes excluded."
    )


def dict_args(args: Any, **changes: Any) -> Any:
    return argparse.Namespace(**{**vars(args), **changes})


def compact(env: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items() if v is not None) or "-"


if __name__ == "__main__":
    main()
