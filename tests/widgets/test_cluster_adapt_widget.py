"""The cluster widget's adaptive controls against a real embedded cluster: Adapt turns Dask's
adaptive scaling on (and the cluster really shrinks to its bounds), Scale turns it off for good,
bad bounds show the facade's message and change nothing, and a run's worker request shows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import lepton_lab as ll
from lepton_lab.cluster.adaptive import adapt_bounds, workers_requested
from lepton_lab.widgets.cluster import ClusterWidget

pytestmark = pytest.mark.timeout(240)


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


@pytest.fixture
def widget(kernel_env) -> Iterator[ClusterWidget]:
    """A widget on this process's own embedded cluster (so it scales through the manager)."""
    ll.attach()
    cw = ClusterWidget(refresh=0.5)
    try:
        yield cw
    finally:
        cw.close()
        ll.detach()


def click_and_wait(cw: ClusterWidget, button: Any) -> None:
    """Click as the frontend does, then wait for the background action to finish."""
    button.click()
    wait_for(lambda: not cw._scaling, 90, "the scaling action")


def test_adapt_turns_adaptive_scaling_on_and_scale_turns_it_off(widget: ClusterWidget) -> None:
    cw = widget
    assert cw.manager is not None and cw.manager.owned
    assert cw.status["cluster_class"] == "distributed.LocalCluster"
    assert "<code class='lepton-cluster-class'>distributed.LocalCluster</code>" in cw.summary.value
    assert "data-adaptive='false'>fixed size<" in cw.summary.value
    start = cw.status["totals"]["workers"]
    assert start >= 2
    assert cw.adapt_button.disabled is False

    cw.adapt_min.value = 1
    cw.adapt_max.value = 1
    click_and_wait(cw, cw.adapt_button)
    assert cw.message.value == "adaptive 1–1 on"
    assert cw.status["adapt"] == {"minimum": 1, "maximum": 1, "requested": 0}
    assert "data-adaptive='true'>adaptive 1–1<" in cw.summary.value
    # kernels learn the bounds from the scheduler's metadata, as the sidebar does from REST
    assert adapt_bounds(cw.client) == {"minimum": 1, "maximum": 1}
    # Dask's Adaptive really retires the idle workers down to the maximum
    wait_for(lambda: (cw.update(), cw.status["totals"]["workers"])[1] == 1, 60, "1 worker")

    # a run asking for more than the bounds allow is shown as waiting
    with workers_requested(cw.client, 3, hold=30):
        cw.update()
        assert cw.status["adapt"]["requested"] == 3
        assert "a run is waiting for 3 workers" in cw.summary.value
    cw.update()
    assert "waiting" not in cw.summary.value

    cw.scale_input.value = 2
    click_and_wait(cw, cw.scale_button)
    assert cw.message.value == "scaled to 2 workers"
    assert cw.status["adapt"] is None
    assert adapt_bounds(cw.client) is None
    assert "fixed size" in cw.summary.value
    # off for good: idle workers are no longer retired
    time.sleep(4)
    cw.update()
    assert cw.status["totals"]["workers"] == 2


def test_bad_bounds_show_the_message_and_change_nothing(widget: ClusterWidget) -> None:
    cw = widget
    before = cw.status["totals"]["workers"]
    cw.adapt_min.value = 2
    cw.adapt_max.value = 1
    click_and_wait(cw, cw.adapt_button)
    assert "minimum (2) is more than its maximum (1)" in cw.message.value
    assert "lepton-cluster-message-error" in cw.message.value
    assert cw.status["adapt"] is None
    assert adapt_bounds(cw.client) is None
    assert cw.status["totals"]["workers"] == before
    # the buttons come back for a corrected try
    assert cw.adapt_button.disabled is False and cw.scale_button.disabled is False


def test_controls_are_off_for_a_cluster_this_kernel_cannot_scale(kernel_env) -> None:
    """A client to someone else's scheduler, with no lab to ask: nothing to press."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            cw = ClusterWidget(refresh=0.5, client=client)
            try:
                assert cw.manager is None
                assert cw.status["mode"] == "external" and cw.status["adapt"] is None
                assert cw.adapt_button.disabled and cw.scale_button.disabled
                assert "scale it where it runs" in cw.adapt_button.tooltip
            finally:
                cw.close()


def test_a_lab_kernel_sets_adaptive_scaling_through_the_labs_rest_route(
    kernel_env, tmp_path
) -> None:
    """The kernel does not own the lab's cluster: Adapt goes through ``PATCH /cluster``, the
    kernel reads the bounds back from the scheduler, and a refusal is the server's message."""
    from tests.support.labserver import LabServer, execute

    lepton = {
        "cluster_mode": "local",
        "n_workers": 2,
        "threads_per_worker": 1,
        "dashboard_address": "127.0.0.1:0",
        "max_workers": 4,
        "state_dir": str(tmp_path / "lepton"),
    }
    (tmp_path / "lepton").mkdir()
    lab = LabServer(tmp_path / "root", lepton=lepton)
    lab.start()
    kernel = None
    try:
        lab.wait_cluster(lambda s: s["status"] == "running" and len(s["workers"]) == 2)
        kernel = lab.start_kernel("lepton-cpu")
        out = execute(
            kernel,
            "import lepton_lab as ll\ncw = ll.widgets.ClusterWidget()\n"
            "print(cw.manager is None, cw.adapt_button.disabled, cw.status['adapt'])",
        )
        assert out.split() == ["True", "False", "None"], out
        out = execute(kernel, "cw.adapt(1, 3); cw.update(); print(cw.status['adapt'])")
        assert out.strip() == "{'minimum': 1, 'maximum': 3, 'requested': 0}", out
        code, status = lab.request("GET", "lepton-lab/api/cluster")
        assert code == 200 and status["adapt"]["maximum"] == 3, status
        out = execute(
            kernel,
            "cw.adapt_min.value, cw.adapt_max.value = 3, 2\ncw._on_adapt()\n"
            "import time\nwhile cw._scaling: time.sleep(0.1)\nprint(cw.message.value)",
        )
        assert "the lab refused" in out and "minimum (3) is more than its maximum (2)" in out
        assert lab.request("GET", "lepton-lab/api/cluster")[1]["adapt"]["maximum"] == 3
        out = execute(kernel, "cw.scale(2); cw.update(); print(cw.status['adapt'])")
        assert out.strip() == "None", out
        assert lab.request("GET", "lepton-lab/api/cluster")[1]["adapt"] is None
        execute(kernel, "cw.close()")
    finally:
        if kernel is not None:
            kernel.stop_channels()
        lab.stop(timeout=30)
