"""The lab's cluster made by a factory (``c.LeptonLab.cluster_factory``), on two real cluster
managers that run on this machine: dask-jobqueue's ``LocalCluster`` (each job is a local
``dask worker`` process) and a dask-gateway cluster from a real ``dask-gateway-server``. Each is
owned by a real ``jupyter lab``: kernels attach, ``ll.fit`` runs on 2 of its workers, PATCH
scales it, and stopping the server closes it."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from tests.support.gateway import GatewayServer
from tests.support.labserver import LabServer, execute

CLUSTER = "lepton-lab/api/cluster"

#: run in a kernel the server started: attach, a 2-rank torch DDP fit, one JSON line back.
#: The loop is defined in the kernel (it cannot import tests/); DDP keeps the ranks' weights
#: equal, so equal weights show that the ranks really trained together.
FIT_IN_KERNEL = """
import json
import lepton_lab as ll

def loop(config):
    import torch
    from distributed import get_worker
    import lepton_lab as ll

    ctx = ll.context()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.randn(256, 8)
    y = x @ torch.arange(8.0)
    x, y = x[ctx.rank :: ctx.world_size], y[ctx.rank :: ctx.world_size]
    net = torch.nn.Linear(8, 1)
    model = ctx.prepare(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(config["steps"]):
        opt.zero_grad()
        loss = ((model(x).squeeze(1) - y) ** 2).mean()
        loss.backward()
        opt.step()
        ctx.report(step=step, loss=float(loss))
    return {
        "rank": ctx.rank,
        "worker": get_worker().address,
        "loss": float(loss),
        "weights": [round(float(v), 5) for v in net.weight.detach().ravel()],
    }

client = ll.attach()
run = ll.fit(loop, framework="torch", workers=2, config={"steps": 30})
run.wait(300)
print("RESULT " + json.dumps({
    "address": client.scheduler.address,
    "status": run.status,
    "error": run.error,
    "result": run.result,
}))
"""


def patch_workers(server: LabServer, n: int) -> dict:
    """PATCH /cluster {"workers": n}: it answers once the scheduler sees n workers."""
    code, status = server.request("PATCH", CLUSTER, {"workers": n}, timeout=240)
    assert code == 200, (code, status, server.log())
    return status


def fit_in_kernel(server: LabServer) -> dict:
    kernel = server.start_kernel("lepton-cpu")
    try:
        out = execute(kernel, FIT_IN_KERNEL, timeout=360)
    finally:
        kernel.stop_channels()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, out
    return json.loads(lines[-1][len("RESULT ") :])


def exercise(server: LabServer, cluster_class: str) -> dict:
    """What every factory cluster must do under the lab; returns the 2-worker status."""
    status = server.wait_cluster(lambda s: s["status"] in ("running", "error"), timeout=240)
    assert status["status"] == "running", status
    assert status["mode"] == "factory"
    assert status["owned"] is True
    assert status["cluster_class"] == cluster_class
    assert status["error"] is None, status["error"]
    assert status["dashboard_link"] and status["dashboard_link"].endswith("/status"), status

    two = patch_workers(server, 2)
    assert two["totals"]["workers"] == 2
    addresses = {w["address"] for w in two["workers"]}

    fit = fit_in_kernel(server)
    assert fit["address"] == two["scheduler_address"]
    assert fit["status"] == "completed", fit["error"]
    ranks = sorted(fit["result"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    # one rank on each of the lab's two workers, trained as one model
    assert {r["worker"] for r in ranks} == addresses
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["loss"] < 5.0, ranks

    one = patch_workers(server, 1)
    assert one["totals"]["workers"] == 1
    return two


def test_jobqueue_local_cluster_owned_by_the_lab(tmp_path):
    """dask-jobqueue submits each worker as a "job"; its LocalCluster's jobs are local
    processes, so the whole path (job script, scale, cancel) runs for real here."""
    factory = {
        "module": "dask_jobqueue.local",
        "class": "LocalCluster",
        "kwargs": {
            "cores": 1,
            "processes": 1,
            "memory": "1GiB",
            "n_workers": 1,
            "interface": "lo",
            "scheduler_options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        },
    }
    server = LabServer(
        tmp_path / "root",
        {"cluster_factory": factory, "scale_timeout": 180, "state_dir": str(tmp_path / "state")},
    ).start()
    try:
        two = exercise(server, "dask_jobqueue.local.LocalCluster")
        assert two["scheduler_address"].startswith("tcp://127.0.0.1:")
        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert any(_is_worker(p) for p in children), "no dask worker job under the server"
    finally:
        code = server.stop()
    assert code == 0, server.log()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"jobqueue workers left after the server stopped: {alive}"
    address = two["scheduler_address"]
    strays = [p for p in psutil.process_iter(["cmdline"]) if address in (p.info["cmdline"] or [])]
    assert not strays, strays
    assert "closing the cluster:" not in server.log()


@pytest.fixture
def gateway(tmp_path):
    server = GatewayServer(tmp_path / "gateway").start()
    yield server
    server.stop()


def test_dask_gateway_cluster_owned_by_the_lab(tmp_path, gateway):
    """A dask-gateway cluster is reached through the gateway's TLS proxy (gateway://) with
    per-cluster credentials that exist only in the server's memory: kernels must get them."""
    factory = {
        "module": "dask_gateway",
        "class": "GatewayCluster",
        "kwargs": {"address": gateway.address, "auth": "basic"},
    }
    server = LabServer(
        tmp_path / "root",
        {"cluster_factory": factory, "scale_timeout": 180, "state_dir": str(tmp_path / "state")},
    ).start()
    try:
        two = exercise(server, "dask_gateway.GatewayCluster")
        assert two["scheduler_address"].startswith(f"gateway://127.0.0.1:{gateway.proxy_port}/")
        name = two["scheduler_address"].rsplit("/", 1)[1]
        assert name in two["dashboard_link"]
        assert list(gateway.clusters("running")) == [name]

        # elastic: the gateway's own adaptivity (task load) gets its minimum raised by the lab
        # while a run waits for workers, and lowered again after it
        code, adaptive = server.request("PATCH", CLUSTER, {"adapt": {"minimum": 0, "maximum": 2}})
        assert code == 200 and adaptive["adapt"]["maximum"] == 2, adaptive
        server.wait_cluster(lambda s: s["totals"]["workers"] == 0, timeout=120)
        fit = fit_in_kernel(server)
        assert fit["status"] == "completed", fit["error"]
        assert len({r["worker"] for r in fit["result"]}) == 2
        server.wait_cluster(lambda s: s["totals"]["workers"] == 0, timeout=120)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    # the lab closed it (not the gateway's idle timeout, which is off here)
    deadline = time.monotonic() + 30
    while gateway.clusters() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert gateway.clusters() == {}, gateway.log()
    assert gateway.clusters("stopped").keys() == {name}
    assert "closing the cluster:" not in server.log()


def _is_worker(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return "distributed.cli.dask_worker" in cmdline
