"""Overhead of ll.fit for Keras against a plain model.fit in one process.

Run:  .venv/bin/python bench/bench_keras.py [--epochs 6]

Same model, same data, same batch size; ll.fit on ONE worker of an embedded cluster (so no
gradient all-reduce: this measures the wrapping, callbacks and reporting). Epoch times come
from a callback in both cases; the first epoch (warm-up) is left out. Target: ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import lepton_lab as ll  # noqa: E402
from lepton_lab.store import Store  # noqa: E402


def model_fn():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs["epoch_seconds"] = time.perf_counter() - self.t0

    return EpochTimer()


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, 64)).astype("float32")
    y = rng.integers(0, 10, args.samples)

    import torch

    def plain_epochs(threads: int) -> list[float]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            history = model_fn().fit(
                x, y, batch_size=64, epochs=args.epochs, verbose=0, callbacks=[epoch_timer()]
            )
        finally:
            torch.set_num_threads(before)
        return history.history["epoch_seconds"][1:]

    with tempfile.TemporaryDirectory() as tmp:
        client = ll.attach()
        # A Dask worker runs with OMP/MKL threads pinned to its own thread count (distributed's
        # pre-spawn environment), so the like-for-like baseline uses the same torch threads.
        worker_threads = max(client.run(torch.get_num_threads).values())
        same_threads = plain_epochs(worker_threads)
        all_threads = plain_epochs(os.cpu_count() or 1)
        run = ll.fit(
            model_fn,
            data=(x, y),
            batch_size=64,
            epochs=args.epochs,
            workers=1,
            callbacks=[epoch_timer()],
            client=client,
            store=Store(f"sqlite:///{tmp}/b.db"),
            artifact_dir=f"{tmp}/a",
            wait=True,
        )
        assert run.status == "completed", run.error
        lab_epochs = run.result[0]["history"]["epoch_seconds"][1:]
        ll.detach()

    print(
        f"\nKeras epoch time ({args.samples} samples, batch 64, median of epochs 2..{args.epochs})"
    )
    print(f"{'':<52}{'seconds':>10}")
    rows = [
        (f"baseline: model.fit, {worker_threads} torch thread(s) (= worker)", same_threads),
        (f"reference: model.fit, {os.cpu_count()} torch threads", all_threads),
        (f"ll.fit, 1 worker ({worker_threads} thread(s))", lab_epochs),
    ]
    for label, values in rows:
        print(f"{label:<52}{statistics.median(values):>10.3f}")
    ratio = statistics.median(lab_epochs) / statistics.median(same_threads)
    print(f"ratio ll.fit / baseline: {ratio:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
