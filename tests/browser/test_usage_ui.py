"""The sidebar's Usage section (``labextension/src/usagesection.ts``): a real ``jupyter lab``
and headless Chromium.

1. on a lab without records the section says "No usage recorded this week";
2. the lab's usage ledger is seeded directly in its database (``Store.put_usage`` on the lab's
   SQLite file): runs and a job on four days of this week (the last 7 UTC days, today
   included), a stored model, and a run of 20 days ago that must not count;
3. after Refresh the section shows this week's totals exactly as the UI formats them (CPU and
   GPU hours, the stored bytes; no cost, the lab has no prices), a bar per day and series
   (7 days, 14 bars, the busiest day's CPU bar the tallest), and the top notebooks, the one
   that used the most first (its basename, the full path as tooltip);
4. the CSV link (under the lab's base URL) answers a CSV of the week by day whose ``total``
   line has the same figures, and a click downloads it.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    ARTIFACTS,
    LEPTON,
    BrowserLab,
    browser,
    page,
    shot,
    wait_for,
)
from tests.browser.test_models_ui import open_sidebar

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

HOUR = 3600.0
GiB = 1024**3
TRAIN = "projects/vision/train.ipynb"
EVAL = "eval.ipynb"
EXPLORE = "scratch/explore.ipynb"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own: its own store, so the ledger holds only what this module seeds."""
    base = tmp_path_factory.mktemp("usage-lab")
    state = base / "lepton"
    state.mkdir()
    lepton = dict(LEPTON, state_dir=str(state), n_workers=1)
    with BrowserLab(base / "root", base / "state", lepton=lepton).serving() as server:
        server.lepton_state = state  # type: ignore[attr-defined]
        yield server


def day_start(days_ago: int) -> datetime:
    """Midnight (UTC) ``days_ago`` days before today."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def seed(lab: BrowserLab) -> dict[str, Any]:
    """Usage records in the lab's database; returns the week's expected figures."""
    from lepton_lab.store import open_store

    store = open_store(f"sqlite:///{lab.lepton_state / 'lepton_lab.db'}")  # type: ignore[attr-defined]

    def at(days_ago: int, hour: float = 1.0) -> float:
        return (day_start(days_ago) + timedelta(hours=hour)).timestamp()

    def work(
        kind: str, subject: str, days_ago: int, notebook: str | None, cpu: float, gpu: float = 0
    ) -> None:
        store.put_usage(
            kind,
            subject,
            user="ada",
            notebook=notebook,
            tags=["usage-ui"],
            started_at=at(days_ago),
            ended_at=at(days_ago, 1.5),
            cpu_seconds=cpu * HOUR,
            gpu_seconds=gpu * HOUR,
            gpu_model="NVIDIA H100" if gpu else None,
            wall_seconds=0.5 * HOUR,
        )

    work("run", "run-today", 0, TRAIN, cpu=2.5, gpu=1.25)
    work("job", "job-2#1", 2, EVAL, cpu=1.0)
    work("run", "run-3", 3, EXPLORE, cpu=0.75)
    work("run", "run-6", 6, TRAIN, cpu=0.5, gpu=0.25)
    store.put_usage(
        "storage", "model:digits/v1", user="ada", started_at=at(1), bytes=int(1.5 * GiB)
    )
    # 20 days ago: outside the week, it must not count
    work("run", "run-old", 20, "old.ipynb", cpu=100.0, gpu=50.0)
    return {
        "records": 5,
        "cpu_hours": 4.75,
        "gpu_hours": 1.5,
        "storage_bytes": int(1.5 * GiB),
        "cpu_text": "4.75 h",
        "gpu_text": "1.50 h",
        "storage_text": "1.50 GiB",
        # per day, 6 days ago first: (cpu, gpu) hours
        "days": [(0.5, 0.25), (0, 0), (0, 0), (0.75, 0), (1.0, 0), (0, 0), (2.5, 1.25)],
        "top": [TRAIN, EVAL, EXPLORE],
    }


def usage_section(pg: Any) -> Any:
    from playwright.sync_api import expect

    sidebar = open_sidebar(pg)
    section = sidebar.locator("section.lepton-usage")
    expect(section).to_have_count(1)
    section.scroll_into_view_if_needed()
    return section


def test_usage_section_this_week(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    started = time.monotonic()
    week_from = day_start(6).strftime("%Y-%m-%d")
    week_to = day_start(0).strftime("%Y-%m-%d")

    # 1. nothing recorded yet
    section = usage_section(page)
    expect(section).to_have_attribute("data-lepton-to", week_to)
    expect(section).to_have_attribute("data-lepton-from", week_from)
    empty = section.locator(".lepton-no-usage")
    expect(empty).to_be_visible()
    expect(empty).to_have_text("No usage recorded this week")
    expect(section.locator(".lepton-usage-totals")).to_be_hidden()
    expect(section.locator(".lepton-usage-error")).to_be_hidden()

    # 2. the ledger, seeded; the server's report agrees with what we expect the UI to show
    want = seed(lab)
    code, body = lab.request(
        "GET", f"lepton-lab/api/usage?from={week_from}&to={week_to}&group_by=day"
    )
    assert code == 200, (code, body)
    total = body["total"]
    assert total["records"] == want["records"], total
    assert total["cpu_hours"] == pytest.approx(want["cpu_hours"]), total
    assert total["gpu_hours"] == pytest.approx(want["gpu_hours"]), total
    assert total["storage_bytes"] == want["storage_bytes"], total
    assert body["priced"] is False, body

    # 3. refresh: the week's totals, bars and top notebooks
    page.locator("#lepton-sidebar .lepton-refresh").click()
    expect(empty).to_be_hidden()
    expect(section.locator(".lepton-usage-totals")).to_be_visible()
    expect(section.locator(".lepton-usage-cpu")).to_have_text(want["cpu_text"])
    expect(section.locator(".lepton-usage-gpu")).to_have_text(want["gpu_text"])
    expect(section.locator(".lepton-usage-storage")).to_have_text(want["storage_text"])
    expect(section.locator(".lepton-usage-cost")).to_be_hidden()  # no prices

    days = section.locator("svg.lepton-usage-chart g.lepton-usage-day")
    expect(days).to_have_count(7)
    expect(section.locator("svg.lepton-usage-chart rect.lepton-usage-bar")).to_have_count(14)
    labels = [days.nth(i).get_attribute("data-lepton-day") for i in range(7)]
    assert labels == [day_start(6 - i).strftime("%Y-%m-%d") for i in range(7)], labels
    heights: dict[tuple[int, str], float] = {}
    for i, (cpu, gpu) in enumerate(want["days"]):
        for series, hours in (("cpu", cpu), ("gpu", gpu)):
            bar = days.nth(i).locator(f"rect[data-lepton-series='{series}']")
            assert float(bar.get_attribute("data-lepton-hours")) == pytest.approx(hours)
            heights[i, series] = float(bar.get_attribute("height"))
    assert max(heights.values()) == heights[6, "cpu"] > 0, heights  # today's CPU: the most
    assert heights[1, "cpu"] == heights[1, "gpu"] == 0, heights  # an empty day

    rows = section.locator("li.lepton-usage-notebook")
    expect(rows).to_have_count(len(want["top"]))
    assert [rows.nth(i).get_attribute("data-lepton-notebook") for i in range(3)] == want["top"]
    first = rows.first.locator(".lepton-usage-notebook-name")
    expect(first).to_have_text("train.ipynb")
    expect(first).to_have_attribute("title", TRAIN)
    expect(rows.first.locator(".lepton-usage-notebook-hours")).to_have_text(
        "CPU 3.00 h · GPU 1.50 h"
    )
    expect(section.locator("li[data-lepton-notebook='old.ipynb']")).to_have_count(0)
    rows.last.scroll_into_view_if_needed()
    shot(page, "usage-sidebar.png")
    section.screenshot(path=str(ARTIFACTS / "usage-section.png"))

    # 4. the CSV: the week by day under the lab's base URL, its total line as shown
    link = section.locator("a.lepton-usage-csv")
    href = link.get_attribute("href")
    assert href and href.startswith(f"{lab.url}lepton-lab/api/usage/csv?"), href
    assert f"from={week_from}" in href and f"to={week_to}" in href, href
    assert "group_by=day" in href, href
    answer = page.request.get(href)
    assert answer.status == 200, (answer.status, answer.text()[:500])
    assert answer.headers.get("content-type", "").startswith("text/csv"), answer.headers
    lines = list(csv.DictReader(io.StringIO(answer.text())))
    assert [line["day"] for line in lines[:-1]] == labels, lines
    last = lines[-1]
    assert last["day"] == "total", last
    assert int(last["records"]) == want["records"], last
    assert float(last["cpu_hours"]) == pytest.approx(want["cpu_hours"]), last
    assert float(last["gpu_hours"]) == pytest.approx(want["gpu_hours"]), last
    assert int(last["storage_bytes"]) == want["storage_bytes"], last
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename
    assert open(download.path(), encoding="utf-8").read() == answer.text()
    print(f"usage UI test body: {time.monotonic() - started:.1f} s")
