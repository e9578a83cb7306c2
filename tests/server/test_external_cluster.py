"""Pointing the lab at a cluster somebody else runs (as dask-jobqueue or dask-kubernetes
users do): kernels attach to it, the status lists exactly its workers, and the lab never
stops it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client

from tests.support.labserver import LabServer, execute


@pytest.fixture
def external_cluster(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [
                bin_dir / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                scheduler_file,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for name in ("ext-a", "ext-b"):
        procs.append(
            subprocess.Popen(
                [
                    bin_dir / "dask",
                    "worker",
                    "--scheduler-file",
                    scheduler_file,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--memory-limit",
                    "1GiB",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        proc.wait(30)


def test_lab_attaches_to_an_existing_cluster_and_leaves_it_running(tmp_path, external_cluster):
    server = LabServer(tmp_path / "root", {"cluster_mode": external_cluster}).start()
    try:
        status = server.wait_cluster()
        assert status["mode"] == "external"
        assert status["owned"] is False
        assert status["scheduler_address"] == external_cluster
        assert sorted(w["name"] for w in status["workers"]) == ["ext-a", "ext-b"]

        code, error = server.request("PATCH", "lepton-lab/api/cluster", {"workers": 5})
        assert code == 409 and "does not own" in error["message"]

        kernel = server.start_kernel("lepton-cpu")
        try:
            out = execute(
                kernel,
                "import lepton_lab as ll\nc = ll.attach()\nprint(c.scheduler.address)\n"
                "print(sorted(c.run(lambda dask_worker: dask_worker.name).values()))",
            )
        finally:
            kernel.stop_channels()
        assert external_cluster in out
        assert "['ext-a', 'ext-b']" in out
    finally:
        assert server.stop() == 0, server.log()

    with Client(external_cluster, timeout=30) as client:
        info = client.scheduler_info(n_workers=-1)
        assert sorted(w["name"] for w in info["workers"].values()) == ["ext-a", "ext-b"]
        assert client.submit(lambda: 7).result(timeout=30) == 7
