"""How a Keras run's ranks average gradients (keras_loop.BucketedSync against the flat
all-reduce it replaced), on a real 2-worker cluster through ll.fit.

The sync mode and bucket caps are module constants read when a rank starts; the tests set
them in the workers with ``client.run`` and put them back after each test. Callbacks leave
what they measured in this module's ``LAST`` in their worker, read back with ``client.run``.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

from lepton_lab.training import keras_loop
from tests.training.loops import digits_arrays

DEFAULTS = (keras_loop.GRADIENT_SYNC, keras_loop.BUCKET_CAP_MB, keras_loop.FIRST_BUCKET_CAP_MB)
TINY_CAP_MB = 0.001  # ~1 KiB: the test model's gradients then span several buckets
LAST: dict = {}  # per worker process: what the last rank's probe callback saw


def configure(mode: str, cap_mb: float, first_cap_mb: float) -> None:
    keras_loop.GRADIENT_SYNC = mode
    keras_loop.BUCKET_CAP_MB = cap_mb
    keras_loop.FIRST_BUCKET_CAP_MB = first_cap_mb
    LAST.clear()


@pytest.fixture
def sync(client):
    """``sync(mode, cap_mb)`` sets every worker's gradient sync; defaults come back after."""

    def set_mode(mode: str, cap_mb: float = DEFAULTS[1]) -> None:
        client.run(configure, mode, cap_mb, min(cap_mb, DEFAULTS[2]))

    yield set_mode
    client.run(configure, *DEFAULTS)


@pytest.fixture(scope="module")
def digits():
    return digits_arrays()


def seeded_dense(units: int, seed: int, **kwargs):
    """Unseeded initializers draw from Python's global ``random``, which the worker's other
    threads also draw from: ``set_random_seed`` alone does not fix a run's initial weights."""
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.layers.Dense(units, kernel_initializer=init, **kwargs)


def several_buckets_model():
    """Gradients of two dtypes (a bfloat16 layer among float32 ones), non-trainable weights
    (a frozen layer) and a LossScaleOptimizer, as mixed precision on a GPU has.

    Not batch norm: its moving statistics follow each rank's own batches, in the flat mode as
    well (nothing syncs non-trainable weights), so whole-model hashes would differ.
    """
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            seeded_dense(48, 1, activation="relu"),
            seeded_dense(48, 2, activation="relu", trainable=False),
            seeded_dense(32, 3, activation="relu", dtype="bfloat16"),
            seeded_dense(10, 4, dtype="float32"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def freeze_bfloat16_layer():
    """From the second epoch on, the bfloat16 layer is frozen: the trainable variables change
    in mid-run, and gradient sync must plan its buckets again. (Not the first layer: Keras
    itself then stops updating this model, the layer after the frozen one being bfloat16.)"""
    import keras

    class Freeze(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.layers[2].trainable = False

    return Freeze()


def twice_backward_model():
    """A custom train step that runs backward twice before one optimizer step."""
    import keras

    class TwiceBackward(keras.Sequential):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            for _ in range(2):
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
                self.optimizer.scale_loss(loss).backward()
            variables = self.trainable_weights[:]
            self.optimizer.apply([v.value.grad for v in variables], variables)
            return {}

    keras.utils.set_random_seed(0)
    model = TwiceBackward([keras.Input((64,)), seeded_dense(10, 1)])
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def branch_model(used_on_rank: int | None):
    """A model with a branch that only rank ``used_on_rank`` adds to its output (None: no
    rank), so the branch's weights get a gradient there and None elsewhere."""
    import keras

    import lepton_lab as ll

    try:
        uses_branch = ll.context().rank == used_on_rank
    except RuntimeError:  # the kernel's check of model_fn, outside any rank
        uses_branch = False

    class Branches(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = seeded_dense(32, 1, activation="relu")
            self.branch = seeded_dense(10, 2)
            self.out = seeded_dense(10, 3)

        def build(self, input_shape):
            self.hidden.build(input_shape)
            self.branch.build(input_shape)
            self.out.build((None, 32))

        def call(self, x):
            y = self.out(self.hidden(x))
            return y + self.branch(x) if uses_branch else y

    keras.utils.set_random_seed(0)
    model = Branches()
    model.build((None, 64))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def unused_branch_model():
    return branch_model(None)


def rank0_branch_model():
    return branch_model(0)


def small_model():
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
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def hook_count(model) -> int:
    """Gradient hooks on the model's parameters (torch keeps them in private dicts)."""
    params = [v.value for v in model.trainable_variables]
    return sum(
        len(p._post_accumulate_grad_hooks or {}) + len(p._backward_hooks or {}) for p in params
    )


def sample(model) -> dict:
    import psutil

    gc.collect()
    return {"rss": psutil.Process().memory_info().rss, "hooks": hook_count(model)}


def probe_callback(at_step: int = 200):
    """Samples RSS and hook count at step ``at_step`` and at the end, and keeps the model."""
    import keras

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.step = 0

        def on_train_batch_begin(self, batch, logs=None):
            self.step += 1
            if self.step == at_step:
                LAST["early"] = sample(self.model)

        def on_train_end(self, logs=None):
            LAST.update(end=sample(self.model), steps=self.step, model=self.model)

    return Probe()


def after_run() -> dict:
    """In a worker, once the run is over: what its rank's model still carries."""
    model = LAST.pop("model")
    return {
        "hooks": hook_count(model),
        "apply_wrapped": "apply" in vars(model.optimizer),
        "early": LAST["early"],
        "end": LAST["end"],
        "steps": LAST["steps"],
    }


def test_bucketed_sync_matches_the_flat_all_reduce_over_several_buckets(fit, sync, digits):
    """Also across a change of the trainable variables in mid-run (a layer frozen from epoch
    2): the step that notices it discards the buckets sent during its backward (reduced in
    place) and reduces the step again with new buckets."""
    import torch

    model = several_buckets_model()
    params = [v.value for v in model.trainable_variables]
    cap = int(TINY_CAP_MB * 2**20)
    groups = keras_loop._group(params, list(reversed(range(len(params)))), cap, cap)
    assert len(groups) >= 4
    assert {params[g[0]].dtype for g in groups} == {torch.float32, torch.bfloat16}

    x, y, *_ = digits
    histories = {}
    for mode in ("bucketed", "flat"):
        sync(mode, TINY_CAP_MB)
        run = fit(
            several_buckets_model,
            data=(x, y),
            epochs=3,
            batch_size=32,
            workers=2,
            precision="mixed",
            callbacks=[freeze_bfloat16_layer],
            wait=True,
        )
        assert run.status == "completed", run.error
        first, second = run.result
        assert first["weights_sha"] == second["weights_sha"], mode
        histories[mode] = first["history"]
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(histories["bucketed"][name], histories["flat"][name], rtol=1e-5)
    loss = histories["bucketed"]["loss"]
    assert loss[2] < loss[1] < loss[0]  # it still learns once the layer is frozen


def test_hooks_do_not_pile_up_nor_memory_grow_over_2000_steps_and_go_at_the_end(fit, sync, client):
    sync("bucketed")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8000, 64)).astype("float32")
    y = (x @ rng.standard_normal((64, 10))).argmax(1)
    # 4000 samples per rank, batch 8: 500 steps an epoch
    run = fit(
        small_model,
        data=(x, y),
        epochs=4,
        batch_size=8,
        workers=2,
        callbacks=[probe_callback],
        wait=True,
    )
    assert run.status == "completed", run.error
    for seen in client.run(after_run).values():
        assert seen["steps"] == 2000
        # two hooks per trainable variable (3 Dense layers: kernel and bias), step 200 as at
        # step 2000; and none left on the model once the run is over
        assert seen["early"]["hooks"] == seen["end"]["hooks"] == 2 * 6
        assert seen["hooks"] == 0 and not seen["apply_wrapped"]
        # a gradient-sized leak per step (~340 KB for this model's 85k parameters) would grow
        # ~600 MB over the 1800 steps; allocator and Python noise stays within a few MB
        growth = seen["end"]["rss"] - seen["early"]["rss"]
        assert growth < 32 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB"
    assert run.result[0]["weights_sha"] == run.result[1]["weights_sha"]


@pytest.mark.parametrize(
    "model_fn,branch_trains", [(unused_branch_model, False), (rank0_branch_model, True)]
)
def test_gradients_missing_on_some_ranks_are_handled_alike(
    fit, sync, digits, model_fn, branch_trains
):
    """No rank has the branch's gradients: they stay None and the branch never moves. Only
    rank 0 has them: rank 1 contributes zeros and applies the same average as rank 0. Tiny
    buckets put the branch's kernel in a bucket of its own (reduced in place where present)."""
    sync("bucketed", TINY_CAP_MB)
    x, y, *_ = digits
    run = fit(model_fn, data=(x, y), epochs=3, batch_size=32, workers=2, wait=True)
    assert run.status == "completed", run.error
    first, second = run.result
    assert first["weights_sha"] == second["weights_sha"]
    assert first["history"]["loss"][-1] < first["history"]["loss"][0]
    # weights 2 and 3 are the branch's kernel and bias; the others always train
    initial = model_fn().get_weights()
    for i, (before, after) in enumerate(zip(initial, first["weights"], strict=True)):
        moved = not np.array_equal(before, after)
        assert moved == (branch_trains or i not in (2, 3)), i


def test_a_second_backward_in_one_step_is_refused_with_a_clear_error(fit, sync, digits):
    """Its gradient would be accumulated into a tensor being all-reduced in place."""
    sync("bucketed", TINY_CAP_MB)
    x, y, *_ = digits
    run = fit(twice_backward_model, data=(x, y), epochs=1, batch_size=32, workers=2, wait=True)
    assert run.status == "failed"
    assert "runs backward more than once per optimizer step" in run.error
