"""The lepton-cpu/lepton-gpu kernels: listed by the API, started for real by the server,
and attached to the server's own cluster."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import get_json

ATTACH_CODE = """
import os, lepton_lab as ll
client = ll.attach()
pids = client.run(os.getpid)
print("ADDRESS", client.scheduler.address)
print("WORKERS", sorted(pids))
print("DEVICE", os.environ.get("LEPTON_LAB_DEVICE"), ll.device(),
      repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
print("SUM", client.submit(sum, range(10)).result())
"""


async def run_in_kernel(jp_serverapp, kernel_name: str, code: str, timeout: float = 90) -> str:
    km = jp_serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name=kernel_name)
    kernel = km.get_kernel(kernel_id)
    client = kernel.client()
    client.start_channels()
    output: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            output.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            output.append("\n".join(msg["content"]["traceback"]))

    try:
        await client.wait_for_ready(timeout=timeout)
        reply = await asyncio.wait_for(
            client.execute_interactive(code, output_hook=hook, timeout=timeout), timeout
        )
        assert reply["content"]["status"] == "ok", "".join(output)
    finally:
        client.stop_channels()
        await km.shutdown_kernel(kernel_id, now=True)
    return "".join(output)


def field(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    raise AssertionError(f"{name} missing from kernel output:\n{output}")


async def test_kernels_route_tells_cpu_from_gpu_and_that_no_gpu_is_here(jp_fetch):
    body = await get_json(jp_fetch, "lepton-lab", "api", "kernels")
    by_name = {k["name"]: k for k in body["kernels"]}
    assert by_name["lepton-cpu"]["device"] == "cpu"
    assert by_name["lepton-gpu"]["device"] == "gpu"
    assert by_name["lepton-cpu"]["installed"] and by_name["lepton-gpu"]["installed"]
    assert body["gpu_available"] is False
    assert by_name["lepton-gpu"]["runs_on"] == "cpu"
    assert "NVML" in body["gpu_reason"] or "NVIDIA" in body["gpu_reason"]


async def test_gpu_kernel_on_a_cpu_machine_attaches_to_the_server_cluster(
    jp_serverapp, cluster_status
):
    status = await cluster_status()
    output = await run_in_kernel(jp_serverapp, "lepton-gpu", ATTACH_CODE)
    assert "no GPU on this machine" in output and "runs on CPU" in output
    assert output.count("no GPU on this machine") == 1
    assert field(output, "ADDRESS") == status["scheduler_address"]
    workers = json.loads(field(output, "WORKERS").replace("'", '"'))
    assert workers == sorted(w["address"] for w in status["workers"])
    assert field(output, "DEVICE") == "gpu cpu None"
    assert field(output, "SUM") == "45"


async def test_cpu_kernel_hides_gpus_and_attaches(jp_serverapp, cluster_status):
    status = await cluster_status()
    output = await run_in_kernel(jp_serverapp, "lepton-cpu", ATTACH_CODE)
    assert "no GPU" not in output
    assert field(output, "ADDRESS") == status["scheduler_address"]
    assert field(output, "DEVICE") == "cpu cpu ''"


FIT_CODE = """
import lepton_lab as ll
from tests.training.loops import digits_torch
run = ll.fit(digits_torch, framework="torch", workers=2, config={"epochs": 2}, wait=True)
print("RUN", run.id, run.status)
"""


async def test_a_run_started_in_a_kernel_is_served_by_the_server(
    jp_serverapp, jp_fetch, cluster_status
):
    from pathlib import Path

    await cluster_status()
    repo = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {repo!r})\n" + FIT_CODE
    output = await run_in_kernel(jp_serverapp, "lepton-cpu", code, timeout=180)
    run_id, status = field(output, "RUN").split()
    assert status == "completed", output
    listing = await get_json(jp_fetch, "lepton-lab", "api", "runs")
    assert run_id in [r["id"] for r in listing["runs"]]
    metrics = await get_json(jp_fetch, "lepton-lab", "api", "runs", run_id, "metrics")
    assert len(metrics["metrics"]) == 2 * 2 * 2
