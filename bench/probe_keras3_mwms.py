"""Does Keras 3 ``model.fit`` work under MultiWorkerMirroredStrategy with the installed versions?

Run:  .venv/bin/python bench/probe_keras3_mwms.py     (about 20 s)

Why it exists: TensorFlow-backend runs use tf_keras (``TF_USE_LEGACY_KERAS=1``) because Keras 3's
``fit`` failed under MWMS (keras-team/keras#20585; docs/guide/tensorflow.md). This starts two
processes with ``TF_CONFIG``, as a TensorFlow user would, runs Keras 3 (TF backend) and then
tf_keras on the same small problem, and prints one line per Keras: ``works`` or the error's last
line. When Keras 3 shows ``works``, the ranks could move to Keras 3.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

CHILD = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.random.RandomState(0).rand(512, 8).astype("float32")
y = (x.sum(1) > 4).astype("int64")
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
model.fit(dataset, epochs=1, verbose=0)
print("WORKS", keras.__version__, flush=True)
os._exit(0)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(legacy: bool) -> str:
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    procs = []
    for rank in range(2):
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        env["TF_USE_LEGACY_KERAS"] = "1" if legacy else "0"
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}}
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\ntimed out after 120 s"
        outputs.append((out, err))
    if all("WORKS" in out for out, _ in outputs):
        return "works (" + outputs[0][0].split("WORKS", 1)[1].strip() + ")"
    err = next(e for o, e in outputs if "WORKS" not in o)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return "fails: " + (lines[-1][:200] if lines else "no output")


def main() -> None:
    import importlib.metadata as md

    versions = ", ".join(
        f"{name} {md.version(name)}" for name in ("tensorflow", "keras", "tf-keras")
    )
    print(f"Keras under MultiWorkerMirroredStrategy, 2 processes ({versions}):")
    print(f"| Keras 3 (TF backend) | {probe(legacy=False)} |")
    print(f"| tf_keras (TF_USE_LEGACY_KERAS=1) | {probe(legacy=True)} |")


if __name__ == "__main__":
    main()
