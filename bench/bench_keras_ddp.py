"""Per-step cost of ll.fit's Keras path against a plain torch DDP loop, 1 vs 2 workers.

Run:  flock /tmp/cpu.lock .venv/bin/python bench/bench_keras_ddp.py [--hidden 512] [--caps 4,8]

The same MLP (784 -> hidden -> hidden -> 10, plain SGD, the same per-rank batch and data):
- baseline: a torch.nn model in a per-worker loop, ``ll.fit(loop, framework="torch")`` with
  ``ctx.prepare(model)`` (DistributedDataParallel over gloo when 2 workers);
- the Keras model through ``ll.fit(model_fn, data=...)``, gradients averaged by bucketed
  all-reduces started from gradient hooks (``keras_loop.GRADIENT_SYNC = "bucketed"``);
- the same with one flat all-reduce after backward (``"flat"``).
Per-step times are taken inside the ranks: a Keras callback stamps every batch begin, the loop
stamps every step; a run's figure is the median step of each epoch after the first (warm-up),
median over those epochs. The table gives the median over repeats and, in brackets, the best
repeat (the runs are interleaved, so drift hits all alike; on 2 shared cores noise only adds
time). Per-rank batch size is fixed, so "2 vs 1" is the per-step time at 2 workers over 1
(1.00 = perfect weak scaling). ``--caps`` adds bucketed rows at other bucket caps (2 workers).
Target: Keras bucketed / DDP <= 1.05 at 2 workers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lepton_lab as ll
from lepton_lab.store import Store


def keras_model_fn(hidden: int):
    def model_fn():
        import keras

        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((784,)),
                keras.layers.Dense(hidden, activation="relu"),
                keras.layers.Dense(hidden, activation="relu"),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    return model_fn


def step_timer():
    """A Keras callback that logs each epoch's median step (batch begin to batch begin)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.stamps = []

        def on_train_batch_begin(self, batch, logs=None):
            self.stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            steps = [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
            logs["step_seconds"] = statistics.median(steps)

    return StepTimer()


def ddp_loop(config):
    """The torch twin of the Keras model, in a plain DDP loop over this rank's shard."""
    import torch

    ctx = ll.context()
    torch.manual_seed(0)
    hidden = config["hidden"]
    net = torch.nn.Sequential(
        torch.nn.Linear(784, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    model = ctx.prepare(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = (torch.as_tensor(a) for a in ctx.data)
    batch = config["batch_size"]
    medians = []
    for _ in range(config["epochs"]):
        order = torch.randperm(len(x))
        times = []
        for i in range(0, len(x) - batch + 1, batch):
            t0 = time.perf_counter()
            index = order[i : i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
    return medians


def set_sync(mode: str, cap_mb: float | None = None) -> None:
    from lepton_lab.training import keras_loop

    keras_loop.GRADIENT_SYNC = mode
    if cap_mb is not None:
        keras_loop.BUCKET_CAP_MB = cap_mb


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--caps", default="", help="extra bucket caps (MiB) at 2 workers: 1,4")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, 784)).astype("float32")
    y = rng.integers(0, 10, args.samples)
    common = dict(epochs=args.epochs, batch_size=args.batch_size)
    caps = [float(c) for c in args.caps.split(",") if c]
    with tempfile.TemporaryDirectory() as tmp:
        client = ll.attach()
        kw = dict(client=client, store=Store(f"sqlite:///{tmp}/b.db"), artifact_dir=f"{tmp}/a")
        from lepton_lab.training.keras_loop import BUCKET_CAP_MB as default_cap

        def per_step(kind: str, workers: int, cap_mb: float | None = None) -> float:
            """Rank 0's per-step seconds: median over the epochs after the first."""
            if kind == "ddp":
                config = {"hidden": args.hidden, **common}
                run = ll.fit(ddp_loop, data=(x, y), framework="torch", config=config,
                             workers=workers, wait=True, **kw)  # fmt: skip
                assert run.status == "completed", run.error
                return statistics.median(run.result[0][1:])
            client.run(set_sync, kind, cap_mb or default_cap)
            run = ll.fit(keras_model_fn(args.hidden), data=(x, y), workers=workers,
                         callbacks=[step_timer], wait=True, **common, **kw)  # fmt: skip
            assert run.status == "completed", run.error
            return statistics.median(run.result[0]["history"]["step_seconds"][1:])

        # at 1 worker there is nothing to all-reduce: one Keras row serves both modes
        rows = [("ddp", 1), ("ddp", 2), ("bucketed", 1), ("bucketed", 2), ("flat", 2)]
        rows += [("bucketed", 2, cap) for cap in caps]
        per_step("ddp", 2)  # warm-up: imports torch and Keras in both workers
        per_step("bucketed", 2)
        results: dict[tuple, list[float]] = {}
        for _ in range(args.repeat):
            for row in rows:
                results.setdefault(row, []).append(per_step(*row))
        client.run(set_sync, "bucketed", default_cap)
        threads = client.run(lambda: __import__("torch").get_num_threads()).values()
        ll.detach()

    report(args, results, caps, sorted(set(threads)), default_cap)


def report(args, results, caps, threads, default_cap) -> None:
    """The table: median over repeats, and the best repeat (noise on shared cores only ever
    adds time, so the minimum is the steadier figure), with Keras / DDP ratios of each."""
    med = {row: statistics.median(v) * 1000 for row, v in results.items()}
    low = {row: min(v) * 1000 for row, v in results.items()}
    for stat in (med, low):  # at 1 worker there is no all-reduce: one Keras row for both
        stat[("flat", 1)] = stat[("bucketed", 1)]
    print(
        f"\nper-step ms: MLP 784-{args.hidden}-{args.hidden}-10 (SGD), batch {args.batch_size} "
        f"per rank, {args.samples} samples; per run, rank 0's median step over epochs "
        f"2..{args.epochs}; median (min) of {args.repeat} interleaved repeats; torch threads "
        f"per worker {threads}; bucket cap {default_cap:g} MiB"
    )
    print(f"{'':<36}{'1 worker':>16}{'2 workers':>16}{'2 vs 1':>8}")
    labels = {
        "ddp": "baseline: torch loop (DDP at 2)",
        "bucketed": "Keras path, bucketed sync",
        "flat": "Keras path, flat sync",
    }

    def cell(row):
        return f"{med[row]:.2f} ({low[row]:.2f})"

    for kind, label in labels.items():
        scaling = med[(kind, 2)] / med[(kind, 1)]
        print(f"{label:<36}{cell((kind, 1)):>16}{cell((kind, 2)):>16}{scaling:>8.2f}")
    for kind in ("bucketed", "flat"):
        ratios = [
            f"{med[(kind, n)] / med[('ddp', n)]:.3f} ({low[(kind, n)] / low[('ddp', n)]:.3f})"
            for n in (1, 2)
        ]
        print(f"{'ratio Keras ' + kind + ' / DDP':<36}{ratios[0]:>16}{ratios[1]:>16}")
    print("target: Keras bucketed / DDP <= 1.05 at 2 workers (at 1 worker no sync runs)")
    for cap in caps:
        row = ("bucketed", 2, cap)
        print(
            f"bucketed, cap {cap:g} MiB, 2 workers: {cell(row)} ms, / DDP "
            f"{med[row] / med[('ddp', 2)]:.3f} ({low[row] / low[('ddp', 2)]:.3f})"
        )


if __name__ == "__main__":
    main()
