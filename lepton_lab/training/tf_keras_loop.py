"""Keras ``model.fit`` on TensorFlow across the workers: ``ll.fit(..., backend="tensorflow")``.

Runs in a rank's TensorFlow process (``tf_child``), where ``ctx.strategy`` is a
``MultiWorkerMirroredStrategy``: ``model_fn()`` is called in ``strategy.scope()`` and the
user's own ``model.fit`` runs with their callbacks plus the reporter. ``tf.keras`` there is
``tf_keras`` (Keras 2): Keras 3's ``fit`` under MWMS fails with the installed versions
(keras-team/keras#20585, measured in docs/guide/tensorflow.md).

Data, as a TensorFlow user would expect it:
- ``(x, y)`` arrays: each rank takes its equal share (``equal_shard``) and batches it by
  ``batch_size`` per rank, through ``distribute_datasets_from_function`` (no re-sharding, no
  re-batching), so ``batch_size`` means what it means for torch-backend Keras runs.
- ``data_fn(ctx)`` returning ``(x, y)``: the same, with the shard the function chose.
- ``data_fn(ctx)`` returning a ``tf.data.Dataset``: handed to ``model.fit`` as it is; its
  batch is the global batch and TensorFlow shards it by its auto-shard policy (``AUTO``:
  ``FILE`` when it reads files, else ``DATA``), exactly as under MWMS by hand.
- ... unless its auto-shard policy is ``OFF``: then the rank sharded it itself (for example
  over ``ctx.shard_files(url)``, files at an fsspec URL that TensorFlow's readers cannot
  open), so each rank's dataset is used as it is, its batch the per-rank batch, for the
  smallest number of batches any rank has.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lepton_lab.training.context import context

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def set_precision(ctx: Any, precision: str | None) -> str:
    """``mixed``: ``mixed_float16`` on a GPU of compute capability 7.0 or newer,
    ``mixed_bfloat16`` on a CPU with native bf16; otherwise float32, with a warning."""
    import tensorflow as tf

    policy = "float32"
    if precision == "mixed":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            major, _ = tf.config.experimental.get_device_details(gpus[0]).get(
                "compute_capability", (0, 0)
            )
            if major >= 7:
                policy = "mixed_float16"
            else:
                ctx.warn("precision='mixed': this GPU has no fast float16 (compute < 7.0); float32")
        elif _cpu_has_bf16():
            policy = "mixed_bfloat16"
        else:
            ctx.warn(
                "precision='mixed': this CPU has no native bfloat16 (no avx512_bf16/amx_bf16), "
                "where mixed_bfloat16 is emulated and slower; training in float32"
            )
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


def _common_steps(ctx: Any, steps: int) -> int:
    """The smallest per-rank step count: every rank must take the same number of steps, or
    one waits in an all-reduce that the others never enter."""
    import tensorflow as tf

    if ctx.world_size == 1:
        return steps
    strategy = ctx.strategy

    @tf.autograph.experimental.do_not_convert
    def mine() -> Any:
        return tf.constant([steps], tf.int64)

    @tf.function(autograph=False)
    def smallest() -> Any:
        values = strategy.run(mine)
        return tf.reduce_min(strategy.gather(values, axis=0))

    return int(smallest().numpy())


def _array_input(ctx: Any, x: Any, y: Any, batch_size: int) -> dict[str, Any]:
    import tensorflow as tf

    steps = _common_steps(ctx, len(y) // batch_size)
    if steps < 1:
        raise ValueError(
            f"rank {ctx.rank} has {len(y)} samples, fewer than batch_size={batch_size}"
        )

    def per_worker(input_context: Any) -> Any:
        per_replica = input_context.get_per_replica_batch_size(batch_size * ctx.world_size)
        return (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(y), seed=ctx.rank, reshuffle_each_iteration=True)
            .batch(per_replica, drop_remainder=True)
            .repeat()
            .prefetch(tf.data.AUTOTUNE)
        )

    return {
        "x": ctx.strategy.distribute_datasets_from_function(per_worker),
        "steps_per_epoch": steps,
    }


def _own_shards(ctx: Any, dataset: Any) -> dict[str, Any]:
    """A dataset the rank sharded itself (policy OFF): used as it is, same step count on all."""
    import tensorflow as tf

    steps = int(dataset.cardinality().numpy())
    if steps == tf.data.INFINITE_CARDINALITY:
        raise ValueError("data_fn returned an infinite dataset; end it (take) or pass a finite one")
    if steps == tf.data.UNKNOWN_CARDINALITY:  # a generator or a filter: count its batches once
        steps = int(dataset.reduce(0, lambda count, _: count + 1).numpy())
    steps = _common_steps(ctx, steps)
    if steps < 1:
        raise ValueError(f"rank {ctx.rank}'s dataset is empty")
    repeated = dataset.repeat()
    return {
        "x": ctx.strategy.distribute_datasets_from_function(lambda _: repeated),
        "steps_per_epoch": steps,
    }


def _dataset_input(ctx: Any, dataset: Any) -> dict[str, Any]:
    import tensorflow as tf

    policy = dataset.options().experimental_distribute.auto_shard_policy
    if ctx.world_size > 1 and policy == tf.data.experimental.AutoShardPolicy.OFF:
        return _own_shards(ctx, dataset)
    return {"x": dataset}


def tf_keras_rank(config: dict[str, Any]) -> dict[str, Any]:
    """One rank of a TensorFlow-backend Keras run (called in the rank's TF process)."""
    import numpy as np
    import tensorflow as tf

    from lepton_lab.training.keras_loop import equal_shard, reporter_callback

    ctx = context()
    policy = set_precision(ctx, config.get("precision"))
    try:
        with ctx.strategy.scope():
            model = config["model_fn"]()
        if not isinstance(model, tf.keras.Model) or getattr(model, "optimizer", None) is None:
            raise TypeError(
                "model_fn must return a compiled tf.keras model in the TensorFlow ranks, got "
                f"{type(model).__module__}.{type(model).__name__}"
            )
        if config.get("data_fn") is not None:
            data = config["data_fn"](ctx)
            if isinstance(data, tf.data.Dataset):
                inputs: dict[str, Any] = _dataset_input(ctx, data)
            else:
                inputs = _array_input(ctx, *data, config["batch_size"])
        else:
            inputs = _array_input(
                ctx, *equal_shard(ctx, config["x"], config["y"]), config["batch_size"]
            )
        initial_epoch = 0
        state = ctx.checkpoint()
        if state is not None:
            model.set_weights(state["weights"])
            with ctx.strategy.scope():
                model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, state["optimizer"], strict=True):
                variable.assign(value)
            initial_epoch = state["epoch"] + 1
        # a class or function in the list makes its callback here, in tf.keras
        callbacks = [c() if callable(c) else c for c in config.get("callbacks") or []]
        history = model.fit(
            **inputs,
            epochs=config["epochs"],
            initial_epoch=initial_epoch,
            validation_data=config.get("validation_data"),
            callbacks=[
                *callbacks,
                reporter_callback(ctx, config.get("checkpoint_every"), tf.keras),
            ],
            verbose=0,
        )
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    weights = model.get_weights()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights))
    return {
        "rank": ctx.rank,
        "precision_policy": policy,
        "initial_epoch": initial_epoch,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "weights_sha": digest.hexdigest(),
        "weights": weights if ctx.is_chief else None,
    }
