"""Where no widget can render: terminal IPython prints a line per epoch and a summary; long
histories stay bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lepton_lab.widgets.history import Series

TERMINAL_CODE = """
import lepton_lab as ll

def loop(config):
    ctx = ll.context()
    for epoch in range(config["epochs"]):
        ctx.progress(1, 1, epoch, config["epochs"], force=True)
        ctx.report(step=epoch, loss=1.0 / (epoch + 1))

run = ll.fit(loop, framework="torch", workers=2, config={"epochs": 3}, name="terminal")
display(run)
print("status:", run.wait(120))
"""


@pytest.mark.timeout(180)
def test_terminal_ipython_prints_lines_and_a_summary(kernel_env: Path) -> None:
    ipython = Path(sys.executable).with_name("ipython")
    proc = subprocess.run(
        [str(ipython), "--no-banner", "--colors=nocolor", "-c", TERMINAL_CODE],
        capture_output=True,
        text=True,
        timeout=170,
        env=dict(os.environ),
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in out, out
    assert "status: completed" in out, out
    epochs = [line for line in out.splitlines() if " epoch " in line]
    assert [line.split()[2] for line in epochs] == ["1/3", "2/3", "3/3"], out
    summary = [line for line in out.splitlines() if line.startswith("Run ")]
    assert len(summary) == 1 and "(terminal) completed in" in summary[0], out
    assert "loss 0.3333" in summary[0], out  # the last epoch's value, mean over ranks


def test_series_keeps_a_bounded_number_of_points() -> None:
    series = Series(max_points=100)
    for step in range(10_000):
        for _rank in range(2):
            series.add(step, float(step))
    xs, ys = series.points()
    assert 50 <= len(xs) <= 100
    assert xs == sorted(xs) and xs[0] < 100 and xs[-1] > 9_900
    assert all(abs(x - y) < 1e-9 for x, y in zip(xs, ys, strict=True))  # means stay exact


def test_series_is_exact_below_the_bound() -> None:
    series = Series(max_points=100)
    for step, value in enumerate([3.0, 2.0, 1.0]):
        series.add(step, value)
        series.add(step, value + 1)  # a second rank
    assert series.points() == ([0.0, 1.0, 2.0], [3.5, 2.5, 1.5])
