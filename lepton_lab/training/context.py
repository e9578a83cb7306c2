"""What a rank sees: ``ll.context()`` inside a per-worker training loop.

Reports leave the rank as distributed events (``Worker.log_event``), batched so a loop that
reports every step costs one small message every ``flush_interval`` seconds, not one per step.
Checkpoints are written by rank 0 straight to the artifact directory (a path or fsspec URL)
and only their location travels, so large state never passes through the scheduler.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lepton_lab.config.files import private_dir

_local = threading.local()


class RunStopped(Exception):
    """Raised inside ``ctx.report`` when the run was asked to stop; ends the loop cleanly."""


def context() -> TrainContext:
    """The current rank's context; only valid inside a loop started by ``ll.fit``."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        raise RuntimeError("ll.context() is only available inside a training loop run by ll.fit")
    return ctx


def topic_for(run_id: str) -> str:
    return f"lepton-run-{run_id}"


def stop_event_name(run_id: str) -> str:
    return f"lepton-stop-{run_id}"


def request_stop(run_id: str, client: Any, timeout: float | None = None) -> None:
    """Ask every rank of a run to stop: they stop at their next report (the one way a run is
    stopped, whether from its driver, a ``Run`` handle, REST or a widget).

    With ``timeout``, a scheduler that does not take the stop within that many seconds raises
    ``TimeoutError`` (a lost one would otherwise keep the caller for Dask's connect timeout).
    """
    from distributed import Event

    if timeout is None:
        Event(stop_event_name(run_id), client=client).set()
        return
    # what Event.set() does, with a bound on the wait
    client.sync(client.scheduler.event_set, name=stop_event_name(run_id), callback_timeout=timeout)


@dataclass
class TrainContext:
    """Rank, world size, device and the report/checkpoint channel of one rank."""

    run_id: str
    rank: int
    world_size: int
    attempt: int
    device: str
    framework: str
    precision: str | None
    checkpoint_dir: str
    resume_from: str | None = None
    resume_step: int | None = None
    flush_interval: float = 0.25
    stop_check_interval: float = 0.5
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    _last_flush: float = field(default_factory=time.monotonic)
    _last_stop_check: float = field(default_factory=time.monotonic)
    _step: int = 0
    _peak_rss: int = 0
    _last_progress: float = 0.0
    process_group: Any = None
    #: TensorFlow ranks: a MultiWorkerMirroredStrategy (a MirroredStrategy over the rank's
    #: GPUs when the run has one rank); build models and optimizers in ``strategy.scope()``
    strategy: Any = None
    #: this rank's (x, y) shard when ll.fit was given ``data=(x, y)``: equal sizes on all ranks
    data: Any = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any], device: str, **extra: Any) -> TrainContext:
        """The context of the rank that the driver's ``spec`` describes."""
        return cls(
            run_id=spec["run_id"],
            rank=spec["rank"],
            world_size=spec["world_size"],
            attempt=spec["attempt"],
            device=device,
            framework=spec["framework"],
            precision=spec.get("precision"),
            checkpoint_dir=spec["checkpoint_dir"],
            resume_from=spec.get("resume_from"),
            resume_step=spec.get("resume_step"),
            flush_interval=spec.get("flush_interval", 0.25),
            **extra,
        )

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    # -- model placement ---------------------------------------------------------------
    def prepare(self, model: Any) -> Any:
        """Move a torch model to this rank's device and wrap it in DDP when world_size > 1."""
        import torch

        model = model.to(torch.device(self.device))
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = (
                [torch.device(self.device).index or 0] if self.device.startswith("cuda") else None
            )
            model = DistributedDataParallel(model, device_ids=device_ids)
        return model

    def autocast(self) -> Any:
        """torch autocast for ``precision="mixed"`` (bf16 on CPU, fp16 on GPU), else a no-op."""
        import contextlib

        if self.precision != "mixed":
            return contextlib.nullcontext()
        import torch

        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    # -- data ----------------------------------------------------------------------------
    def shard_files(self, urlpath: str | list[str]) -> list[str]:
        """This rank's share of the files at an fsspec URL or glob (``s3://b/train-*.npz``,
        ``file:///data/*.tfrecord``): every ``world_size``-th file from ``rank`` on, in sorted
        order, so ranks read disjoint files (TensorFlow's FILE policy, for any fsspec store)."""
        import fsspec

        files = fsspec.open_files(urlpath)
        urls = sorted(f.fs.unstrip_protocol(f.path) for f in files)
        if len(urls) < self.world_size:
            raise ValueError(
                f"{urlpath!r} has {len(urls)} file(s), fewer than the run's {self.world_size} "
                "ranks: split the data into at least one file per rank"
            )
        return urls[self.rank :: self.world_size]

    # -- reporting -----------------------------------------------------------------------
    def report(self, step: int | None = None, checkpoint: Any = None, **metrics: float) -> None:
        """Record metrics for ``step`` (default: next step); rank 0 saves ``checkpoint``."""
        now = time.time()
        self._step = int(step) if step is not None else self._step + 1
        values = {k: float(v) for k, v in metrics.items()}
        if values:
            self._buffer.append({"step": self._step, "metrics": values, "time": now})
        if checkpoint is not None and self.is_chief:
            self.flush()
            path = self._save_checkpoint(checkpoint, self._step)
            self._send({"kind": "checkpoint", "rank": self.rank, "step": self._step, "path": path})
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()
        if time.monotonic() - self._last_stop_check >= self.stop_check_interval:
            self._last_stop_check = time.monotonic()
            if self._stop_requested():
                self.flush()
                raise RunStopped(f"run {self.run_id} was stopped")

    def progress(
        self,
        step: int,
        steps: int | None = None,
        epoch: int | None = None,
        epochs: int | None = None,
        force: bool = False,
    ) -> None:
        """Tell a live monitor where this rank is (``step`` of ``steps`` done in ``epoch``
        of ``epochs``), for its progress bars and ETA. Throttled to one message per
        ``flush_interval`` and never stored, so calling it every batch is cheap."""
        now = time.monotonic()
        if not force and now - self._last_progress < self.flush_interval:
            return
        self._last_progress = now
        self._send(
            {
                "kind": "progress",
                "rank": self.rank,
                "step": int(step),
                "steps": steps,
                "epoch": epoch,
                "epochs": epochs,
                "time": time.time(),
            }
        )

    def flush(self) -> None:
        self._sample_memory()  # here, not per report: reading /proc costs more than a report
        if self._buffer:
            items, self._buffer = self._buffer, []
            self._send({"kind": "metrics", "rank": self.rank, "items": items})
        self._last_flush = time.monotonic()

    def checkpoint(self) -> Any:
        """The last checkpoint reported before a restart, loaded; None on a fresh start."""
        if not self.resume_from:
            return None
        import fsspec

        with fsspec.open(self.resume_from, "rb") as f:
            if self.framework == "torch":
                import torch

                return torch.load(f, map_location=self.device, weights_only=False)
            import cloudpickle

            return cloudpickle.load(f)

    # -- internals -----------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        from distributed import get_worker

        message["attempt"] = self.attempt
        get_worker().log_event(topic_for(self.run_id), message)

    def _stop_requested(self) -> bool:
        from distributed import Event

        return Event(stop_event_name(self.run_id)).is_set()

    def _save_checkpoint(self, state: Any, step: int) -> str:
        """Write ``state`` as the checkpoint of ``step`` and return its path.

        All or nothing: the bytes go to a temporary name in the same folder, and only a
        complete file gets the checkpoint's name (on a local disk after an ``fsync``, by one
        ``rename``, with the folder synced too). A write that fails halfway (a full disk,
        ``EFBIG``, a store that errors) removes its temporary file and raises, so the rank
        fails, no checkpoint event is sent, and a restart resumes from the previous one.
        """
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        name = f"step-{step:08d}.ckpt"
        path = f"{self.checkpoint_dir.rstrip('/')}/{name}"
        fs, folder = fsspec.core.url_to_fs(self.checkpoint_dir)
        if isinstance(fs, LocalFileSystem):
            # on this machine: the user's alone (remote stores keep their own ACLs)
            private_dir(folder, tighten=True)  # this run's own folder
            self._write_local(state, Path(folder), name)
            return path
        fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder.rstrip('/')}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with fs.open(tmp, "wb") as f:
                self._dump(state, f)
            fs.mv(tmp, f"{folder.rstrip('/')}/{name}")
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(tmp)
            raise
        return path

    def _write_local(self, state: Any, folder: Path, name: str) -> None:
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                self._dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):  # the rename itself survives a power cut
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _dump(self, state: Any, f: Any) -> None:
        if self.framework == "torch":
            import torch

            torch.save(state, f)
        else:
            import cloudpickle

            cloudpickle.dump(state, f)

    def _sample_memory(self) -> None:
        try:
            import psutil

            self._peak_rss = max(self._peak_rss, psutil.Process(os.getpid()).memory_info().rss)
        except Exception:  # noqa: BLE001 - usage is best effort
            pass


def set_current(ctx: TrainContext | None) -> None:
    _local.ctx = ctx
