"""The widgets driven the way JupyterLab drives them: comm messages into a real kernel.

Typing in a field is a ``comm_msg`` ``update`` of its ``value``; clicking a button is a
``comm_msg`` ``custom`` ``{"event": "click"}``. A real ``lepton-cpu`` kernel with its embedded
2-worker cluster runs the launcher, the monitor's Stop and the cluster widget's Scale.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client import KernelManager

from tests.support.labserver import execute

pytestmark = pytest.mark.timeout(300)

SETUP = """
import time
import lepton_lab as ll


def slow_loop(config):
    ctx = ll.context()
    steps = 200
    for step in range(config["epochs"] * steps):
        time.sleep(0.02)
        ctx.report(step=step, loss=1.0 / (step + 1))
        ctx.progress(step % steps + 1, steps, step // steps, config["epochs"])
    return step


launcher = ll.widgets.FitLauncher(slow_loop, framework="torch", epochs=50)
display(launcher)
"""


class Kernel:
    def __init__(self, name: str) -> None:
        self.manager = KernelManager(kernel_name=name)
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 120) -> str:
        return execute(self.client, textwrap.dedent(code), timeout)

    def value(self, expression: str) -> Any:
        return json.loads(self.run(f"import json; print(json.dumps({expression}))"))

    def comm_msg(self, comm_id: str, data: dict[str, Any]) -> None:
        """What the frontend's widget manager sends for a user's edit or click."""
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(msg)

    def type_into(self, widget: str, text: str) -> None:
        model = self.value(f"{widget}.model_id")
        self.comm_msg(model, {"method": "update", "state": {"value": text}, "buffer_paths": []})

    def click(self, widget: str) -> None:
        model = self.value(f"{widget}.model_id")
        self.comm_msg(model, {"method": "custom", "content": {"event": "click"}})

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture
def kernel(kernel_env) -> Iterator[Kernel]:
    k = Kernel("lepton-cpu")
    try:
        yield k
    finally:
        k.close()


def test_launcher_validates_as_you_type_launches_and_stop_ends_the_run(kernel: Kernel):
    kernel.run(SETUP)
    assert kernel.value("launcher.launch_button.disabled") is False

    kernel.type_into('launcher.fields["epochs"]', "0")
    assert kernel.value("launcher.launch_button.disabled") is True
    assert "epochs must be at least 1" in kernel.value("launcher.errors.value")
    kernel.type_into('launcher.fields["workers"]', "9")
    assert "workers must be at most 2" in kernel.value("launcher.errors.value")
    kernel.type_into('launcher.fields["workers"]', "two")
    assert "workers must be a whole number" in kernel.value("launcher.errors.value")
    kernel.type_into('launcher.fields["workers"]', "2")
    kernel.type_into('launcher.fields["epochs"]', "3")
    assert kernel.value("launcher.errors.value") == ""
    assert kernel.value("launcher.launch_button.disabled") is False

    kernel.click("launcher.launch_button")
    assert kernel.value("type(launcher.children[0]).__name__") == "RunMonitor"
    assert kernel.value("launcher.run.record()['params']['config']['epochs']") == 3
    # the kernel is free while the run trains: wait here for the monitor to show progress
    kernel.run(
        """
        deadline = time.monotonic() + 90
        while launcher.monitor.step_bar.value < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        """
    )
    status, error = kernel.value("[launcher.run.status, launcher.run.error]")
    assert status == "running", error
    assert kernel.value("launcher.monitor.step_bar.value") >= 5

    kernel.click("launcher.monitor.stop_button")
    assert kernel.value("launcher.monitor.stop_button.disabled") is True
    assert kernel.value("launcher.run.wait(60)") == "stopped"
    assert kernel.value("launcher.monitor.wait(10)") is True
    assert kernel.value("launcher.monitor.stop_button.description") == "stopped"
    assert "data-status='stopped'" in kernel.value("launcher.monitor.header.value")
    events = kernel.value("[e['kind'] for e in launcher.run.events()]")
    assert events[-1] == "stopped", events


def test_cluster_widget_scales_and_stops_refreshing_when_closed(kernel: Kernel):
    kernel.run("import lepton_lab as ll\ncw = ll.widgets.ClusterWidget(refresh=0.5)\ndisplay(cw)")
    assert kernel.value("cw.status['totals']['workers']") == 2
    assert kernel.value("cw.status['mode']") == "local"
    html = kernel.value("cw.workers_html.value")
    assert html.count("class='lepton-worker'") == 2
    for column in ("threads", "memory used / limit", "CPU", "GPU"):
        assert column in html

    kernel.type_into("cw.scale_input", 3)
    kernel.click("cw.scale_button")
    kernel.run(
        """
        import time

        deadline = time.monotonic() + 60
        while cw.status['totals']['workers'] != 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        """
    )
    assert kernel.value("cw.status['totals']['workers']") == 3
    assert "<span class='lepton-worker-count'>3</span>" in kernel.value("cw.summary.value")
    assert kernel.value("cw.refreshing") is True

    # scaled behind its back: with no view on screen it does not refresh ...
    kernel.run("cw.manager.scale(2); time.sleep(1.5)")
    assert kernel.value("cw.status['totals']['workers']") == 3
    # ... once the frontend shows a view (it counts views in _view_count), it does
    model = kernel.value("cw.model_id")
    kernel.comm_msg(model, {"method": "update", "state": {"_view_count": 1}, "buffer_paths": []})
    kernel.run(
        """
        deadline = time.monotonic() + 10
        while cw.status['totals']['workers'] != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        """
    )
    assert kernel.value("cw.status['totals']['workers']") == 2
    kernel.run("cw.close(); cw._thread.join(5)")
    assert kernel.value("cw.refreshing") is False


def test_monitor_shows_the_failing_rank_and_its_error(kernel: Kernel):
    kernel.run(
        """
        import lepton_lab as ll

        def breaks(config):
            ctx = ll.context()
            ctx.report(step=0, loss=1.0)
            if ctx.rank == 1:
                raise ValueError("bad batch on purpose")
            ctx.report(step=1, loss=0.5)

        run = ll.fit(breaks, framework="torch", workers=2, name="breaks")
        monitor = run.monitor()
        display(monitor)
        run.wait(120)
        """
    )
    assert kernel.value("run.status") == "failed"
    assert kernel.value("monitor.wait(10)") is True
    error = kernel.value("monitor.error_html.value")
    assert "Failed on rank 1:" in error and "bad batch on purpose" in error, error
    assert "ValueError" in error and "traceback" in error
    assert kernel.value("monitor.error_html.layout.display") is None  # shown
    assert "data-state='failed'" in kernel.value("monitor.ranks_html.value")
    assert kernel.value("monitor.step_bar.bar_style") == "danger"
    assert "Error on rank 1" in kernel.value("monitor.text_log.summary")
