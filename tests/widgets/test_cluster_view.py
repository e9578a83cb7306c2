"""The cluster widget's worker table, from the status shape the cluster code produces
(``_worker_view``), including a GPU worker as Dask-CUDA workers report one."""

from __future__ import annotations

from lepton_lab.cluster.manager import _worker_view
from lepton_lab.widgets.cluster import _summary_html, _workers_html


def test_worker_rows_show_threads_memory_cpu_and_gpu():
    gpu_worker = _worker_view(
        "tcp://127.0.0.1:4000",
        {
            "name": "gpu-0",
            "nthreads": 1,
            "memory_limit": 8 * 2**30,
            "metrics": {
                "memory": 2**30,
                "cpu": 87.0,
                "gpu": {"utilization": 93, "memory-used": 40 * 2**30},
            },
            "gpu": {"name": "NVIDIA H100 80GB HBM3", "memory-total": 80 * 2**30},
        },
    )
    cpu_worker = _worker_view(
        "tcp://127.0.0.1:4001",
        {
            "name": "cpu-1",
            "nthreads": 2,
            "memory_limit": 4 * 2**30,
            "metrics": {"memory": 0, "cpu": 3.0},
        },
    )
    html = _workers_html([gpu_worker, cpu_worker])
    assert html.count("class='lepton-worker'") == 2
    assert "NVIDIA H100 80GB HBM3 · 93 % · 40.00 GiB / 80.00 GiB" in html
    assert "1.00 GiB / 8.00 GiB" in html and "87 %" in html
    status = {
        "mode": "cuda",
        "scheduler_address": "tcp://127.0.0.1:8786",
        "dashboard_link": "http://127.0.0.1:8787/status",
        "totals": {
            "workers": 2,
            "threads": 3,
            "memory_used": 2**30,
            "memory_limit": 12 * 2**30,
            "gpus": 1,
        },
    }
    summary = _summary_html(status)
    assert "<span class='lepton-cluster-mode'>cuda</span>" in summary
    assert "href='http://127.0.0.1:8787/status'" in summary
    assert "1 GPU(s)" in summary and "3 threads" in summary


def test_summary_names_the_class_and_says_fixed_or_adaptive_with_a_waiting_run():
    """The class and the scaling state read the same as the sidebar's, from the REST shape."""
    base = {
        "mode": "factory",
        "cluster_class": "dask_jobqueue.LocalCluster",
        "scheduler_address": "tcp://127.0.0.1:8786",
        "totals": {"workers": 1, "threads": 1, "memory_used": 0, "memory_limit": 0, "gpus": 0},
    }
    fixed = _summary_html({**base, "adapt": None})
    assert "<code class='lepton-cluster-class'>dask_jobqueue.LocalCluster</code>" in fixed
    assert "data-adaptive='false'>fixed size</span>" in fixed
    adaptive = _summary_html({**base, "adapt": {"minimum": 0, "maximum": 8, "requested": 1}})
    assert "data-adaptive='true'>adaptive 0–8</span>" in adaptive
    # one worker asked for and one there: nobody waits
    assert "waiting" not in adaptive
    waiting = _summary_html({**base, "adapt": {"minimum": 0, "maximum": 8, "requested": 3}})
    assert "a run is waiting for 3 workers" in waiting
    # an unknown class (a cluster the lab only connects to) is left out, not "None"
    assert "lepton-cluster-class" not in _summary_html({**base, "cluster_class": None})
