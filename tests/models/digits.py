"""Tiny digits models (sklearn's 8x8 digits) for the registry tests, and helpers to look at what
a registry left on disk and in its store.

Keras runs on the torch backend here, as in the Lepton kernels; the SavedModel test starts its
own process for the TensorFlow backend.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np

#: rows after this one are held out: never trained on, used to compare reloaded models
TRAIN_ROWS = 1500


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_held_out, y_held_out): pixels scaled to [0, 1] as float32."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    return x[:TRAIN_ROWS], y[:TRAIN_ROWS], x[TRAIN_ROWS:], y[TRAIN_ROWS:]


def torch_mlp(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


@functools.cache
def trained_torch():
    """A 64-32-10 MLP after 100 full-batch Adam steps (about 90% held-out accuracy)."""
    import torch

    x, y, _, _ = digits()
    model = torch_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval()


@functools.cache
def trained_keras():
    """Input(64)-Dense(32, relu)-Dense(10, softmax), a few epochs on the torch backend."""
    import keras

    assert keras.backend.backend() == "torch", keras.backend.backend()
    keras.utils.set_random_seed(0)
    x, y, _, _ = digits()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=128, verbose=0)
    return model


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(outputs).argmax(axis=-1) == labels).mean())


def torch_out(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def files_under(root: Path) -> list[str]:
    """Every file and folder under ``root``, relative, sorted (empty when it does not exist)."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def row_counts(store) -> dict[str, int]:
    """Rows of each registry table, counted directly."""
    counts = {}
    with store.engine.connect() as conn:
        for table in ("model_versions", "model_artifacts", "model_aliases", "model_evaluations"):
            counts[table] = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
    return counts


#: settings that would point a test's registry somewhere else, or add lineage it does not expect
FOREIGN_SETTINGS = (
    "LEPTON_LAB_DATABASE_URL",
    "LEPTON_LAB_ARTIFACT_DIR",
    "LEPTON_LAB_MLFLOW_TRACKING_URI",
    "LEPTON_LAB_JOB_ID",
    "JPY_SESSION_NAME",
)


def use_state_dir(monkeypatch, state: Path):
    """Point ``ll.models`` at a fresh state dir (its SQLite store and artifact folder) and
    return its registry."""
    from lepton_lab.models import api

    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(state))
    for name in FOREIGN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(api, "_registry", None)
    return api.registry()
