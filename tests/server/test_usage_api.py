"""``GET /lepton-lab/api/usage`` and ``/usage/csv`` through a real in-process Jupyter server
with prices configured (``c.LeptonLab.prices``), over records seeded into its store: the
groups, the total, the CSV and the costs all add up to the rows; bad input is a 400 that
changes nothing."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import get_json

API = ("lepton-lab", "api")
PRICES = {"cpu_hour": 0.5, "gpu_hour": {"H100": 3.0, "default": 1.0}, "gb_month": 0.1}
H = 3600.0


@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    return {**lab_config, "n_workers": 0, "run_jobs": False, "prices": PRICES}


def at(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


@pytest.fixture
def seeded(lab_app) -> object:
    store = lab_app.store
    put = store.put_usage
    put(
        "run",
        "r1",
        user="ann",
        notebook="/w/a.ipynb",
        tags=["exp"],
        started_at=at("2026-11-02"),
        cpu_seconds=2 * H,
        gpu_seconds=1 * H,
        gpu_model="NVIDIA H100 80GB HBM3",
        wall_seconds=H,
        peak_memory=100,
    )
    put(
        "run",
        "r2",
        user="bob",
        notebook="/w/b.ipynb",
        tags=["exp", "nightly"],
        started_at=at("2026-11-03"),
        cpu_seconds=4 * H,
        gpu_seconds=2 * H,
        gpu_model="Tesla T4",
        peak_memory=300,
    )
    put(
        "job",
        "j1#1",
        user="ann",
        notebook="/w/a.ipynb",
        tags=["nightly", "schedule:s1"],
        started_at=at("2026-11-03", 1),
        cpu_seconds=1 * H,
        wall_seconds=2 * H,
        peak_memory=200,
    )
    put(
        "deployment",
        "d1",
        user="bob",
        tags=["model:m"],
        started_at=at("2026-11-02"),
        ended_at=at("2026-11-02", 18),
        requests=42,
    )
    # 1 GB stored for the whole of November 2..4 (3 days), another 2 GB deleted on the 3rd
    put(
        "storage",
        "job:j1",
        user="ann",
        notebook="/w/a.ipynb",
        started_at=at("2026-10-01"),
        bytes=10**9,
    )
    put(
        "storage",
        "run:r9",
        user="bob",
        started_at=at("2026-10-01"),
        bytes=2 * 10**9,
        deleted_at=at("2026-11-03", 0),
    )
    store.add_usage_record(
        "transfer", "model:m/v1/onnx", user="bob", started_at=at("2026-11-04"), bytes=5000
    )
    # outside the window: counted nowhere
    put("run", "old", user="ann", started_at=at("2026-10-20"), cpu_seconds=100 * H)
    return store


async def usage(jp_fetch, **params) -> dict:
    return await get_json(jp_fetch, *API, "usage", params=params)


WINDOW = {"from": "2026-11-02", "to": "2026-11-04"}


async def test_groups_total_csv_and_costs_add_up_to_the_rows(jp_fetch, seeded):
    by_day = await usage(jp_fetch, **WINDOW, group_by="day")
    assert by_day["priced"] is True
    assert [g["key"] for g in by_day["groups"]] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    total = by_day["total"]
    assert total["cpu_hours"] == pytest.approx(7.0)
    assert total["gpu_hours"] == pytest.approx(3.0)
    assert total["gpu_hours_by_model"] == pytest.approx(
        {"NVIDIA H100 80GB HBM3": 1.0, "Tesla T4": 2.0}
    )
    assert total["uptime_hours"] == pytest.approx(6.0) and total["requests"] == 42
    assert total["moved_bytes"] == 5000
    assert total["peak_memory"] == 300
    # stored at the window's end: only the 1 GB; byte-months: 1 GB x 3 days + 2 GB x 1 day
    assert total["storage_bytes"] == 10**9
    assert total["storage_gb_months"] == pytest.approx((1 * 3 + 2 * 1) / 30)
    cost = 7 * 0.5 + 1 * 3.0 + 2 * 1.0 + (5 / 30) * 0.1
    assert total["cost"] == pytest.approx(cost)
    day2, day3, day4 = by_day["groups"]
    assert (day2["cpu_hours"], day3["cpu_hours"], day4["cpu_hours"]) == pytest.approx((2, 5, 0))
    assert day4["moved_bytes"] == 5000 and day2["requests"] == 42
    assert sum(g["cost"] for g in by_day["groups"]) == pytest.approx(cost)

    by_user = await usage(jp_fetch, **WINDOW, group_by="user")
    users = {g["key"]: g for g in by_user["groups"]}
    assert set(users) == {"ann", "bob"}
    assert users["ann"]["cpu_hours"] == pytest.approx(3) and users["bob"]["cpu_hours"] == 4
    assert sum(g["cost"] for g in by_user["groups"]) == pytest.approx(cost)
    # ann: 1.5 CPU + 3.0 H100 + 0.01 storage; bob: 2.0 CPU + 2.0 T4 + 0.007 storage
    assert [g["key"] for g in by_user["groups"]] == ["ann", "bob"]  # most expensive first

    by_tag = await usage(jp_fetch, **WINDOW, group_by="tag")
    tags = {g["key"]: g for g in by_tag["groups"]}
    assert tags["exp"]["cpu_hours"] == pytest.approx(6)  # r1 + r2
    assert tags["nightly"]["cpu_hours"] == pytest.approx(5)  # r2 + j1: a row counts per tag
    assert tags["schedule:s1"]["records"] == 1
    assert tags["(untagged)"]["storage_bytes"] == 10**9

    by_notebook = await usage(jp_fetch, **WINDOW, group_by="notebook")
    notebooks = {g["key"]: g for g in by_notebook["groups"]}
    assert notebooks["/w/a.ipynb"]["cpu_hours"] == pytest.approx(3)
    by_kind = await usage(jp_fetch, **WINDOW, group_by="kind")
    kinds = {g["key"]: g["records"] for g in by_kind["groups"]}
    assert kinds == {"run": 2, "job": 1, "deployment": 1, "storage": 2, "transfer": 1}

    response = await jp_fetch(*API, "usage", "csv", params={**WINDOW, "group_by": "user"})
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert [r["user"] for r in rows] == ["ann", "bob", "total"]
    assert float(rows[-1]["cpu_hours"]) == pytest.approx(7.0)
    assert float(rows[-1]["cost"]) == pytest.approx(cost, rel=1e-5)
    assert sum(float(r["cost"]) for r in rows[:-1]) == pytest.approx(cost, rel=1e-5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "'from' must be a date (2026-11-01) or an ISO time"),
        ({"to": "2026-13-01"}, "'to' must be a date (2026-11-01) or an ISO time"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "'from' (2026-11-05) is after 'to'"),
        ({"group_by": "team"}, "'group_by' must be one of day, user, notebook, tag, kind"),
    ],
)
async def test_bad_input_is_a_400_that_changes_nothing(jp_fetch, seeded, params, message):
    before = seeded.count_usage()
    for route in (("usage",), ("usage", "csv")):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch(*API, *route, params=params)
        assert info.value.code == 400
        body = json.loads(info.value.response.body)
        assert body["message"].startswith(message), body
    assert seeded.count_usage() == before
