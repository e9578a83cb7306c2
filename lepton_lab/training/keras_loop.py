"""Keras ``model.fit`` data-parallel across Dask workers, on Keras 3's torch backend.

Why this mechanism (see docs/cluster.md): Keras 3's own ``model.fit`` under TensorFlow's
``MultiWorkerMirroredStrategy`` fails across processes (keras-team/keras#20585), a process can
join only one MWMS cluster (so a second run in the same worker hangs), and Keras 3.15 has no
torch-backend distribution API. On the torch backend a Keras model *is* a ``torch.nn.Module``
and ``train_step`` calls ``optimizer.apply(gradients, ...)``; averaging the gradients there
with one ``all_reduce`` over gloo/NCCL makes every rank take the same step. So each rank runs
the user's real ``model.fit`` on its shard, with the user's callbacks, and runs can follow
each other in the same workers (process groups are created and destroyed per attempt).
"""

from __future__ import annotations

import os
from typing import Any

from lepton_lab.training.context import TrainContext, context

BACKEND = "torch"


def ensure_torch_backend() -> Any:
    """Import keras on the torch backend, or say clearly why it cannot be."""
    import sys

    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != BACKEND:
            raise RuntimeError(
                f"keras is already imported with the {keras.backend.backend()!r} backend in "
                "this process; Lepton Lab's Keras runs need KERAS_BACKEND=torch set before "
                "keras is first imported"
            )
        return keras
    os.environ["KERAS_BACKEND"] = BACKEND
    import keras

    return keras


def check_compiled(model: Any) -> None:
    keras = ensure_torch_backend()
    if not isinstance(model, keras.Model):
        raise TypeError(f"model_fn must return a keras.Model, got {type(model).__name__}")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise TypeError("model_fn must return a compiled model: call model.compile(...) in it")


def _average_gradients(optimizer: Any, world: int) -> None:
    """Wrap ``optimizer.apply`` so it first averages gradients over all ranks."""
    import torch
    import torch.distributed as dist

    original = optimizer.apply

    def apply(grads: list[Any], trainable_variables: Any = None) -> Any:
        present = [g for g in grads if g is not None]
        if present:
            flat = torch.cat([g.reshape(-1) for g in present])
            dist.all_reduce(flat)
            flat /= world
            offset = 0
            for g in present:
                n = g.numel()
                g.copy_(flat[offset : offset + n].view_as(g))
                offset += n
        return original(grads, trainable_variables)

    optimizer.apply = apply


def _broadcast_weights(model: Any) -> None:
    """Start every rank from rank 0's initial weights."""
    import torch.distributed as dist

    for variable in model.weights:
        dist.broadcast(variable.value.data, src=0)


def equal_shard(ctx: TrainContext, x: Any, y: Any) -> tuple[Any, Any]:
    """Every rank gets the same number of samples: an uneven batch count would leave one
    rank waiting in a collective that the others never enter."""
    import numpy as np

    y = np.asarray(y)
    n = len(y) // ctx.world_size
    index = np.arange(ctx.rank, len(y), ctx.world_size)[:n]
    if isinstance(x, dict):
        return {k: np.asarray(v)[index] for k, v in x.items()}, y[index]
    return np.asarray(x)[index], y[index]


def _dataset_shard(ctx: TrainContext, dataset: Any, batch_size: int) -> Any:
    """A torch ``DataLoader`` over this rank's equal share of a map-style torch Dataset."""
    from torch.utils.data import DataLoader, Subset

    n = len(dataset) // ctx.world_size
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))[:n]
    return DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=True)


def _common_length(ctx: TrainContext, n: int) -> int:
    if ctx.world_size == 1:
        return n
    import torch
    import torch.distributed as dist

    t = torch.tensor([n])
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def reporter_callback(ctx: TrainContext, every: int | None, keras: Any = None) -> Any:
    """The Keras callback that streams epoch logs and writes checkpoints every N epochs.

    Built here, not at module level, so importing this module never imports Keras (the backend
    must be chosen first). ``keras``: the Keras of the rank (``tf.keras`` in TensorFlow ranks).
    """
    keras = keras or ensure_torch_backend()

    class LeptonReporter(keras.callbacks.Callback):
        # batch *begin*: Keras dispatches it synchronously in the training thread (a batch-end
        # hook would turn off Keras' asynchronous dispatch of batch logs)
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            ctx.progress(batch, self.params.get("steps"), self._epoch, self.params.get("epochs"))

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._epoch = epoch

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            steps = self.params.get("steps")
            ctx.progress(steps or 0, steps, epoch, self.params.get("epochs"), force=True)
            checkpoint = None
            if every and (epoch + 1) % every == 0 and ctx.is_chief:
                checkpoint = {
                    "epoch": epoch,
                    "weights": self.model.get_weights(),
                    "optimizer": [v.numpy() for v in self.model.optimizer.variables],
                }
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            ctx.report(step=epoch, checkpoint=checkpoint, **metrics)

    return LeptonReporter()


def keras_rank(config: dict[str, Any]) -> dict[str, Any]:
    """One rank of a Keras run (called by ``run_rank`` with ``framework="keras"``)."""
    import hashlib

    import cloudpickle
    import numpy as np

    keras = ensure_torch_backend()
    ctx = context()
    if config.get("precision") == "mixed":
        policy = "mixed_float16" if ctx.device.startswith("cuda") else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
    try:
        model = cloudpickle.loads(config["model_fn"])()
        check_compiled(model)
        inputs: dict[str, Any] = {"batch_size": config["batch_size"]}
        if config.get("data_fn") is not None:
            x, y = cloudpickle.loads(config["data_fn"])(ctx)
            n = _common_length(ctx, len(x))
            inputs.update(x=x[:n], y=y[:n])
        elif config.get("dataset") is not None:
            inputs = {
                "x": _dataset_shard(ctx, cloudpickle.loads(config["dataset"]), config["batch_size"])
            }
        else:
            x, y = equal_shard(ctx, config["x"], config["y"])
            inputs.update(x=x, y=y)
        if ctx.world_size > 1:
            _broadcast_weights(model)
            _average_gradients(model.optimizer, ctx.world_size)
        initial_epoch = 0
        state = ctx.checkpoint()
        if state is not None:
            model.set_weights(state["weights"])
            model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, state["optimizer"], strict=True):
                variable.assign(value)
            initial_epoch = state["epoch"] + 1
        callbacks = cloudpickle.loads(config["callbacks"]) if config.get("callbacks") else []
        callbacks = [c() if callable(c) else c for c in callbacks]  # factories make theirs here
        history = model.fit(
            **inputs,
            epochs=config["epochs"],
            initial_epoch=initial_epoch,
            validation_data=config.get("validation_data"),
            callbacks=[*callbacks, reporter_callback(ctx, config.get("checkpoint_every"))],
            shuffle=True,
            verbose=0,
        )
    finally:
        if config.get("precision") == "mixed":
            keras.mixed_precision.set_global_policy("float32")
    weights = model.get_weights()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights))
    return {
        "rank": ctx.rank,
        "initial_epoch": initial_epoch,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "weights_sha": digest.hexdigest(),
        "weights": weights if ctx.is_chief else None,
    }
