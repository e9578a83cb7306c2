"""The REST handlers against the service facades, with no Dask cluster at all.

``c.LeptonLab.cluster_manager_class`` names a manager that never starts one (the extension
point a dask-gateway or dask-kubernetes manager would use), so these tests exercise parsing,
the facades, the store (a real SQLite file) and serialization in about a second each. The
end-to-end suites (test_jobs_api, test_runs_api, test_fuzz_api) run the same routes with a
real cluster.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.jobs.plugins import executor_classes
from tests.jobs.conftest import write_notebook

PLUGIN = Path(__file__).parents[1] / "fixtures" / "executor_plugin"


class IdleClusterManager(ClusterManager):
    """Reports a stopped cluster and never starts one."""

    def start_in_background(self, on_done: Any = None) -> Any:
        return None

    def close(self, timeout: float = 30) -> None:
        return None


@pytest.fixture
def lab_config(tmp_path) -> dict:
    return {
        "cluster_manager_class": f"{__name__}.IdleClusterManager",
        "run_jobs": False,
        "state_dir": str(tmp_path / "state"),
    }


async def call(jp_fetch, method: str, *parts: str, body: Any = None, **kw) -> tuple[int, Any]:
    try:
        response = await jp_fetch(
            "lepton-lab",
            "api",
            *parts,
            method=method,
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            **kw,
        )
    except HTTPClientError as exc:
        return exc.code, json.loads(exc.response.body)
    return response.code, json.loads(response.body) if response.body else None


async def test_cluster_routes_without_a_cluster(jp_fetch, lab_app):
    assert isinstance(lab_app.cluster_manager, IdleClusterManager)
    code, status = await call(jp_fetch, "GET", "cluster")
    assert code == 200 and status["status"] == "stopped" and status["workers"] == []
    code, error = await call(jp_fetch, "PATCH", "cluster", body={"workers": 1})
    assert code == 409 and "not running" in error["message"]
    code, error = await call(jp_fetch, "PATCH", "cluster", body={"workers": "1"})
    assert code == 400 and error["message"] == "'workers' must be an integer, got string"
    code, error = await call(jp_fetch, "PATCH", "cluster", body={"workers": 99})
    assert code == 400 and error["message"] == "'workers' must be between 0 and 32, got 99"


async def test_runs_routes_read_the_store(jp_fetch, lab_app):
    store = lab_app.store
    store.create_run("r1", name="one", framework="torch", status="running", world_size=2)
    store.add_metrics(
        "r1",
        [
            {"rank": 0, "step": s, "name": "loss", "value": 1.0 / (s + 1), "time": time.time()}
            for s in range(5)
        ],
    )
    code, listing = await call(jp_fetch, "GET", "runs")
    assert code == 200
    (run,) = listing["runs"]
    assert run["id"] == "r1" and run["step"] == 4 and run["last_metrics"] == {"loss": 0.2}
    code, page = await call(jp_fetch, "GET", "runs", "r1", "metrics", params={"since": 0})
    assert code == 200 and [m["step"] for m in page["metrics"]] == [0, 1, 2, 3, 4]
    code, empty = await call(
        jp_fetch, "GET", "runs", "r1", "metrics", params={"since": page["next"]}
    )
    assert empty["metrics"] == [] and empty["next"] == page["next"]
    code, error = await call(jp_fetch, "POST", "runs", "r1", "stop")
    assert code == 409 and "cluster is not running" in error["message"]
    code, error = await call(jp_fetch, "GET", "runs", "nope")
    assert code == 404 and error["message"] == "no run with id 'nope'"
    code, error = await call(jp_fetch, "GET", "runs", params={"status": "dancing"})
    assert code == 400 and error["message"].startswith("'status' must be one of queued, running")


async def test_jobs_and_schedules_routes_through_the_facades(jp_fetch, jp_root_dir, lab_app):
    write_notebook(Path(jp_root_dir, "nb.ipynb"), "x = 1")
    code, job = await call(jp_fetch, "POST", "jobs", body={"path": "nb.ipynb", "kernel": "python3"})
    assert code == 201 and job["status"] == "queued" and job["path"] == "nb.ipynb"
    assert job["executor"] == "local" and job["outputs"] == []
    code, listing = await call(jp_fetch, "GET", "jobs", params={"limit": "50"})
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    code, logs = await call(jp_fetch, "GET", "jobs", job["id"], "logs")
    assert code == 200 and logs["text"] == "" and not logs["complete"]
    code, error = await call(jp_fetch, "DELETE", "jobs", job["id"])
    assert code == 409 and "stop it before deleting" in error["message"]
    code, stopped = await call(jp_fetch, "POST", "jobs", job["id"], "stop")
    assert code == 202 and stopped == {"id": job["id"], "status": "stopped", "stop_requested": True}
    folder = Path(job["output_dir"])
    assert folder.is_dir()
    code, _ = await call(jp_fetch, "DELETE", "jobs", job["id"])
    assert code == 204 and not folder.exists()

    body = {"path": "nb.ipynb", "kernel": "python3", "cron": "0 3 * * *"}
    code, sched = await call(jp_fetch, "POST", "schedules", body=body)
    assert code == 201 and len(sched["upcoming"]) == 3
    code, paused = await call(jp_fetch, "PATCH", "schedules", sched["id"], body={"active": False})
    assert code == 200 and paused["next_fire_at"] is None and paused["upcoming"] == []
    code, ran = await call(jp_fetch, "POST", "schedules", sched["id"], "run")
    assert code == 201 and ran["schedule_id"] == sched["id"]
    code, record = await call(jp_fetch, "GET", "schedules", sched["id"])
    assert record["last_job_id"] == ran["id"]


@pytest.fixture
def plugin_installed(monkeypatch):
    """The test executor package on the path, as if pip had installed it."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    importlib.invalidate_caches()
    executor_classes.cache_clear()
    yield
    executor_classes.cache_clear()
    sys.modules.pop("lepton_test_executor", None)


@pytest.mark.parametrize(
    "lab_config",
    [{"cluster_manager_class": f"{__name__}.IdleClusterManager", "job_concurrency": 1}],
)
async def test_an_executor_plugin_shows_in_config_and_runs_a_job(
    plugin_installed, jp_fetch, jp_root_dir, lab_app
):
    code, config = await call(jp_fetch, "GET", "config")
    assert code == 200 and config["default_executor"] == "local"
    names = [e["name"] for e in config["executors"]]
    assert names[0] == "local" and {"dask", "marker"} <= set(names)
    marker = next(e for e in config["executors"] if e["name"] == "marker")
    assert "test plug-in" in marker["description"]
    code, document = await call(jp_fetch, "GET", "openapi.json")
    executor = document["components"]["schemas"]["JobRequest"]["properties"]["executor"]
    assert "marker" in executor["enum"]

    write_notebook(Path(jp_root_dir, "nb.ipynb"), "print('through the plug-in')")
    body = {"path": "nb.ipynb", "kernel": "python3", "executor": "marker"}
    code, job = await call(jp_fetch, "POST", "jobs", body=body)
    assert code == 201, job
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        code, job = await call(jp_fetch, "GET", "jobs", job["id"])
    assert job["status"] == "completed", job["error"]
    assert Path(job["output_dir"], "executed-by-marker").read_text() == job["id"]
    code, error = await call(jp_fetch, "POST", "jobs", body={**body, "executor": "cloud"})
    assert code == 400 and "'executor' must be one of local, " in error["message"]


@pytest.fixture
def jp_server_config(request, lab_config):
    """Cluster settings given the old way, c.LeptonLab.n_workers (and so on), for the test
    that asks for it; the split config of tests/conftest.py otherwise."""
    from tests.support.settings import config_sections

    if request.node.get_closest_marker("legacy_config"):
        return {"ServerApp": {"jpserver_extensions": {"lepton_lab": True}}, "LeptonLab": lab_config}
    return {
        "ServerApp": {"jpserver_extensions": {"lepton_lab": True}},
        **config_sections(lab_config),
    }


@pytest.mark.legacy_config
@pytest.mark.parametrize(
    "lab_config",
    [
        {
            "cluster_manager_class": f"{__name__}.IdleClusterManager",
            "run_jobs": False,
            "cluster_mode": "tcp://127.0.0.1:1",
            "n_workers": 3,
            "max_workers": 7,
        }
    ],
)
async def test_cluster_settings_given_the_old_way_still_apply(jp_fetch, lab_app):
    manager = lab_app.cluster_manager
    assert (manager.mode, manager.n_workers, manager.max_workers) == ("tcp://127.0.0.1:1", 3, 7)
    code, status = await call(jp_fetch, "GET", "cluster")
    assert status["requested_mode"] == "tcp://127.0.0.1:1" and status["max_workers"] == 7
    assert set(lab_app.deprecated_settings) == {
        ("cluster_mode", "mode"),
        ("n_workers", "n_workers"),
        ("max_workers", "max_workers"),
    }
