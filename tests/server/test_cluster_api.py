"""GET/PATCH /lepton-lab/api/cluster against a real LocalCluster started by the server."""

from __future__ import annotations

import json
import re

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import get_json


async def test_status_reports_the_local_cluster_and_its_workers(cluster_status):
    status = await cluster_status()
    assert status["mode"] == "local"
    assert status["owned"] is True
    assert "CPU LocalCluster" in status["reason"]
    assert status["scheduler_address"].startswith("tls://127.0.0.1:")  # docs/guide/security.md
    # through the test server's own URL (jupyter-server-proxy), not 127.0.0.1
    assert re.fullmatch(r"/a%40b/proxy/\d+/status", status["dashboard_link"]), status
    assert status["totals"]["workers"] == 2
    assert status["totals"]["threads"] == 2
    for worker in status["workers"]:
        assert worker["address"].startswith("tls://127.0.0.1:")
        assert worker["nthreads"] == 1
        assert worker["memory_limit"] == 1024**3
        assert worker["memory_used"] > 0
        assert worker["gpu"] is None


async def test_kernels_get_the_scheduler_address_in_their_environment(cluster_status):
    import os

    status = await cluster_status()
    assert os.environ["LEPTON_LAB_SCHEDULER_ADDRESS"] == status["scheduler_address"]
    cluster_file = os.environ["LEPTON_LAB_CLUSTER_FILE"]
    with open(cluster_file) as f:
        state = json.load(f)
    assert state["status"] == "running"
    assert state["scheduler_address"] == status["scheduler_address"]


async def test_scale_up_then_down(jp_fetch, cluster_status):
    await cluster_status()
    response = await jp_fetch(
        "lepton-lab", "api", "cluster", method="PATCH", body=json.dumps({"workers": 3})
    )
    assert json.loads(response.body)["totals"]["workers"] == 3
    assert (await cluster_status())["totals"]["workers"] == 3

    response = await jp_fetch(
        "lepton-lab", "api", "cluster", method="PATCH", body=json.dumps({"workers": 1})
    )
    assert json.loads(response.body)["totals"]["workers"] == 1
    status = await cluster_status(lambda s: s["totals"]["workers"] == 1)
    assert len(status["workers"]) == 1


BAD_BODIES = [
    ("not json", "not valid JSON"),
    ("", "empty"),
    ("[3]", "must be a JSON object"),
    ('{"workers": -1}', "between 0 and 4"),
    ('{"workers": 100000}', "between 0 and 4"),
    ('{"workers": "3"}', "must be an integer"),
    ('{"workers": 2.5}', "must be an integer"),
    ('{"workers": true}', "must be an integer"),
    ('{"workers": null}', "must be an integer"),
    ('{"nodes": 3}', "unknown field"),
    ("{}", "send either 'workers'"),
]


@pytest.mark.parametrize("body,expected", BAD_BODIES)
async def test_bad_scale_body_is_a_400_and_changes_nothing(
    jp_fetch, cluster_status, body, expected
):
    before = await cluster_status()
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "lepton-lab",
            "api",
            "cluster",
            method="PATCH",
            body=body,
            allow_nonstandard_methods=True,
        )
    assert info.value.code == 400
    error = json.loads(info.value.response.body)
    assert expected in error["message"]
    after = await get_json(jp_fetch, "lepton-lab", "api", "cluster")
    assert [w["address"] for w in after["workers"]] == [w["address"] for w in before["workers"]]
