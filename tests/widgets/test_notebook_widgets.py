"""The widgets demo notebook, executed top to bottom in real kernels on a real 2-worker cluster.

With ``store_widget_state=True`` nbclient keeps every widget model the kernel sent, as a
frontend would, so the saved state says what a user saw: the progress bars at their end, one
chart point per reported step per metric, the status, the cluster's workers. The same notebook
in the plain ``python3`` kernel, with no widget manager at all, prints one line per epoch and a
summary, and raises nothing.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.widgets.conftest import DEMO, array_length, decode_float_array, widget_models

pytestmark = pytest.mark.timeout(400)
EPOCHS = 3


def execute(kernel: str, store_widget_state: bool, tmp_path) -> nbformat.NotebookNode:
    nb = nbformat.read(DEMO, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name=kernel,
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors, errors
    return nb


def texts(cell) -> str:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o and "text/plain" in o.data:
            out.append(o.data["text/plain"])
    return "\n".join(out)


def test_monitor_state_after_a_two_worker_run(tmp_path, kernel_env):
    nb = execute("lepton-cpu", True, tmp_path)
    models = widget_models(nb)
    by_name: dict[str, list[dict]] = {}
    for state in models.values():
        by_name.setdefault(state.get("_model_name"), []).append(state)

    # progress: both monitors (live and from the store) end with full bars
    epoch_bars = [m for m in by_name["IntProgressModel"] if m.get("description") == "epoch"]
    step_bars = [m for m in by_name["IntProgressModel"] if m.get("description") == "step"]
    assert len(epoch_bars) == 2 and len(step_bars) == 2, (epoch_bars, step_bars)
    for bar in epoch_bars:
        assert bar["max"] == EPOCHS and bar["value"] == EPOCHS, bar
    for bar in step_bars:
        assert bar["max"] > 1 and bar["value"] == bar["max"], bar
        assert bar["bar_style"] == "success", bar

    # curves: one point per reported epoch for every metric, train and val on one chart
    lines = by_name["LinesModel"]
    labels = sorted(tuple(m["labels"]) for m in lines)
    for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert labels.count((metric,)) == 2, labels  # in each of the two monitors
    for line in lines:
        assert array_length(line["x"]) == EPOCHS, line["labels"]
        assert array_length(line["y"]) == EPOCHS, line["labels"]
        assert decode_float_array(line, "x") == [0.0, 1.0, 2.0]
    figures = [m for m in by_name["FigureModel"] if m.get("title") == "loss"]
    assert figures and all(len(f["marks"]) == 2 for f in figures), figures

    # status and ranks
    html = "\n".join(m.get("value", "") for m in by_name["HTMLModel"])
    assert html.count("data-status='completed'") == 2, html
    assert len(re.findall(r"class='lepton-rank' data-state='completed'", html)) == 4, html
    assert "data-kind='completed'" in html

    # the cluster widget listed both workers; the launcher's form was valid
    assert "<span class='lepton-worker-count'>2</span>" in html
    assert html.count("class='lepton-worker'") >= 2
    launch = [m for m in by_name["ButtonModel"] if m.get("description") == "Launch"]
    assert launch and launch[0]["disabled"] is False

    # the text log under the monitor holds one line per epoch and the summary
    run_cell = next(c for c in nb.cells if c.source.startswith("run = ll.fit("))
    log = texts(run_cell)
    for epoch in range(1, EPOCHS + 1):
        assert f"epoch {epoch}/{EPOCHS}" in log, log
    assert "completed in" in log, log
    status_cell = next(c for c in nb.cells if "run.wait()" in c.source)
    assert "status: completed" in texts(status_cell)


def test_plain_python_kernel_without_widget_manager_prints_lines(tmp_path, kernel_env):
    nb = execute("python3", False, tmp_path)
    assert "widgets" not in nb.metadata
    run_cell = next(c for c in nb.cells if c.source.startswith("run = ll.fit("))
    log = texts(run_cell)
    lines = [line for line in log.splitlines() if re.search(r"epoch \d+/\d+", line)]
    assert len(lines) == EPOCHS, log
    assert re.search(r"Run \w+ \(widgets demo: digits\) completed in \d+:\d\d, 3/3 epochs", log)
    history_cell = next(c for c in nb.cells if "ll.runs.get(run.id)" in c.source)
    assert "RunMonitor of run" in texts(history_cell)
