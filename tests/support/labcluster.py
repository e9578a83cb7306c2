"""A 2-worker cluster published the way the lab's server publishes its own: a cluster file with
the scheduler address and the TLS keys' paths, which kernels, jobs and the CLI read. Tests and
benchmarks that run notebooks as jobs without a whole ``jupyter lab`` share it."""

from __future__ import annotations

import json
from pathlib import Path

from lepton_lab.cluster.manager import ClusterManager


def start_published_cluster(state: Path, workers: int = 2) -> tuple[ClusterManager, Path]:
    """Start a local cluster and write its cluster file into ``state``; close it when done."""
    cluster = ClusterManager(
        mode="local",
        n_workers=workers,
        threads_per_worker=1,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
    )
    cluster.start()
    cluster_file = state / "cluster.json"
    cluster_file.write_text(
        json.dumps(
            {
                "status": "running",
                "scheduler_address": cluster.scheduler_address,
                "security": cluster.client_security(),
            }
        )
    )
    return cluster, cluster_file
