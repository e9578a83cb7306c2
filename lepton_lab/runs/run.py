"""``Run``: the handle of one distributed fit, live (driven here) or read from the store."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from lepton_lab.store import Store, open_store


class Driver(Protocol):
    """What a ``Run`` needs of the thread that drives it in this process (``ll.fit``'s
    ``RunDriver``); named here so runs need not import training."""

    finished: threading.Event
    status: str
    error: str | None
    result: list[Any] | None

    def request_stop(self) -> None: ...


class Run:
    """Status, metrics, result and control of a run.

    A run started in this process is driven by a thread here; one looked up by id
    (``ll.runs.get(id)``) reads the store and can still be stopped through its stop event.
    """

    def __init__(
        self,
        run_id: str,
        store: Store | None = None,
        driver: Driver | None = None,
        model_fn: Any = None,
    ) -> None:
        self.id = run_id
        self._store = store or open_store()
        self._driver = driver
        self._model_fn = model_fn
        self._model: Any = None
        self._monitors: weakref.WeakSet = weakref.WeakSet()
        #: a few training inputs and the validation pair, for ``register`` (set by ``ll.fit``)
        self.sample_input: Any = None
        self.eval_data: Any = None

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status}>"

    def record(self) -> dict[str, Any]:
        return self._store.get_run(self.id)

    @property
    def status(self) -> str:
        if self._driver is not None and self._driver.finished.is_set():
            return self._driver.status
        return self.record()["status"]

    @property
    def error(self) -> str | None:
        if self._driver is not None and self._driver.finished.is_set():
            return self._driver.error
        return self.record()["error"]

    @property
    def error_rank(self) -> int | None:
        return self.record()["error_rank"]

    @property
    def result(self) -> list[Any] | None:
        """Per-rank return values of the training loop (None until completed here)."""
        return self._driver.result if self._driver is not None else None

    @property
    def model(self) -> Any:
        """The trained model here in the kernel: for Keras, ``model_fn()`` with rank 0's
        weights; for a loop, what rank 0 returned."""
        result = self.result
        if not result:
            return None
        if self._model_fn is None:
            return result[0]
        if self._model is None:
            model = self._model_fn()
            model.set_weights(result[0]["weights"])
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None and not getattr(optimizer, "built", True):
                # a saved .keras file then holds the optimizer's full (fresh) state, and
                # loading it compiled does not warn that the variable counts differ
                optimizer.build(model.trainable_variables)
            self._model = model
        return self._model

    def register(self, name: str, **options: Any) -> Any:
        """Export, verify and version this run's model: ``ll.models.register(run, name, ...)``,
        with the run's id, parameters and last metrics as lineage."""
        from lepton_lab.models import register

        return register(self, name, **options)

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run ends (or ``timeout``); returns the status.

        Open monitors get a moment to draw the end too, so a notebook executed top to bottom
        (papermill) saves them finished.
        """
        if self._driver is not None:
            self._driver.finished.wait(timeout)
        if self._driver is None or self._driver.finished.is_set():
            for monitor in list(self._monitors):
                monitor.wait(timeout=10 if timeout is None else min(timeout, 10))
        return self.status

    def stop(self, timeout: float | None = 60) -> str:
        """Ask every rank to stop, then wait until they have and the workers are free."""
        if self._driver is not None:
            self._driver.request_stop()
            return self.wait(timeout)
        from lepton_lab.cluster.attach import attach
        from lepton_lab.training.context import request_stop

        request_stop(self.id, attach())
        return self.status

    def metrics(self, since: int = 0) -> list[dict[str, Any]]:
        """Every reported value: rank, step, name, value, time."""
        return self._store.metrics(self.id, since=since)["metrics"]

    def events(self) -> list[dict[str, Any]]:
        return self.record()["events"]

    # -- display in notebooks ----------------------------------------------------------------
    def monitor(self, interval: float = 0.5) -> Any:
        """A live monitor of this run: the widget in a notebook kernel, else a text monitor
        that prints one line per epoch and a summary (terminal IPython, scripts)."""
        from lepton_lab.widgets import RunMonitor, TextMonitor, widgets_available

        if widgets_available():
            return RunMonitor(self, interval=interval)
        monitor = TextMonitor(self, interval=interval)
        self._add_monitor(monitor)
        return monitor

    def _add_monitor(self, monitor: Any) -> None:
        self._monitors.add(monitor)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        monitor = self.monitor()
        if hasattr(monitor, "_ipython_display_"):
            display(monitor)


def get(run_id: str) -> Run:
    """A stored run by id (raises ``KeyError`` for an unknown id)."""
    store = open_store()
    store.get_run(run_id)
    return Run(run_id, store=store)


def list_runs(status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return open_store().list_runs(status=status, limit=limit)
