"""Keras ``model.fit`` data-parallel across Dask workers, on Keras 3's torch backend.

Why this mechanism (see docs/decisions/cluster.md): Keras 3's own ``model.fit`` under TensorFlow's
``MultiWorkerMirroredStrategy`` fails across processes (keras-team/keras#20585), a process can
join only one MWMS cluster (so a second run in the same worker hangs), and Keras 3.15 has no
torch-backend distribution API. On the torch backend a Keras model *is* a ``torch.nn.Module``
and ``train_step`` calls ``optimizer.apply(gradients, ...)``; averaging the gradients there
over gloo/NCCL makes every rank take the same step (the all-reduces start during backward,
from gradient hooks, in buckets: ``BucketedSync``). So each rank runs
the user's real ``model.fit`` on its shard, with the user's callbacks, and runs can follow
each other in the same workers (process groups are created and destroyed per attempt).
"""

from __future__ import annotations

import functools
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


#: How a multi-rank run averages gradients: "bucketed" (asynchronous all-reduces launched from
#: autograd hooks as buckets of gradients fill, so communication overlaps the rest of backward,
#: as torch DDP does) or "flat" (one all-reduce after backward: the first mechanism, kept so the
#: two can be compared). Read when each run starts: ``client.run`` can switch a worker.
#: "flat" stays the default: on the 2-core machine the bucketed sync measured slower (22 against
#: 14 ms a step at 2 workers, bench/bench_keras_ddp.py), as two ranks already use both cores and
#: there is nothing for the overlap to win; measure on more cores before switching.
GRADIENT_SYNC = "flat"
#: Bucket size cap in MiB, and the first bucket's (the last layers' gradients, which backward
#: produces first, leave early). DDP's are 25 and 1. 8 measured better for the bucketed sync: a
#: big kernel gets a bucket of its own, reduced in place and started before backward ends (MLP
#: 784-2048-2048-10 at 2 workers: 74 ms a step against 86 at 25 MiB; no difference at 512 wide;
#: bench/bench_keras_ddp.py --caps).
BUCKET_CAP_MB = 8.0
FIRST_BUCKET_CAP_MB = 1.0


class GradientSync:
    """Averages gradients over all ranks inside ``optimizer.apply``.

    Keras' torch ``train_step`` runs ``loss.backward()`` and then hands the gradients to
    ``optimizer.apply``: replacing ``apply`` on the optimizer instance is the one place where
    every rank's step can be made the same without changing the user's model or train step.
    ``close`` puts the optimizer back (the model is per run, but a wrapped method would keep
    this object, and its buffers, alive for as long as the model is).
    """

    def __init__(self, world: int) -> None:
        self.world = world
        self.optimizer: Any = None

    def attach(self, optimizer: Any) -> None:
        original_apply, original_scale = optimizer.apply, optimizer.scale_loss

        def apply(grads: list[Any], trainable_variables: Any = None) -> Any:
            variables = trainable_variables
            if variables is None:
                variables = getattr(optimizer, "_trainable_variables", None) or []
            return original_apply(self.average(list(grads), list(variables)), trainable_variables)

        def scale_loss(loss: Any) -> Any:
            self.arm()
            return original_scale(loss)

        optimizer.apply, optimizer.scale_loss = apply, scale_loss
        self.optimizer = optimizer

    def arm(self) -> None:
        """Keras' ``train_step`` scales the loss just before ``backward``: the signal that the
        next backward is a training step's (a subclass may start reducing during it)."""

    def average(self, grads: list[Any], variables: list[Any]) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Restore the optimizer's own methods (instance attributes shadow the class's)."""
        if self.optimizer is not None:
            for name in ("apply", "scale_loss"):
                self.optimizer.__dict__.pop(name, None)
            self.optimizer = None


class FlatSync(GradientSync):
    """One all-reduce of all gradients, concatenated, after the whole backward pass.

    Ranks whose grads are None for different variables would reduce buffers of different sizes:
    only a model whose missing gradients are the same on every rank is safe here.
    """

    def average(self, grads: list[Any], variables: list[Any]) -> list[Any]:
        import torch
        import torch.distributed as dist

        present = [g for g in grads if g is not None]
        if present:
            flat = torch.cat([g.reshape(-1) for g in present])
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for g in present:
                n = g.numel()
                g.copy_(flat[offset : offset + n].view_as(g))
                offset += n
        return grads


def _group(params: list[Any], order: list[int], first_cap: int, cap: int) -> list[list[int]]:
    """Split ``order`` (indices into ``params``) into runs of one dtype and device, each up to
    its cap in bytes (the first run ``first_cap``; a variable over the cap is a run alone).

    Every rank computes the same runs from the same model, so every rank issues the same
    all-reduces in the same order: gloo and NCCL match collectives by order, not by name.
    """
    groups: list[list[int]] = []
    size = 0
    for j in order:
        p = params[j]
        nbytes = p.numel() * p.element_size()
        limit = first_cap if len(groups) == 1 else cap
        head = params[groups[-1][0]] if groups else None
        fits = head is not None and (head.dtype, head.device) == (p.dtype, p.device)
        if fits and size + nbytes <= limit:
            groups[-1].append(j)
            size += nbytes
        else:
            groups.append([j])
            size = nbytes
    return groups


class _Bucket:
    """Gradients of consecutive variables (in backward order), all-reduced together.

    A bucket of one variable reduces its gradient tensor in place (no copy in or out, as
    DDP's ``gradient_as_bucket_view`` saves); a bucket of several is copied into one flat
    buffer, allocated once (steps neither allocate nor grow memory for it). The last bucket
    also carries ``flags`` presence counts, one per variable (1 where a rank has a gradient),
    so that a rank that lacks a gradient learns whether any rank had one without another
    collective; every rank reduces the same number of elements whichever gradients it lacks.
    """

    def __init__(self, params: list[Any], index: list[int], offset: int, flags: int) -> None:
        import torch

        self.params = params
        self.index = index  # each variable's position in the list that apply receives
        self.offset = offset  # the position of its first variable in the presence counts
        self.kind = {"dtype": params[0].dtype, "device": params[0].device}
        self.sizes = [p.numel() for p in params]
        self.numel = sum(self.sizes)
        self.flags = flags
        alone = len(params) == 1 and not flags
        self.buffer = None if alone else torch.empty(self.numel + flags, **self.kind)
        self.reset()

    def reset(self) -> None:
        self.arrived = [False] * len(self.params)
        self.waiting = len(self.params)
        self.sent: list[Any] | None = None  # the gradient tensors it was launched with
        self.tensor: Any = None  # what is being reduced: a gradient itself, or a buffer
        self.work: Any = None

    def launch(self, grads: list[Any], flags: Any = None) -> None:
        """Start the all-reduce of ``grads`` (None: this rank has none: zeros go instead)."""
        import torch
        import torch.distributed as dist

        self.sent = grads
        alone = grads[0] if self.buffer is None else None
        if alone is not None and alone.is_contiguous():
            self.tensor = alone
        else:
            parts = [
                torch.zeros(n, **self.kind) if g is None else g.reshape(-1)
                for g, n in zip(grads, self.sizes, strict=True)
            ]
            buffer = (
                self.buffer if self.buffer is not None else torch.empty(self.numel, **self.kind)
            )
            self.tensor = torch.cat([*parts, flags] if self.flags else parts, out=buffer)
        self.work = dist.all_reduce(self.tensor, async_op=True)

    def settle(self, world: int) -> None:
        """Wait for the all-reduce and leave a gradient reduced in place as the average, the
        same on every rank, so that reducing it again (after a discarded step) still averages
        (a second reduce of equal values is that value times ``world``)."""
        self.work.wait()
        if self.tensor is self.sent[0]:
            self.tensor.div_(world)
        self.reset()

    def counts(self) -> list[float]:
        """The presence counts this (last) bucket carried: a device sync on a GPU."""
        return self.tensor[self.numel :].tolist()

    def write(self, out: list[Any], world: int, counts: list[float] | None) -> None:
        """Put the averages into ``out`` (the list apply gets): into the gradient tensors
        themselves, or, for a gradient this rank lacks that another rank has, a new tensor
        (every rank then updates that variable alike). ``counts`` is None when this rank
        lacks no gradient."""
        import torch

        if self.tensor is self.sent[0]:  # reduced in place
            self.tensor.div_(world)
        else:
            sums = self.tensor[: self.numel].split(self.sizes)
            for i, (j, total) in enumerate(zip(self.index, sums, strict=True)):
                if out[j] is not None:  # divide and write back in one pass over the memory
                    torch.div(total.view_as(out[j]), world, out=out[j])
                elif counts is not None and counts[self.offset + i] > 0:
                    out[j] = total.view_as(self.params[i]) / world
        self.reset()


class BucketedSync(GradientSync):
    """Bucketed all-reduces started during backward, as each bucket's gradients are ready.

    Buckets follow the trainable variables in reverse (backward produces the last layers'
    gradients first) and launch strictly in order, bucket k only after buckets < k, so the
    collectives match across ranks whatever order hooks fire in. Hooks (``post accumulate
    grad`` on each variable's ``torch.nn.Parameter``) are registered once per plan, not per
    step. They act only between ``scale_loss`` (Keras' train step calls it just before
    ``backward``) and ``apply``: a backward elsewhere (a user's callback on one rank) must not
    start collectives the other ranks never join. Whatever did not leave during backward
    (gradients that never came, a train step that never scales its loss) leaves in ``apply``.
    A second backward into a gradient already sent is refused: a rank cannot know whether its
    peers' gradients changed too, so no repair would be the same on every rank.
    """

    def __init__(self, world: int, cap_mb: float, first_cap_mb: float) -> None:
        super().__init__(world)
        self.cap, self.first_cap = int(cap_mb * 2**20), int(first_cap_mb * 2**20)
        self.key: tuple[int, ...] | None = None
        self.buckets: list[_Bucket] = []
        self.where: dict[int, tuple[int, int]] = {}  # id(parameter) -> (bucket, slot)
        self.handles: list[Any] = []
        self.launched = 0  # buckets launched this step, always a prefix
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def _on_grad(self, param: Any) -> None:
        """A parameter's gradient is complete: launch every bucket, in order, that is full."""
        if not self.armed:
            return
        k, i = self.where[id(param)]
        bucket = self.buckets[k]
        if not bucket.arrived[i]:
            bucket.arrived[i] = True
            bucket.waiting -= 1
            while self.launched < len(self.buckets) and self.buckets[self.launched].waiting == 0:
                ready = self.buckets[self.launched]
                self._launch(ready, [p.grad for p in ready.params])

    def average(self, grads: list[Any], variables: list[Any]) -> list[Any]:
        key = tuple(map(id, variables))
        if key != self.key:  # first step, or the trainable variables changed
            self._discard()
            self._plan(variables, key)
        elif not self._sent_these(grads):
            self._discard()  # the same on every rank: it depends on the train step's code
        for bucket in self.buckets[self.launched :]:
            self._launch(bucket, [grads[j] for j in bucket.index])
        for bucket in self.buckets:
            bucket.work.wait()
        counts = self.buckets[-1].counts() if any(g is None for g in grads) else None
        out = list(grads)
        for bucket in self.buckets:
            bucket.write(out, self.world, counts)
        self.launched, self.armed = 0, False
        return out

    def _launch(self, bucket: _Bucket, grads: list[Any]) -> None:
        """Launch the next bucket; the last one carries every variable's presence count."""
        import torch

        flags = None
        if bucket is self.buckets[-1]:
            sent = [g for b in self.buckets[:-1] for g in b.sent] + grads
            if all(g is not None for g in sent):
                flags = self.ones
            else:
                flags = torch.tensor([float(g is not None) for g in sent], **bucket.kind)
        bucket.launch(grads, flags)
        self.launched += 1

    def _sent_these(self, grads: list[Any]) -> bool:
        """Whether the buckets that left during backward hold the gradients apply was given
        (a custom train step may hand apply other tensors than ``.grad``)."""
        return all(
            bucket.sent[i] is grads[j]
            for bucket in self.buckets[: self.launched]
            for i, j in enumerate(bucket.index)
        )

    def _discard(self) -> None:
        """Let this step's launched all-reduces complete (every rank issued them) and
        forget them, so the step is reduced again from scratch."""
        for bucket in self.buckets[: self.launched]:
            bucket.settle(self.world)
        self.launched = 0

    def _refuse_late(self, key: int, grad: Any) -> None:
        """Runs before a gradient is accumulated into ``.grad``: one whose bucket is already
        being reduced (a second backward in one step) would race the in-place all-reduce."""
        if self.where[key][0] < self.launched:
            raise RuntimeError(
                "a gradient arrived after its bucket's all-reduce had started: this train "
                "step runs backward more than once per optimizer step, which the bucketed "
                "gradient sync does not support: set "
                "lepton_lab.training.keras_loop.GRADIENT_SYNC = 'flat' in the workers "
                "(client.run) for such a model"
            )

    def _plan(self, variables: list[Any], key: tuple[int, ...]) -> None:
        """Buckets and hooks for these variables (the hooks of an earlier plan removed)."""
        import torch

        self._unhook()
        params = [v.value for v in variables]
        groups = _group(params, list(reversed(range(len(params)))), self.first_cap, self.cap)
        offsets = [sum(len(g) for g in groups[:k]) for k in range(len(groups))]
        flags = [0] * (len(groups) - 1) + [len(params)]
        self.buckets = [
            _Bucket([params[j] for j in g], g, offset, n)
            for g, offset, n in zip(groups, offsets, flags, strict=True)
        ]
        self.ones = torch.ones(len(params), **self.buckets[-1].kind)
        self.where = {id(params[j]): (k, i) for k, g in enumerate(groups) for i, j in enumerate(g)}
        hooked = [p for p in params if isinstance(p, torch.nn.Parameter) and p.requires_grad]
        self.handles = [p.register_post_accumulate_grad_hook(self._on_grad) for p in hooked]
        self.handles += [
            p.register_hook(functools.partial(self._refuse_late, id(p))) for p in hooked
        ]
        self.key = key

    def _unhook(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def close(self) -> None:
        """Remove the hooks and drop the buffers: the Dask worker runs the next run's ranks,
        and a hook left on a parameter would keep this object alive and fire in them."""
        self._unhook()
        self.buckets, self.where, self.key = [], {}, None
        super().close()


def _average_gradients(optimizer: Any, world: int) -> GradientSync:
    """Make ``optimizer.apply`` average gradients over all ranks first; ``close()`` undoes it."""
    if GRADIENT_SYNC == "flat":
        sync: GradientSync = FlatSync(world)
    elif GRADIENT_SYNC == "bucketed":
        sync = BucketedSync(world, BUCKET_CAP_MB, FIRST_BUCKET_CAP_MB)
    else:
        raise ValueError(f"GRADIENT_SYNC must be 'bucketed' or 'flat', got {GRADIENT_SYNC!r}")
    sync.attach(optimizer)
    return sync


def _broadcast_weights(model: Any) -> None:
    """Start every rank from rank 0's initial weights."""
    import torch.distributed as dist

    for variable in model.weights:
        dist.broadcast(variable.value.data, src=0)


def equal_shard(ctx: TrainContext, x: Any, y: Any) -> tuple[Any, Any]:
    """This rank's rows of whole ``(x, y)`` arrays (``staging.take_rows``), for the ranks
    that get the whole arrays (TensorFlow processes)."""
    from lepton_lab.training.staging import take_rows

    return take_rows(x, y, ctx.rank, ctx.world_size)


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
    sync: GradientSync | None = None
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
            x, y = ctx.data  # this rank's shard, staged by the driver (training/staging.py)
            inputs.update(x=x, y=y)
        if ctx.world_size > 1:
            _broadcast_weights(model)
            sync = _average_gradients(model.optimizer, ctx.world_size)
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
        if sync is not None:
            sync.close()
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
