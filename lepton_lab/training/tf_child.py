"""The child process of one TensorFlow rank (``python -m lepton_lab.training.tf_child FD``).

It sets TensorFlow up the way a user's own MWMS script would (``TF_CONFIG`` from the worker,
the strategy made before any other TensorFlow op), proves the rendezvous with one collective,
then runs the loop with ``ll.context()`` pointing at a context whose reports go down the pipe
to the supervising task in the Dask worker. See ``tf_process`` for the why.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import traceback
from typing import Any

from lepton_lab.config.processes import die_with_parent
from lepton_lab.training.context import RunStopped, TrainContext, set_current


class ChildContext(TrainContext):
    """A rank's context whose reports travel over the pipe instead of the worker's events."""

    def connect(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _send(self, message: dict[str, Any]) -> None:
        message["attempt"] = self.attempt
        with self._lock:
            self._conn.send(("event", message))

    def send_control(self, kind: str, body: Any = None) -> None:
        with self._lock:
            self._conn.send((kind, body))

    def _stop_requested(self) -> bool:
        return self._stop.is_set()

    def warn(self, text: str) -> None:
        """A warning for the run's record (and this process's stderr)."""
        import warnings

        warnings.warn(text, stacklevel=2)
        self._send({"kind": "warning", "rank": self.rank, "text": text})


def _watch(conn: Any, ctx: ChildContext) -> None:
    """Take stops from the worker; exit at once when the worker has gone away."""
    while True:
        try:
            kind, _ = conn.recv()
        except (EOFError, OSError):
            os._exit(3)
        if kind == "stop":
            ctx._stop.set()


def _strategy(tf: Any, world: int) -> Any:
    """MWMS across ranks; one rank: MirroredStrategy over its GPUs when it has several, else
    TensorFlow's default strategy. A one-device MirroredStrategy made each step ~30% slower
    than plain ``model.fit`` here (bench/bench_tensorflow.py, docs/guide/tensorflow.md), and the
    default strategy has the same API (scope, run, reduce, distribute_datasets_from_function)."""
    if world > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _rendezvous(tf: Any, strategy: Any, world: int) -> None:
    """One all-reduce: returns once every rank has joined the collective group."""
    if world == 1:
        return

    @tf.autograph.experimental.do_not_convert
    def one() -> Any:
        return tf.constant(1.0)

    @tf.function(autograph=False)
    def count() -> Any:
        return strategy.reduce("SUM", strategy.run(one), axis=None)

    total = count()
    replicas = strategy.num_replicas_in_sync
    if int(total.numpy()) != replicas:
        raise RuntimeError(f"rendezvous counted {total.numpy()} replicas, expected {replicas}")


def _plain(value: Any) -> Any:
    """Tensors in a loop's return value become numpy arrays (tensors cannot be pickled)."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda v: v.numpy() if isinstance(v, tf.Tensor | tf.Variable) else v, value
    )


def main(fd: int, parent: int) -> None:
    from multiprocessing.connection import Connection

    import cloudpickle

    die_with_parent(parent)
    conn = Connection(fd)
    head = cloudpickle.loads(conn.recv_bytes())
    for path in reversed(head["sys_path"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    spec = head["spec"]
    blob = conn.recv_bytes()  # the loop, its config and data: unpickled once TF is set up
    try:
        _run(conn, spec, blob)
    except BaseException as exc:  # noqa: BLE001 - whatever ended the loop goes to the driver
        text = "".join(traceback.format_exception(exc))
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{text}"))
        except OSError:
            pass
        _exit(1)
    _exit(0)


def _run(conn: Any, spec: dict[str, Any], blob: bytes) -> None:
    import cloudpickle
    import tensorflow as tf
    import tf_keras

    # `import keras` in the user's model_fn means the Keras that works under MWMS here
    sys.modules["keras"] = tf_keras
    conn.send(("meeting", None))
    strategy = _strategy(tf, spec["world_size"])
    gpus = tf.config.list_physical_devices("GPU")
    ctx = ChildContext.from_spec(spec, "GPU:0" if gpus else "CPU:0", strategy=strategy)
    ctx.connect(conn)
    _rendezvous(tf, strategy, spec["world_size"])
    ctx.send_control("ready")
    threading.Thread(target=_watch, args=(conn, ctx), daemon=True).start()
    fn, config, data = cloudpickle.loads(blob).load()
    if data is not None:
        from lepton_lab.training.keras_loop import equal_shard

        ctx.data = equal_shard(ctx, *data)
    set_current(ctx)
    stopped = False
    try:
        result = fn(config)
    except RunStopped:
        result, stopped = None, True
    finally:
        set_current(None)
        ctx.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ctx._sample_memory()
    ctx.send_control(
        "done",
        {
            "result": cloudpickle.dumps(_plain(result)),
            "stopped": stopped,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_memory": max(ctx._peak_rss, usage.ru_maxrss * 1024),
            "gpu": bool(gpus),
        },
    )


def _exit(code: int) -> None:
    # no interpreter teardown: TensorFlow's collective runtime can hang or abort at exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
