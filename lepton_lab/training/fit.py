"""``ll.fit``: validate, record, place one rank per worker, watch, restart, finish.

The driver is a thread in the calling process (the notebook kernel), so ``ll.fit`` returns at
once and the kernel stays usable. It owns the run's record in the store; ranks only send
events. Ranks are pinned to workers (``workers=[addr]``, ``allow_other_workers=False``), and the
run holds a ``MultiLock`` on its workers, so two runs never interleave ranks on one worker (which
would deadlock both rendezvous). A pinned task whose worker dies would wait forever, so the
driver watches the scheduler's worker list itself and treats a lost worker as a failure.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from lepton_lab.cluster.scheduler import scheduler_identity
from lepton_lab.config.files import private_dir
from lepton_lab.config.processes import identity
from lepton_lab.config.settings import ENV_POOL, state_dir
from lepton_lab.store import Store, open_store
from lepton_lab.training.context import request_stop, stop_event_name, topic_for
from lepton_lab.training.rank import free_port, host_of, run_rank
from lepton_lab.training.staging import DataStage, stageable
from lepton_lab.training.tf_process import RankProcessExited, abort_attempt, run_tf_rank

log = logging.getLogger("lepton_lab.training")

FRAMEWORKS = ("torch", "keras", "tensorflow")
#: where a Keras run's ranks train: Keras 3 on torch in the workers, or tf.keras in a
#: TensorFlow process per rank (``tf_process``)
BACKENDS = ("torch", "tensorflow")
PRECISIONS = (None, "32", "mixed")


class FitError(ValueError):
    """``ll.fit`` was called with something that cannot run; nothing was started or stored."""


class WorkersUnavailable(Exception):
    """The workers an attempt needs did not come in time."""


class RankFailure(Exception):
    def __init__(self, rank: int | None, message: str) -> None:
        super().__init__(message)
        self.rank = rank
        self.message = message


def _pool_workers(client: Any) -> list[str]:
    import os

    info = scheduler_identity(client)["workers"]
    addresses = sorted(info)
    if os.environ.get(ENV_POOL) == "gpu":
        gpu = [a for a in addresses if info[a].get("resources", {}).get("GPU")]
        return gpu or addresses
    return addresses


def _validate(
    fn: Any,
    framework: str | None,
    workers: int | None,
    available: int,
    config: Any,
    precision: str | None,
    max_failures: int,
    adapt: dict[str, int] | None = None,
) -> None:
    if not callable(fn):
        raise FitError(f"the training function must be callable, got {type(fn).__name__}")
    if framework not in FRAMEWORKS:
        raise FitError(f"framework={framework!r} is not supported; use one of {FRAMEWORKS}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise FitError(f"workers must be a positive integer, got {workers!r}")
    if adapt is not None:
        # an adaptive cluster brings the workers a run asks for, up to its maximum
        if (workers or 1) > adapt["maximum"]:
            raise FitError(
                f"workers={workers} but the adaptive cluster grows to at most "
                f"{adapt['maximum']} worker(s); raise its maximum or ask for fewer"
            )
    elif (workers or available) > available:
        raise FitError(f"workers={workers} but the cluster has only {available} worker(s)")
    elif available == 0:
        raise FitError("the cluster has no workers; scale it up first")
    if precision not in PRECISIONS:
        raise FitError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise FitError(f"max_failures must be a non-negative integer, got {max_failures!r}")
    import cloudpickle

    for what, obj in (("training function", fn), ("config", config)):
        try:
            cloudpickle.dumps(obj)
        except Exception as exc:  # noqa: BLE001 - any pickling failure is the user's to fix
            raise FitError(
                f"the {what} cannot be sent to the workers (not picklable): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _check_tensorflow() -> None:
    """One line that says what to install, before anything starts (the workers share this
    environment; on a remote cluster a missing TensorFlow fails the rank instead)."""
    import importlib.util

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):  # a broken or blocked install counts as absent
            return True

    missing = [m for m in ("tensorflow", "tf_keras") if absent(m)]
    if missing:
        raise FitError(
            f"TensorFlow runs need {' and '.join(missing)}, which this environment lacks: "
            "pip install 'lepton-lab[tensorflow]'"
        )


def _keras_family(obj: Any, base: str = "Model") -> str | None:
    """``"keras"`` (Keras 3), ``"tf_keras"`` (Keras 2), or None for an object that is not a
    Keras ``base`` (Model, Callback), without importing either."""
    for cls in type(obj).__mro__:
        root = cls.__module__.split(".")[0]
        if cls.__name__ == base and root in ("keras", "tf_keras"):
            return root
    return None


def _check_tf_model(model: Any) -> None:
    """A TensorFlow-backend run rebuilds the model in tf.keras in each rank: what the kernel's
    ``model_fn()`` returns must be a compiled Keras model (Keras 3 or tf.keras)."""
    if _keras_family(model) is None:
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        hint = (
            "; for a torch model, use a training loop with framework='torch'"
            if type(model).__module__.startswith("torch")
            else ""
        )
        raise FitError(
            f"backend='tensorflow' needs model_fn to return a compiled Keras model, got {kind}"
            + hint
        )
    if getattr(model, "optimizer", None) is None:
        raise FitError("model_fn must return a compiled model: call model.compile(...) in it")


def _length(value: Any) -> int:
    if isinstance(value, dict):
        lengths = {len(v) for v in value.values()}
        if len(lengths) != 1:
            raise FitError(f"the input arrays have different lengths: {sorted(lengths)}")
        return lengths.pop()
    return len(value)


def _keras_config(
    model_fn: Any,
    data: Any,
    epochs: int,
    batch_size: int,
    validation_data: Any,
    callbacks: Any,
    checkpoint_every: int | None,
    precision: str | None,
    backend: str,
) -> dict[str, Any]:
    """Check a Keras call in the kernel (before any rank starts) and pack it for the ranks."""
    import cloudpickle

    from lepton_lab.training.keras_loop import check_compiled, ensure_torch_backend

    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FitError(f"{name} must be a positive integer, got {value!r}")
    if checkpoint_every is not None and (
        not isinstance(checkpoint_every, int) or checkpoint_every < 1
    ):
        raise FitError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    if backend == "tensorflow":
        _check_tensorflow()
        _check_tf_model(model_fn())
        for callback in callbacks or []:
            if not callable(callback) and _keras_family(callback, "Callback") == "keras":
                raise FitError(
                    f"backend='tensorflow': {type(callback).__name__} is a Keras 3 callback, "
                    "which cannot run in the tf.keras ranks; pass its class or a function that "
                    "makes it (e.g. lambda: keras.callbacks.EarlyStopping(patience=2)), and "
                    "each rank makes its own"
                )
    else:
        try:
            ensure_torch_backend()
            probe = model_fn()
            check_compiled(probe)
        except (TypeError, RuntimeError) as exc:
            raise FitError(str(exc)) from exc
    # torch ranks unpickle these only once Keras' backend is chosen; TensorFlow ranks get the
    # whole config packed with its source (``source_pickle``) and unpickle it after set-up
    ship = (lambda value: value) if backend == "tensorflow" else cloudpickle.dumps
    config: dict[str, Any] = {
        "model_fn": ship(model_fn),
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_data": validation_data,
        "callbacks": ship(list(callbacks)) if callbacks else None,
        "checkpoint_every": checkpoint_every,
        "precision": precision,
    }
    _refuse_tf_dataset(data)
    if callable(data):
        config["data_fn"] = ship(data)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        if _length(x) != _length(y):
            raise FitError(
                f"data has {_length(x)} samples but {_length(y)} labels; they must match"
            )
        config["x"], config["y"] = x, y
    elif _is_torch_dataset(data):
        try:
            config["dataset"] = cloudpickle.dumps(data)
        except Exception as exc:  # noqa: BLE001
            raise FitError(f"the dataset cannot be sent to the workers: {exc}") from exc
    else:
        raise FitError(
            "data must be (x, y) arrays, a torch Dataset, or a data_fn(ctx) returning (x, y)"
        )
    return config


def _refuse_tf_dataset(data: Any) -> None:
    """A ``tf.data.Dataset`` lives in this process: it cannot be pickled to the workers, so
    nothing could shard it. Each rank must build its own."""
    if type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec"):
        raise FitError(
            "a tf.data.Dataset cannot be sent to the workers to be sharded; pass "
            "data=lambda ctx: <build the dataset> instead, and each rank builds its own "
            "(TensorFlow then shards it by its auto-shard policy: FILE or DATA)"
        )


def _is_torch_dataset(data: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.utils.data.Dataset)


def _is_pair(data: Any) -> bool:
    return isinstance(data, tuple | list) and len(data) == 2 and hasattr(data[0], "shape")


def _rows(data: Any, n: int) -> Any:
    """The first ``n`` inputs of ``(x, y)`` arrays, or None for other kinds of data."""
    return data[0][:n] if _is_pair(data) else None


def _check_arrays(data: Any) -> tuple[Any, Any]:
    _refuse_tf_dataset(data)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise FitError("data for a per-worker loop must be (x, y) arrays; ctx.data is the shard")
    x, y = data
    if _length(x) != _length(y):
        raise FitError(f"data has {_length(x)} samples but {_length(y)} labels; they must match")
    return x, y


def fit(
    fn: Callable[..., Any],
    data: Any = None,
    *,
    framework: str | None = None,
    workers: int | None = None,
    config: dict[str, Any] | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Any = None,
    callbacks: list[Any] | None = None,
    checkpoint_every: int | None = None,
    precision: str | None = None,
    backend: str | None = None,
    max_failures: int = 0,
    name: str | None = None,
    wait: bool = False,
    rendezvous_timeout: float = 120.0,
    worker_timeout: float = 120.0,
    client: Any = None,
    store: Store | None = None,
    artifact_dir: str | None = None,
) -> Any:
    """Train data-parallel on the cluster, one rank per worker; returns a ``Run`` at once.

    Keras: ``fit(model_fn, data=(x, y) or data_fn, epochs=, batch_size=, workers=)`` where
    ``model_fn()`` returns a compiled model; each rank runs the real ``model.fit`` (with your
    callbacks) on its shard, gradients averaged across ranks.
    ``backend="tensorflow"`` runs it as tf.keras under MultiWorkerMirroredStrategy instead,
    one TensorFlow process per rank.
    Per-worker loop: ``fit(train_loop, framework="torch", workers=, config=)``; each rank calls
    ``train_loop(config)`` and ``ll.context()`` gives rank, world size, device,
    ``prepare(model)``, ``report(step=..., **metrics, checkpoint=...)`` and ``checkpoint()``.
    ``framework="tensorflow"``: the same in a TensorFlow process per rank, with
    ``ctx.strategy`` a MultiWorkerMirroredStrategy.
    """
    from lepton_lab.cluster.attach import attach
    from lepton_lab.runs.run import Run
    from lepton_lab.training.keras_loop import keras_rank

    framework = framework or ("keras" if data is not None else None)
    arrays = None
    client = client or attach()
    from lepton_lab.cluster.adaptive import adapt_bounds

    pool = _pool_workers(client)
    adapt = adapt_bounds(client)
    _validate(fn, framework, workers, len(pool), config, precision, max_failures, adapt)
    if backend not in (None, *BACKENDS):
        raise FitError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend is not None and framework != "keras":
        raise FitError("backend= is for Keras runs (model_fn with data=); a loop sets framework=")
    if framework == "tensorflow":
        _check_tensorflow()
    rank_fn, rank_config, model_fn = fn, config or {}, None
    if framework == "keras":
        if max_failures and checkpoint_every is None:
            checkpoint_every = 1  # a restart must have something to resume from
        rank_config = _keras_config(
            fn,
            data,
            epochs,
            batch_size,
            validation_data,
            callbacks,
            checkpoint_every,
            precision,
            backend or "torch",
        )
        rank_fn, model_fn = keras_rank, fn
        if backend != "tensorflow" and "x" in rank_config:
            # the arrays reach the ranks as staged shards (``staging``), not in every task
            arrays = (rank_config.pop("x"), rank_config.pop("y"))
        if backend == "tensorflow":
            from lepton_lab.training.tf_keras_loop import tf_keras_rank

            rank_fn = tf_keras_rank
    elif data is not None:
        arrays = _check_arrays(data)
    process = "tensorflow" if "tensorflow" in (framework, backend) else None
    if process:
        from lepton_lab.training.source_pickle import pack

        # one payload for every rank, with its source for AutoGraph
        try:
            rank_fn, rank_config, arrays = pack((rank_fn, rank_config, arrays)), None, None
        except Exception as exc:  # noqa: BLE001 - a callback or data_fn that cannot travel
            raise FitError(f"the run cannot be sent to the workers: {exc}") from exc
    world = workers or max(len(pool), 1 if adapt else 0)
    store = store or open_store()
    run_id = uuid.uuid4().hex[:12]
    if artifact_dir is None:
        # the default artifact folders are Lepton Lab's own: private, also when an earlier
        # release made them 0755 (a folder the user names is left as it is)
        default = private_dir(state_dir() / "artifacts", tighten=True)
        private_dir(default / "runs", tighten=True)
        artifacts = str(default)
    else:
        artifacts = artifact_dir.rstrip("/")
    params = {
        "framework": framework,
        "workers": world,
        "config": _jsonable(config or {}),
        "precision": precision,
        "max_failures": max_failures,
        "function": getattr(fn, "__qualname__", repr(fn)),
        "artifact_dir": f"{artifacts}/runs/{run_id}",
    }
    if framework == "keras":
        params.update(
            epochs=epochs,
            batch_size=batch_size,
            checkpoint_every=checkpoint_every,
            backend=backend or "torch",
        )
    store.create_run(
        run_id,
        name=name or params["function"],
        framework=framework,
        status="queued",
        params=params,
        world_size=world,
        driver=identity(),
    )
    driver = RunDriver(
        run_id,
        rank_fn,
        client,
        store,
        pool,
        world,
        dict(
            framework=framework,
            config=rank_config,
            precision=precision,
            checkpoint_dir=f"{artifacts}/runs/{run_id}/checkpoints",
            rendezvous_timeout=float(rendezvous_timeout),
            data=arrays,
            process=process,
        ),
        max_failures,
        worker_timeout=float(worker_timeout),
        adaptive=adapt is not None,
    )
    run = Run(run_id, store=store, driver=driver, model_fn=model_fn)
    # what ll.models.register checks exports with, and measures int8 accuracy on
    run.sample_input = _rows(data, 32)
    run.eval_data = validation_data if _is_pair(validation_data) else None
    driver.start()
    if wait:
        run.wait()
    return run


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


class RunDriver(threading.Thread):
    """Launches attempts, forwards rank events to the store, handles stop and failures."""

    poll_interval = 0.1
    #: seconds between asking the scheduler whether the ranks' workers are still there
    liveness_interval = 1.0

    def __init__(
        self,
        run_id: str,
        fn: Callable[..., Any],
        client: Any,
        store: Store,
        pool: list[str],
        world: int,
        spec: dict[str, Any],
        max_failures: int,
        worker_timeout: float = 120.0,
        adaptive: bool = False,
    ) -> None:
        super().__init__(name=f"lepton-run-{run_id}", daemon=True)
        self.worker_timeout = worker_timeout
        self.adaptive = adaptive
        self.run_id = run_id
        self.fn = fn
        self.client = client
        self.store = store
        self.pool = pool
        self.world = world
        self.spec = spec
        self.max_failures = max_failures
        self.status = "queued"
        self.error: str | None = None
        self.error_rank: int | None = None
        self.result: list[Any] | None = None
        self.latest_checkpoint: tuple[str, int] | None = None
        self._events: queue.Queue = queue.Queue()
        self._excluded: set[str] = set()
        self._stop_requested = threading.Event()
        self._stage: DataStage | None = None
        self.finished = threading.Event()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    # -- control from the kernel -----------------------------------------------------------
    def request_stop(self) -> None:
        self._stop_requested.set()
        request_stop(self.run_id, self.client)

    # -- the thread ------------------------------------------------------------------------
    def run(self) -> None:
        topic = topic_for(self.run_id)
        self.client.subscribe_topic(topic, self._events.put)
        try:
            self._drive()
        except Exception as exc:  # noqa: BLE001 - the record must say what broke the driver
            self._finish(
                "failed",
                f"driver error: {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                None,
            )
        finally:
            self._drain()
            if self._stage is not None:
                self._stage.close()
            try:
                self.client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001
                pass
            self.finished.set()

    def _drive(self) -> None:
        attempt = 0
        while True:
            attempt += 1
            if self._stop_requested.is_set():
                self._finish("stopped", None, None)
                return
            try:
                workers = self._wait_for_workers(self.worker_timeout)
            except WorkersUnavailable as exc:
                self._finish("failed", str(exc), None)
                return
            self.store.update_run(self.run_id, attempts=attempt)
            outcome = self._attempt(attempt, workers)
            if outcome is None:
                return  # finished (completed or stopped)
            self.store.add_event(
                self.run_id, "failure", outcome.message, rank=outcome.rank, attempt=attempt
            )
            if attempt > self.max_failures:
                self._finish("failed", outcome.message, outcome.rank)
                return
            ckpt = self.latest_checkpoint
            self.store.add_event(
                self.run_id,
                "restart",
                f"restarting (attempt {attempt + 1} of {self.max_failures + 1})"
                + (f" from the checkpoint of step {ckpt[1]}" if ckpt else " from scratch"),
                attempt=attempt + 1,
                resume_step=ckpt[1] if ckpt else None,
            )

    def _wait_for_workers(self, timeout: float = 120) -> list[str]:
        """The workers for the next attempt. On an adaptive cluster the run asks for them
        (``workers_requested``) while it waits; an attempt that cannot get them within
        ``timeout`` fails with a message that says so."""
        if not self.adaptive:
            return self._poll_workers(timeout)
        from lepton_lab.cluster.adaptive import workers_requested

        have = len(self._alive_workers())
        if have < self.world:
            self.store.add_event(
                self.run_id,
                "waiting",
                f"asking the adaptive cluster for {self.world} workers ({have} now)",
            )
        with workers_requested(self.client, self.world, hold=timeout + 30):
            return self._poll_workers(timeout)

    def _alive_workers(self) -> list[str]:
        info = scheduler_identity(self.client)["workers"]
        return sorted(
            a
            for a in info
            if info[a].get("status", "running") == "running" and a not in self._excluded
        )

    def _poll_workers(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            alive = self._alive_workers()
            # prefer the run's original pool, then any replacement workers (nanny restarts)
            candidates = [a for a in self.pool if a in alive] + [
                a for a in alive if a not in self.pool
            ]
            if len(candidates) >= self.world:
                return candidates[: self.world]
            if self._stop_requested.is_set():
                raise WorkersUnavailable("stopped while waiting for workers")
            if time.monotonic() > deadline:
                where = "the adaptive cluster brought" if self.adaptive else "the cluster had"
                raise WorkersUnavailable(
                    f"{where} only {len(candidates)} of the {self.world} workers this run "
                    f"needs within {timeout:.0f} s; scale the cluster (or raise its adaptive "
                    "maximum) and run again, or pass a larger worker_timeout"
                )
            time.sleep(0.2)

    def _attempt(self, attempt: int, workers: list[str]) -> RankFailure | None:
        from distributed import MultiLock

        lock = MultiLock(names=[f"lepton-worker-{w}" for w in workers], client=self.client)
        lock.acquire()
        in_process = self.spec.get("process") != "tensorflow"
        try:
            # torch meets at rank 0's port; each TensorFlow rank serves on its own
            ports = self.client.gather(
                [
                    self.client.submit(
                        free_port, workers=[w], pure=False, allow_other_workers=False
                    )
                    for w in (workers[:1] if in_process else workers)
                ]
            )
            port = ports[0]
            if self.status == "queued":
                self.status = "running"
                self.store.update_run(self.run_id, status="running", started_at=time.time())
            ckpt = self.latest_checkpoint
            self.store.add_event(
                self.run_id,
                "start",
                f"attempt {attempt} on {len(workers)} worker(s)",
                attempt=attempt,
                workers=workers,
            )
            placed = self._place_data(workers)
            futures = []
            for rank, worker in enumerate(workers):
                spec = dict(
                    self.spec,
                    run_id=self.run_id,
                    rank=rank,
                    world_size=self.world,
                    attempt=attempt,
                    worker=worker,
                    master_addr=host_of(workers[0]),
                    master_port=port,
                    tf_addresses=[
                        f"{host_of(w)}:{p}" for w, p in zip(workers, ports, strict=False)
                    ],
                    resume_from=ckpt[0] if ckpt else None,
                    resume_step=ckpt[1] if ckpt else None,
                    **placed[rank],
                )
                futures.append(
                    self.client.submit(
                        run_rank if in_process else run_tf_rank,
                        self.fn,
                        spec,
                        workers=[worker],
                        allow_other_workers=False,
                        pure=False,
                        key=f"lepton-{self.run_id}-a{attempt}-rank{rank}",
                    )
                )
            return self._watch(attempt, futures, workers)
        finally:
            lock.release()

    def _place_data(self, workers: list[str]) -> list[dict[str, Any]]:
        """Where each rank finds its shard of ``data=(x, y)`` (``staging``): its files in this
        host's shared memory when its worker sees them, else the shard sent to its worker."""
        arrays = self.spec.get("data")
        if arrays is None or self.spec.get("process") == "tensorflow" or not stageable(*arrays):
            return [{} for _ in workers]  # arrays that numpy cannot map travel with the task
        if self._stage is None:
            self._stage = DataStage(self.run_id, *arrays, self.world)
        refs = [self._stage.ref(rank) for rank in range(self.world)]
        seen = self.client.gather(
            [
                self.client.submit(ref.visible, workers=[w], pure=False, allow_other_workers=False)
                for ref, w in zip(refs, workers, strict=True)
            ]
        )
        placed: list[dict[str, Any]] = []
        for rank, (worker, visible) in enumerate(zip(workers, seen, strict=True)):
            if visible:
                placed.append({"data": None, "data_ref": refs[rank]})
                continue
            # another host: this rank's share only, straight to its worker (not through the
            # scheduler); the future lives as long as the task that depends on it
            [shard] = self.client.scatter(
                [self._stage.shard(rank)], workers=[worker], direct=True, hash=False
            )
            placed.append({"data": None, "data_shard": shard})
        return placed

    def _watch(self, attempt: int, futures: list[Any], workers: list[str]) -> RankFailure | None:
        stop_deadline: float | None = None
        next_liveness = 0.0
        while True:
            self._drain()
            failure = self._first_error(futures)
            # futures' states arrive by themselves; whether a worker is still there is a
            # question to the scheduler, asked once a second (every 0.1 s it cost the
            # scheduler and this process ~5 % of a core, taken from the ranks on 2 cores)
            if not all(f.done() for f in futures) and (
                failure is not None or time.monotonic() >= next_liveness
            ):
                next_liveness = time.monotonic() + self.liveness_interval
                # a peer of a lost worker errors in its collective at once, often before
                # the scheduler has heard of the loss: the lost worker is the cause to report
                lost = self._lost_worker(futures, workers, patience=1.0 if failure else 0.0)
                failure = lost or failure
            if failure is not None:
                self._abort(futures, workers, attempt)
                if self._stopping():
                    # after a stop, a rank whose peer left mid-collective errors (TensorFlow
                    # says so at once; gloo would hang): that is how the stop ended it
                    self._drain()
                    self._finish("stopped", None, None)
                    return None
                return failure
            if all(f.done() for f in futures):
                results = [f.result() for f in futures]
                self._drain()
                self.store.add_usage(self.run_id, [r["usage"] for r in results])
                if self._stop_requested.is_set() or any(r["stopped"] for r in results):
                    self._finish("stopped", None, None)
                else:
                    self.result = [r["result"] for r in results]
                    self._finish("completed", None, None)
                return None
            if self._stop_requested.is_set():
                # ranks stop at their next report; a loop that never reports is ended by
                # restarting its workers after a grace period
                stop_deadline = stop_deadline or time.monotonic() + 10
                if time.monotonic() > stop_deadline:
                    self._abort(futures, workers, attempt)
                    self._finish("stopped", None, None)
                    return None
            time.sleep(self.poll_interval)

    def _lost_worker(
        self, futures: list[Any], workers: list[str], patience: float
    ) -> RankFailure | None:
        """The first rank whose worker left the cluster while it ran, waiting up to
        ``patience`` seconds for the scheduler to notice."""
        deadline = time.monotonic() + patience
        while True:
            alive = set(scheduler_identity(self.client)["workers"])
            for r, w in enumerate(workers):
                if w not in alive and not futures[r].done():
                    return RankFailure(r, f"rank {r}: worker {w} was lost")
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_interval)

    def _stopping(self) -> bool:
        """Stopped from this kernel, or from anywhere else (REST, a widget elsewhere)."""
        if self._stop_requested.is_set():
            return True
        from distributed import Event

        return Event(stop_event_name(self.run_id), client=self.client).is_set()

    def _first_error(self, futures: list[Any]) -> RankFailure | None:
        failed = [(r, f) for r, f in enumerate(futures) if f.status == "error"]
        if not failed:
            return None
        if self.spec.get("process") == "tensorflow":
            failed = self._root_cause(futures, failed)
        rank, future = failed[0]
        exc = future.exception()
        tb = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
        return RankFailure(rank, f"rank {rank} raised {type(exc).__name__}: {exc}\n{tb}")

    def _root_cause(self, futures: list[Any], failed: list[Any]) -> list[Any]:
        """A TensorFlow rank whose peer's process died fails at once in its collective
        (``UnavailableError``), often before the dead one's supervisor has noticed: wait a
        moment for the others, and name the rank whose process ended, not its victims."""
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not all(f.done() for f in futures):
            time.sleep(self.poll_interval)
        failed = [(r, f) for r, f in enumerate(futures) if f.status == "error"]
        ended = [(r, f) for r, f in failed if isinstance(f.exception(), RankProcessExited)]
        return ended or failed

    def _abort(self, futures: list[Any], workers: list[str], attempt: int) -> None:
        """End the ranks still running: peers of a failed rank hang in collectives."""
        if self.spec.get("process") == "tensorflow":
            # their supervisors kill the TensorFlow processes and return: the workers stay
            abort_attempt(self.run_id, attempt, self.client)
            deadline = time.monotonic() + 30
            alive = set(scheduler_identity(self.client)["workers"])
            while time.monotonic() < deadline and not all(
                f.done() or w not in alive for f, w in zip(futures, workers, strict=True)
            ):
                time.sleep(self.poll_interval)
                alive = set(scheduler_identity(self.client)["workers"])
            self._excluded.update(w for w in workers if w not in alive)
            futures = [f for f, w in zip(futures, workers, strict=True) if w in alive]
            workers = [w for w in workers if w in alive]
        running = [w for f, w in zip(futures, workers, strict=True) if not f.done()]
        # restarted and lost workers come back at new addresses; until the scheduler has
        # dropped the old ones they must not be chosen for the next attempt
        self._excluded.update(running)
        self.client.cancel(futures, force=True)
        if running:
            alive = set(scheduler_identity(self.client)["workers"])
            targets = [w for w in running if w in alive]
            if targets:
                try:
                    self.client.restart_workers(targets, timeout=60, raise_for_error=False)
                except Exception as exc:  # noqa: BLE001 - recorded; the retry waits for workers
                    self.store.add_event(self.run_id, "warning", f"restarting workers: {exc}")

    # -- events from ranks -----------------------------------------------------------------
    def _drain(self) -> None:
        rows: list[dict[str, Any]] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            msg = event[1] if isinstance(event, tuple) else event
            kind = msg.get("kind")
            if kind == "metrics":
                for item in msg["items"]:
                    for metric, value in item["metrics"].items():
                        rows.append(
                            {
                                "rank": msg["rank"],
                                "step": item["step"],
                                "name": metric,
                                "value": value,
                                "time": item["time"],
                            }
                        )
            elif kind == "warning":
                self.store.add_event(self.run_id, "warning", msg["text"], rank=msg["rank"])
            elif kind == "checkpoint":
                self.latest_checkpoint = (msg["path"], msg["step"])
                self.store.add_event(
                    self.run_id,
                    "checkpoint",
                    f"step {msg['step']}",
                    rank=msg["rank"],
                    path=msg["path"],
                    step=msg["step"],
                )
            for listener in self.listeners:
                listener(msg)
        if rows:
            self.store.add_metrics(self.run_id, rows)

    def _finish(self, status: str, error: str | None, rank: int | None) -> None:
        self.status, self.error, self.error_rank = status, error, rank
        self.store.finish_run(self.run_id, status, error, rank)
        self.store.add_event(
            self.run_id, status, error.splitlines()[0] if error else status, rank=rank
        )
        self._record_usage()
        self._notify(status)

    def _notify(self, status: str) -> None:
        """Queue the messages the run's end calls for: the lab's rules about runs, and a
        toast in the lab when a notebook of the lab started it."""
        import os

        from lepton_lab.notify.delivery import NotifySettings
        from lepton_lab.notify.events import run_ended

        try:
            settings = NotifySettings.load(state_dir())
        except Exception as exc:  # noqa: BLE001 - a notification never fails the run
            log.warning("Lepton Lab: no notifications for run %s: %s", self.run_id, exc)
            return
        settings.in_lab = settings.in_lab and bool(os.environ.get("JPY_SESSION_NAME"))
        if settings.rules or settings.in_lab:
            run_ended(self.store, self.run_id, status, settings)

    def _record_usage(self) -> None:
        """The run's usage record (its ranks' figures, every attempt) and its checkpoints'
        bytes, for the user, notebook and tags of the process that called ``ll.fit``."""
        from lepton_lab.metering.ledger import (
            current_notebook,
            current_tags,
            record_run,
            record_storage,
        )

        try:
            run = self.store.get_run(self.run_id)
        except Exception as exc:  # noqa: BLE001 - usage never fails the run
            log.warning("Lepton Lab: could not read run %s for its usage: %s", self.run_id, exc)
            return
        record_run(self.store, run, run.get("usage") or [])
        checkpoints = self.spec.get("checkpoint_dir")
        if checkpoints:
            record_storage(
                self.store,
                f"run:{self.run_id}",
                checkpoints,
                notebook=current_notebook(),
                tags=current_tags(),
                created_at=run.get("created_at"),
            )
