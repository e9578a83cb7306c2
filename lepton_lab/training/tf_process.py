"""A TensorFlow rank: a fresh child process of its Dask worker, supervised by the worker's task.

Why a child process: a process can join only one ``MultiWorkerMirroredStrategy`` cluster (a
second strategy in the same process hangs; see docs/guide/tensorflow.md), so every attempt of every
run gets fresh processes while the Dask workers stay up for the next run. The task on the
worker supervises its child: it forwards the child's reports as distributed events (the same
topic a torch rank writes to), passes a stop on, bounds the rendezvous, and kills the child
when the run aborts. The child dies with its worker too (``PR_SET_PDEATHSIG``, and it exits
when its pipe to the worker closes), so killing either one orphans nothing.

The protocol is ``multiprocessing.connection`` over an inherited socketpair: pickled tuples
``(kind, body)``; it needs no port and no credentials, and only the worker holds the other end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from lepton_lab.training.context import stop_event_name, topic_for
from lepton_lab.training.rank import RendezvousTimeout
from lepton_lab.training.source_pickle import Packed

#: what the nanny puts in its workers' environment for Dask's own sake; the child is a training
#: process like one a user starts by hand, so it starts with the C library's and TensorFlow's
#: defaults (the trim threshold alone slows a training step by ~10%: issue #17)
NANNY_ENV = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: after a stop, how long the child gets to reach its next report before it is killed (a rank
#: whose peer stopped first waits in a collective that never completes)
STOP_GRACE = 5.0
POLL = 0.1
CONTROL_EVERY = 0.5


class RankProcessError(RuntimeError):
    """The training loop raised in the rank's process; the message carries its traceback."""


class RankProcessExited(RuntimeError):
    """The rank's process ended without a result (killed, or crashed in native code)."""


def abort_event_name(run_id: str, attempt: int) -> str:
    return f"lepton-abort-{run_id}-a{attempt}"


def abort_attempt(run_id: str, attempt: int, client: Any) -> None:
    """Tell every supervisor of an attempt to kill its child now (a peer failed)."""
    from distributed import Event

    Event(abort_event_name(run_id, attempt), client=client).set()


def tf_config(addresses: list[str], rank: int) -> str:
    """``TF_CONFIG`` for one rank of a MultiWorkerMirroredStrategy cluster."""
    import json

    return json.dumps(
        {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": rank}}
    )


def child_env(spec: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NANNY_ENV}
    env.pop("TF_CONFIG", None)
    if spec["world_size"] > 1:
        env["TF_CONFIG"] = tf_config(spec["tf_addresses"], spec["rank"])
    # tf.keras is Keras 2 (tf_keras) in the ranks: Keras 3's fit fails under MWMS (#20585)
    env["TF_USE_LEGACY_KERAS"] = "1"
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ start-up chatter, not the user's logs
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # leave the GPU's memory to others too
    return env


def run_tf_rank(payload: Packed, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one rank in a fresh child process; returns what ``run_rank`` returns.

    ``payload``: ``(loop, config, data)`` packed by ``ll.fit`` with the loop's source."""
    from multiprocessing.connection import Pipe

    import cloudpickle

    ours, theirs = Pipe(duplex=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lepton_lab.training.tf_child",
            str(theirs.fileno()),
            str(os.getpid()),
        ],
        pass_fds=(theirs.fileno(),),
        env=child_env(spec),
    )
    theirs.close()
    try:
        head = {k: v for k, v in spec.items() if k not in ("config", "data")}
        ours.send_bytes(cloudpickle.dumps({"spec": head, "sys_path": list(sys.path)}))
        # the loop and its config are unpickled after the child has set TensorFlow up
        ours.send_bytes(cloudpickle.dumps(payload))
        return Supervisor(proc, ours, spec).run()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        ours.close()


class Supervisor:
    """The worker's side of one child: forward, watch, stop, abort, account."""

    def __init__(self, proc: subprocess.Popen, conn: Any, spec: dict[str, Any]) -> None:
        self.proc, self.conn, self.spec = proc, conn, spec
        self.rank = spec["rank"]
        self.started = time.time()
        self.meeting_since: float | None = None
        self.ready = False
        self.cpu_seconds = 0.0
        self.peak_memory = 0
        self._last_control = 0.0
        self._stop_sent: float | None = None
        from lepton_lab.metering.meter import gpu_meter_thread

        # NVML samples of the child's GPU use (no thread without NVML or a visible GPU)
        self._gpu = gpu_meter_thread(lambda: {proc.pid})

    def run(self) -> dict[str, Any]:
        from distributed import Event, get_worker

        worker = get_worker()
        topic = topic_for(self.spec["run_id"])
        stop = Event(stop_event_name(self.spec["run_id"]))
        abort = Event(abort_event_name(self.spec["run_id"], self.spec["attempt"]))
        while True:
            if self.conn.poll(POLL):
                try:
                    kind, body = self.conn.recv()
                except (EOFError, OSError):
                    return self._exited()
                if kind == "event":
                    worker.log_event(topic, body)
                elif kind == "meeting":
                    self.meeting_since = time.monotonic()
                elif kind == "ready":
                    self.ready = True
                elif kind == "done":
                    return self._done(body)
                elif kind == "error":
                    if self._stop_sent is not None:  # a peer that stopped first broke its
                        return self._ended(stopped=True)  # collective: part of the stop
                    raise RankProcessError(body)
            elif self.proc.poll() is not None:
                return self._exited()
            # checked between messages too: a chatty loop must not starve a stop or abort
            now = time.monotonic()
            self._check_rendezvous(now)
            if now - self._last_control >= CONTROL_EVERY:
                self._last_control = now
                self._sample()
                if abort.is_set():
                    return self._ended(stopped=True)
                if self._stop_sent is None and stop.is_set():
                    self._stop_sent = now
                    self.conn.send(("stop", None))
                if self._stop_sent is not None and now - self._stop_sent > STOP_GRACE:
                    return self._ended(stopped=True)

    def _check_rendezvous(self, now: float) -> None:
        timeout = self.spec["rendezvous_timeout"]
        if self.ready or self.meeting_since is None or now - self.meeting_since <= timeout:
            return
        self.proc.kill()
        world = self.spec["world_size"]
        raise RendezvousTimeout(
            f"rank {self.rank}: not all {world} ranks met at "
            f"{', '.join(self.spec.get('tf_addresses') or ['(one worker)'])} within "
            f"{timeout:.0f} s"
        )

    def _sample(self) -> None:
        try:
            import psutil

            process = psutil.Process(self.proc.pid)
            times = process.cpu_times()
            self.cpu_seconds = times.user + times.system
            self.peak_memory = max(self.peak_memory, process.memory_info().rss)
        except Exception:  # noqa: BLE001 - usage is best effort; the child may be gone
            pass

    def _usage(self, gpu: bool = False) -> dict[str, Any]:
        wall = time.time() - self.started
        meter = self._gpu.stop()
        return {
            "rank": self.rank,
            "attempt": self.spec["attempt"],
            "worker": self.spec["worker"],
            "cpu_seconds": self.cpu_seconds,
            "gpu_seconds": wall if gpu else 0.0,
            "peak_memory": self.peak_memory,
            "gpu_model": meter.model if meter else None,
            "gpu_util_seconds": meter.util_seconds if meter else 0.0,
            "gpu_peak_memory": meter.peak_memory if meter else 0,
        }

    def _ended(self, stopped: bool) -> dict[str, Any]:
        self._sample()
        self.proc.kill()
        return {"rank": self.rank, "result": None, "stopped": stopped, "usage": self._usage()}

    def _done(self, body: dict[str, Any]) -> dict[str, Any]:
        import cloudpickle

        self.cpu_seconds = max(self.cpu_seconds, body["cpu_seconds"])
        self.peak_memory = max(self.peak_memory, body["peak_memory"])
        return {
            "rank": self.rank,
            "result": cloudpickle.loads(body["result"]),
            "stopped": body["stopped"],
            "usage": self._usage(gpu=body["gpu"]),
        }

    def _exited(self) -> dict[str, Any]:
        code = self.proc.wait()
        if self._stop_sent is not None:
            return self._ended(stopped=True)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise RankProcessExited(
            f"rank {self.rank}: its TensorFlow process (pid {self.proc.pid}) ended with {how} "
            "before the loop returned"
        )
