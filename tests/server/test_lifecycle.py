"""The server's cluster as a whole process sees it: start, a lost worker, and shutdown."""

from __future__ import annotations

import os
import signal
import socket

import psutil
import pytest

from tests.support.labserver import LabServer, _ephemeral_range

LAB = {
    "cluster_mode": "local",
    "n_workers": 2,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
}


async def test_killed_worker_is_reported_and_replaced_by_its_nanny(lab_app, cluster_status):
    before = await cluster_status()
    client = lab_app.cluster_manager.client
    pids = client.run(os.getpid)
    victim, pid = sorted(pids.items())[0]
    os.kill(pid, signal.SIGKILL)

    lost = await cluster_status(
        lambda s: any(e["action"] == "remove-worker" and e["worker"] == victim for e in s["events"])
    )
    assert lost["status"] == "running"
    after = await cluster_status(
        lambda s: (
            s["totals"]["workers"] == 2 and victim not in {w["address"] for w in s["workers"]}
        ),
        timeout=60,
    )
    assert after["scheduler_address"] == before["scheduler_address"]
    assert any(e["action"] == "add-worker" for e in after["events"])
    assert client.submit(lambda: 42).result(timeout=30) == 42


def test_stopping_the_server_leaves_no_worker_processes(tmp_path):
    server = LabServer(tmp_path / "root", LAB).start()
    try:
        server.wait_cluster(lambda s: s["totals"]["workers"] == 2)
        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert len(children) >= 2, children
    finally:
        code = server.stop()
    assert code == 0, server.log()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"orphans after server stop: {alive}"
    assert "Lepton Lab: CPU LocalCluster with 2 workers" in server.log()


@pytest.mark.parametrize(
    "mode,expected",
    [("nonsense", "neither one of auto, local, cuda"), ("cuda", "no NVIDIA driver found")],
)
def test_impossible_cluster_mode_is_reported_not_replaced(tmp_path, mode, expected):
    server = LabServer(tmp_path / "root", {"cluster_mode": mode}).start()
    try:
        status = server.wait_cluster(lambda s: s["status"] != "starting")
        assert status["status"] == "error"
        assert expected in status["error"]
        assert status["workers"] == []
        code, _ = server.request("GET", "api/status")
        assert code == 200
    finally:
        assert server.stop() == 0
    assert expected in server.log()


def test_a_port_taken_before_the_server_binds_it_is_replaced(tmp_path):
    """CI once lost a run to a port that another process took between free_port() and
    jupyter's bind; the test server picks another port instead of failing the test."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        server = LabServer(tmp_path / "root", {"cluster_mode": "nonsense"})
        server.port = taken.getsockname()[1]
        server.start()
        try:
            assert server.port != taken.getsockname()[1]
            low, _ = _ephemeral_range()
            assert server.port < low
            assert server.request("GET", "api/status")[0] == 200
        finally:
            assert server.stop() == 0
    finally:
        taken.close()
