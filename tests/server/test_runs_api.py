"""GET/POST /lepton-lab/api/runs... against runs really trained on the server's cluster."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError

import lepton_lab as ll
from tests.conftest import get_json
from tests.training.loops import digits_torch, report_forever


async def start_run(lab_app, fn, **kwargs):
    return ll.fit(
        fn, framework="torch", client=lab_app.cluster_manager.client, store=lab_app.store, **kwargs
    )


async def test_runs_routes_list_show_and_page_metrics_with_since(jp_fetch, lab_app, cluster_status):
    await cluster_status()
    run = await start_run(lab_app, digits_torch, workers=2, config={"epochs": 3})
    assert await asyncio.to_thread(run.wait, 180) == "completed"

    listing = await get_json(jp_fetch, "lepton-lab", "api", "runs")
    assert [r["id"] for r in listing["runs"]] == [run.id]
    done = await get_json(jp_fetch, "lepton-lab", "api", "runs", params={"status": "completed"})
    assert len(done["runs"]) == 1
    record = await get_json(jp_fetch, "lepton-lab", "api", "runs", run.id)
    assert record["status"] == "completed" and record["world_size"] == 2
    assert {e["kind"] for e in record["events"]} >= {"start", "checkpoint", "completed"}

    def page(**params):
        return get_json(jp_fetch, "lepton-lab", "api", "runs", run.id, "metrics", params=params)

    first = await page(limit="5")
    assert len(first["metrics"]) == 5
    rest = await page(since=str(first["next"]))
    assert len(first["metrics"]) + len(rest["metrics"]) == 3 * 2 * 2
    assert min(m["id"] for m in rest["metrics"]) > first["next"]
    empty = await page(since=str(rest["next"]))
    assert empty["metrics"] == [] and empty["next"] == rest["next"]


async def test_stop_route_stops_a_running_run(jp_fetch, lab_app, cluster_status):
    await cluster_status()
    run = await start_run(lab_app, report_forever, workers=2)
    deadline = time.monotonic() + 60
    while not run.metrics() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    response = await jp_fetch("lepton-lab", "api", "runs", run.id, "stop", method="POST", body="")
    assert response.code == 202
    assert await asyncio.to_thread(run.wait, 30) == "stopped"
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("lepton-lab", "api", "runs", run.id, "stop", method="POST", body="")
    assert info.value.code == 409


@pytest.mark.parametrize(
    "parts,params,code,message",
    [
        (("runs", "doesnotexist"), {}, 404, "no run with id"),
        (("runs", "doesnotexist", "metrics"), {}, 404, "no run with id"),
        (("runs",), {"status": "dancing"}, 400, "'status' must be one of"),
        (("runs",), {"limit": "many"}, 400, "'limit' must be an integer"),
        (("runs",), {"limit": "0"}, 400, "between 1 and 1000"),
    ],
)
async def test_bad_run_queries_are_4xx_json(jp_fetch, parts, params, code, message):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("lepton-lab", "api", *parts, params=params)
    assert info.value.code == code
    assert message in json.loads(info.value.response.body)["message"]


async def test_bad_since_is_a_400(jp_fetch, lab_app):
    lab_app.store.create_run("abc", framework="torch", params={}, world_size=1)
    for since in ("-1", "x"):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("lepton-lab", "api", "runs", "abc", "metrics", params={"since": since})
        assert info.value.code == 400


async def test_a_run_started_by_a_job_is_served_like_any_run(
    jp_fetch, jp_root_dir, lab_app, cluster_status
):
    """The UI's Runs section and run panel read only these routes, so a run that a notebook
    job started (its kernel attached to the lab's cluster) shows there like a notebook's."""
    from pathlib import Path

    from tests.jobs.conftest import write_notebook

    await cluster_status()
    write_notebook(
        Path(jp_root_dir, "train.ipynb"),
        "import lepton_lab as ll\n\n"
        "def loop(config):\n"
        "    ctx = ll.context()\n"
        "    for step in range(3):\n"
        "        ctx.report(step=step, loss=1.0 / (step + 1))\n\n"
        "run = ll.fit(loop, framework='torch', workers=2, name='started by a job')\n"
        "assert run.wait(120) == 'completed', run.error",
    )
    body = json.dumps({"path": "train.ipynb", "kernel": "lepton-cpu"})
    response = await jp_fetch("lepton-lab", "api", "jobs", method="POST", body=body)
    job = json.loads(response.body)
    deadline = time.monotonic() + 240
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        job = await get_json(jp_fetch, "lepton-lab", "api", "jobs", job["id"])
    assert job["status"] == "completed", job["error"]

    listing = await get_json(jp_fetch, "lepton-lab", "api", "runs")
    (run,) = [r for r in listing["runs"] if r["name"] == "started by a job"]
    assert run["status"] == "completed" and run["world_size"] == 2
    assert run["step"] == 2 and run["last_metrics"] == {"loss": pytest.approx(1 / 3)}
    page = await get_json(jp_fetch, "lepton-lab", "api", "runs", run["id"], "metrics")
    assert len(page["metrics"]) == 3 * 2
