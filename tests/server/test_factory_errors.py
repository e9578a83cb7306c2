"""A cluster_factory that cannot work (a module that does not import, a class it lacks,
arguments the class rejects, a malformed setting, a clash with cluster_mode) must not take
the server down: it answers, and the cluster status says in one line what is wrong and which
class it was, with no traceback in it."""

from __future__ import annotations

import pytest

from tests.server.test_jobs_api import call

CASES = {
    "module-does-not-import": (
        {"module": "no_such_dask_package", "class": "SLURMCluster"},
        None,
        "cluster_factory: cannot import 'no_such_dask_package'",
    ),
    "class-missing": (
        {"module": "dask_jobqueue", "class": "SlurmCluster"},
        None,
        "cluster_factory: dask_jobqueue has no class 'SlurmCluster'",
    ),
    "kwargs-rejected": (
        {
            "module": "distributed",
            "class": "LocalCluster",
            "kwargs": {"bogus": 1, "n_workers": 1, "dashboard_address": "127.0.0.1:0"},
        },
        None,
        "cluster_factory: distributed.LocalCluster failed to start: RuntimeError: Nanny failed "
        "to start. (caused by TypeError: Server.__init__() got an unexpected keyword argument "
        "'bogus')",
    ),
    "kwargs-not-a-dict": (
        {"module": "distributed", "class": "LocalCluster", "kwargs": ["bogus"]},
        None,
        "cluster_factory 'kwargs' must be a dict, got list",
    ),
    "clashes-with-cluster-mode": (
        {"module": "distributed", "class": "LocalCluster"},
        "local",
        "both cluster_mode 'local' and cluster_factory (distributed.LocalCluster) are set",
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request) -> tuple:
    return CASES[request.param]


@pytest.fixture
def lab_config(lab_config: dict, case: tuple) -> dict:
    factory, mode, _ = case
    config = {k: v for k, v in lab_config.items() if k != "cluster_mode"}
    config["cluster_factory"] = factory
    if mode is not None:
        config["cluster_mode"] = mode
    return config


async def test_a_bad_factory_is_one_status_line_and_the_server_keeps_serving(
    case, cluster_status, jp_fetch
):
    expected = case[2]
    status = await cluster_status(lambda s: s["status"] == "error", timeout=90)
    error = status["error"]
    assert error.startswith(expected), error
    assert "\n" not in error and "Traceback" not in error and len(error) < 400
    assert status["workers"] == [] and status["scheduler_address"] is None

    # the server still answers, its own API and Jupyter's
    response = await jp_fetch("api", "status")
    assert response.code == 200
    code, config = await call(jp_fetch, "GET", "config")
    assert code == 200, config
    # scaling a cluster that did not start is refused with a reason, not a 500
    code, refused = await call(jp_fetch, "PATCH", "cluster", body={"workers": 1})
    assert code == 409, (code, refused)
    assert "not running" in refused["message"]
