"""``RunMonitor``: the live view of a run in the notebook (what displaying a ``Run`` shows).

Curves are bqplot marks (docs/guide/widgets.md says why bqplot): their data are numpy arrays sent as
binary buffers, one mark per metric, train and ``val_`` values of a metric on one chart.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as w

from lepton_lab.widgets.follow import DEFAULT_INTERVAL, Follower
from lepton_lab.widgets.history import RunHistory, format_seconds
from lepton_lab.widgets.text import TextLog, log_bundle

#: seconds between reads of worker load from the scheduler
LOAD_INTERVAL = 2.0
#: events listed in the monitor (the newest)
SHOWN_EVENTS = 20
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
STATUS_COLORS = {
    "queued": "#777",
    "running": "#1f77b4",
    "completed": "#2ca02c",
    "stopped": "#ff7f0e",
    "failed": "#d62728",
}


class MetricChart:
    """One bqplot figure: every metric of one family (``loss`` and ``val_loss``)."""

    def __init__(self, family: str, curves: dict[str, tuple[list[float], list[float]]]) -> None:
        import bqplot as bq

        self.family = family
        self.x_scale = bq.LinearScale()
        self.y_scale = bq.LinearScale()
        self.lines: dict[str, Any] = {}
        # the figure is made with all its marks: marks added one by one in quick succession
        # can be dropped by the figure's view
        marks = [self._line(name, *points) for name, points in curves.items()]
        self.figure = bq.Figure(
            title=family,
            marks=marks,
            axes=[
                bq.Axis(scale=self.x_scale, label="step", grid_lines="none"),
                bq.Axis(scale=self.y_scale, orientation="vertical", tick_format=".3g"),
            ],
            legend_location="top-right",
            animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 15},
            layout=w.Layout(width="340px", height="240px"),
        )
        self.figure.add_class("lepton-chart")

    def _line(self, name: str, xs: list[float], ys: list[float]) -> Any:
        import bqplot as bq
        import numpy as np

        line = bq.Lines(
            x=np.asarray(xs, dtype=float),
            y=np.asarray(ys, dtype=float),
            scales={"x": self.x_scale, "y": self.y_scale},
            colors=[COLORS[len(self.lines) % len(COLORS)]],
            labels=[name],
            display_legend=True,
            marker="circle" if len(xs) < 50 else None,
            marker_size=16,
        )
        self.lines[name] = line
        return line

    def update(self, name: str, xs: list[float], ys: list[float]) -> None:
        import numpy as np

        line = self.lines.get(name)
        if line is None:
            self.figure.marks = [*self.figure.marks, self._line(name, xs, ys)]
            return
        with line.hold_sync():
            line.x = np.asarray(xs, dtype=float)
            line.y = np.asarray(ys, dtype=float)
            if len(xs) >= 50 and line.marker is not None:
                line.marker = None

    def close(self) -> None:
        for line in self.lines.values():
            line.close()
        for axis in self.figure.axes:
            axis.close()
        self.x_scale.close()
        self.y_scale.close()
        self.figure.close()


class RunMonitor(w.VBox):
    """Live progress, curves, per-rank state and load, events, errors and a Stop button.

    Updated from a background thread (the kernel stays free for other cells), at most one
    redraw per ``interval`` seconds. Opened on a finished run it shows the whole history.
    """

    def __init__(self, run: Any, interval: float = DEFAULT_INTERVAL) -> None:
        self.run = run
        self.header = w.HTML(layout=w.Layout(margin="0 0 4px 0"))
        self.epoch_bar = w.IntProgress(value=0, min=0, max=1, description="epoch")
        self.epoch_label = w.Label()
        self.step_bar = w.IntProgress(value=0, min=0, max=1, description="step")
        self.step_label = w.Label()
        self.epoch_bar.add_class("lepton-epoch-bar")
        self.step_bar.add_class("lepton-step-bar")
        self.charts_box = w.Box(layout=w.Layout(flex_flow="row wrap"))
        self.ranks_html = w.HTML()
        self.events_html = w.HTML()
        self.error_html = w.HTML(layout=w.Layout(display="none"))
        self.stop_button = w.Button(
            description="Stop", icon="stop", button_style="danger", tooltip="stop every rank"
        )
        self.stop_button.add_class("lepton-stop")
        self.stop_button.on_click(self._on_stop)
        self.charts: dict[str, MetricChart] = {}
        self.text_log = TextLog()
        self._log_display: Any = None
        self._load: dict[str, dict[str, Any]] = {}
        self._load_at = 0.0
        self._stop_thread: threading.Thread | None = None
        self._render_lock = threading.Lock()
        super().__init__(
            children=[
                self.header,
                w.HBox([self.epoch_bar, self.epoch_label], layout=w.Layout(display="none")),
                w.HBox([self.step_bar, self.step_label]),
                self.charts_box,
                w.HBox(
                    [self.ranks_html, self.events_html],
                    layout=w.Layout(grid_gap="16px", align_items="flex-start"),
                ),
                self.error_html,
                self.stop_button,
            ]
        )
        self.add_class("lepton-run-monitor")
        self._epoch_row, self._step_row = self.children[1], self.children[2]
        self._follower = Follower(run, self._render, interval=interval, on_tick=self._tick)
        register = getattr(run, "_add_monitor", None)
        if register is not None:
            register(self)
        self._follower.start()

    # -- control -------------------------------------------------------------------------
    def _on_stop(self, _button: Any = None) -> None:
        """The Stop button: ask the ranks to stop without blocking the kernel."""
        if self._stop_thread is not None:
            return
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self._stop_thread = threading.Thread(
            target=self._stop, name=f"lepton-stop-{self.run.id}", daemon=True
        )
        self._stop_thread.start()

    def _stop(self) -> None:
        try:
            driver = getattr(self.run, "_driver", None)
            if driver is not None:
                driver.request_stop()
            else:
                self.run.stop(timeout=0)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never raised in a handler
            self.error_html.layout.display = None
            self.error_html.value = f"<b>Stop failed:</b> {html.escape(str(exc))}"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended and the monitor shows its final state."""
        return self._follower.wait(timeout)

    @property
    def redraws(self) -> int:
        return self._follower.redraws

    def close(self) -> None:
        self._follower.close()
        for chart in self.charts.values():
            chart.close()
        super().close()

    # -- display --------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        """The widget, and under it the run's text log (what papermill output keeps)."""
        from IPython.display import display

        display(self._widget_bundle(), raw=True)
        self._log_display = display(
            log_bundle(self.text_log.lines, f"run {self.run.id}"), raw=True, display_id=True
        )

    def _widget_bundle(self) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_()
        bundle["text/plain"] = f"RunMonitor of run {self.run.id}"
        return bundle

    # -- drawing (background thread) -------------------------------------------------------
    def _tick(self, history: RunHistory) -> None:
        if history.finished or time.monotonic() - self._load_at < LOAD_INTERVAL:
            return
        self._load_at = time.monotonic()
        self._load = _worker_load(self.run)

    def _render(self, history: RunHistory) -> None:
        with self._render_lock:
            self._draw_header(history)
            self._draw_progress(history)
            for family, names in history.families().items():
                chart = self.charts.get(family)
                if chart is None:
                    curves = {name: history.series[name].points() for name in names}
                    self.charts[family] = MetricChart(family, curves)
                    self.charts_box.children = [c.figure for c in self.charts.values()]
                    continue
                for name in names:
                    chart.update(name, *history.series[name].points())
            self.ranks_html.value = _ranks_table(history, self._load)
            self.events_html.value = _events_list(history)
            self._draw_error(history)
            if history.finished:
                self.stop_button.disabled = True
                self.stop_button.description = history.status
            new = self.text_log.advance(history)
            if new and self._log_display is not None:
                self._log_display.update(
                    log_bundle(self.text_log.lines, f"run {self.run.id}"), raw=True
                )

    def _draw_header(self, history: RunHistory) -> None:
        record = history.record
        status = history.status
        color = STATUS_COLORS.get(status, "#777")
        elapsed = history.elapsed()
        bits = [
            f"<b>{html.escape(str(record.get('name') or self.run.id))}</b>",
            f"<code>{self.run.id}</code>",
            f"<span class='lepton-run-status' data-status='{status}' "
            f"style='color:{color};font-weight:bold'>{status}</span>",
            f"{record.get('world_size', '?')} rank(s)",
        ]
        if elapsed is not None:
            bits.append(f"elapsed {format_seconds(elapsed)}")
        if (record.get("attempts") or 0) > 1:
            bits.append(f"attempt {record['attempts']}")
        self.header.value = " · ".join(bits)

    def _draw_progress(self, history: RunHistory) -> None:
        done, total = history.epochs()
        eta = history.eta()
        eta_text = f" · ETA {format_seconds(eta)}" if eta is not None else ""
        if total:
            self._epoch_row.layout.display = None
            with self.epoch_bar.hold_sync():
                self.epoch_bar.max = total
                self.epoch_bar.value = done
            self.epoch_label.value = f"{done}/{total}{eta_text}"
            eta_text = ""
        step, steps = history.steps()
        if history.finished and history.status == "completed" and steps:
            step = steps
        with self.step_bar.hold_sync():
            if steps:
                self.step_bar.max = int(steps)
                self.step_bar.value = min(int(step or 0), int(steps))
                self.step_bar.bar_style = ""
                self.step_label.value = f"{step or 0}/{steps}{eta_text}"
            else:
                # a loop that does not say how many steps it will take: the bar shows activity
                self.step_bar.max = 1
                self.step_bar.value = 1 if history.finished else 0
                self.step_label.value = f"step {step}" if step is not None else "waiting"
            if history.finished:
                self.step_bar.bar_style = {
                    "completed": "success",
                    "failed": "danger",
                    "stopped": "warning",
                }.get(history.status, "")

    def _draw_error(self, history: RunHistory) -> None:
        error = history.record.get("error")
        if history.status != "failed" or not error:
            return
        rank = history.record.get("error_rank")
        where = f" on rank {rank}" if rank is not None else ""
        first = html.escape(error.splitlines()[0])
        self.error_html.layout.display = None
        self.error_html.value = (
            f"<div class='lepton-run-error' style='color:#d62728'><b>Failed{where}:</b> {first}"
            f"<details><summary>traceback</summary><pre>{html.escape(error)}</pre></details></div>"
        )


def _worker_load(run: Any) -> dict[str, dict[str, Any]]:
    """CPU and memory of the run's workers, from the scheduler this process already talks to."""
    driver = getattr(run, "_driver", None)
    client = driver.client if driver is not None else None
    if client is None:
        from lepton_lab.cluster import attach as attach_module

        client = attach_module._client  # only one that exists: never start a cluster for this
    if client is None:
        return {}
    try:
        from lepton_lab.cluster.scheduler import scheduler_identity

        info = scheduler_identity(client)["workers"]
    except Exception:  # noqa: BLE001 - load is a nicety; the scheduler may be gone
        return {}
    return {addr: v.get("metrics", {}) or {} for addr, v in info.items()}


def _ranks_table(history: RunHistory, load: dict[str, dict[str, Any]]) -> str:
    if not history.ranks:
        return "<i>no rank has started yet</i>"
    rows = []
    now = time.time()
    for rank in sorted(history.ranks):
        r = history.ranks[rank]
        metrics = load.get(r.worker or "", {}) if not history.finished else {}
        cpu = f"{metrics['cpu']:.0f} %" if "cpu" in metrics else ""
        mem = _bytes(metrics["memory"]) if metrics.get("memory") else ""
        age = f"{now - r.last_report:.0f} s ago" if r.last_report and not history.finished else ""
        rows.append(
            f"<tr class='lepton-rank' data-state='{r.state}'><td>{rank}</td>"
            f"<td>{html.escape(r.worker or '')}</td><td>{r.state}</td>"
            f"<td>{'' if r.step is None else r.step}</td><td>{age}</td>"
            f"<td>{cpu}</td><td>{mem}</td></tr>"
        )
    return (
        "<table class='lepton-ranks'><tr><th>rank</th><th>worker</th><th>state</th>"
        "<th>step</th><th>last report</th><th>CPU</th><th>memory</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _events_list(history: RunHistory) -> str:
    events = list(history.events)[-SHOWN_EVENTS:]
    if not events:
        return ""
    items = []
    for e in reversed(events):
        stamp = time.strftime("%H:%M:%S", time.localtime(e.get("time") or 0))
        rank = f" rank {e['rank']}" if e.get("rank") is not None else ""
        message = html.escape((e.get("message") or "").splitlines()[0] if e.get("message") else "")
        items.append(
            f"<li class='lepton-event' data-kind='{e.get('kind')}'>{stamp} "
            f"<b>{e.get('kind')}</b>{rank}: {message}</li>"
        )
    return "<b>events</b><ul class='lepton-events'>" + "".join(items) + "</ul>"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
