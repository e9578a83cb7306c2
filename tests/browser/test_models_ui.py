"""The model registry in the lab's UI (``labextension/src/modelsection.ts``, ``modelview.ts``):
a real ``jupyter lab`` and headless Chromium.

The registry is seeded the way a notebook fills it: a Python process on the lab's state dir
(the same store and artifact directory as the server) registers a small torch MLP twice as
``digits-mlp`` (safetensors and ONNX, each reloaded and compared with the original) and points
``production`` at v2. Then, in the browser:

1. the sidebar's Models section lists ``digits-mlp`` with v2 as its newest version, the
   ``production → v2`` alias, the framework and the accuracy;
2. opening it shows the version view: the formats table with each digest and max_abs_diff
   against its tolerance, the same as ``GET models/digits-mlp`` says;
3. a Download link answers 200 with the artifact's bytes (its recorded size), and a click
   downloads the file;
4. editing v1's aliases to ``production`` moves the alias there (``GET models/digits-mlp``),
   and the sidebar follows; moved back the same way;
5. Delete version (after the confirmation dialog) removes v1 from the view and from REST.

Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_lab_ui import (  # noqa: F401 - fixtures used by name
    LEPTON,
    BrowserLab,
    browser,
    page,
    shot,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

MODEL = "digits-mlp"
SEED = textwrap.dedent(
    f"""\
    import torch
    import lepton_lab as ll

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    ).eval()
    x = torch.randn(8, 64)
    for accuracy in (0.9, 0.91):
        v = ll.models.register(
            net, {MODEL!r}, formats=["safetensors", "onnx"], example_input=x,
            metrics={{"accuracy": accuracy}},
        )
        print("registered", v.version, v.formats, v.failed_formats)
    ll.models.set_alias({MODEL!r}, 2, "production")
    """
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    """A lab of its own (its own store and artifacts), with the registry seeded by a Python
    process on the same state dir."""
    base = tmp_path_factory.mktemp("models-lab")
    state = base / "lepton"
    state.mkdir()
    lepton = dict(LEPTON, state_dir=str(state), n_workers=1)
    with BrowserLab(base / "root", base / "state", lepton=lepton).serving() as server:
        seed(state, base)
        yield server


def seed(state: Path, cwd: Path, script: str = SEED) -> None:
    """Run ``script`` (registering models) in a Python process on the lab's state dir."""
    env = dict(os.environ, LEPTON_LAB_STATE_DIR=str(state))
    for name in (
        "LEPTON_LAB_DATABASE_URL",
        "LEPTON_LAB_ARTIFACT_DIR",
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
    ):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr


def open_sidebar(pg: Any) -> Any:
    from playwright.sync_api import expect

    sidebar = pg.locator("#lepton-sidebar")
    if not sidebar.is_visible():  # a click on the tab of an open panel would close it
        pg.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    expect(sidebar).to_be_visible()
    return sidebar


def get_model(lab: BrowserLab) -> dict:
    code, body = lab.request("GET", f"lepton-lab/api/models/{MODEL}")
    assert code == 200, (code, body)
    return body


def aliases(lab: BrowserLab) -> dict:
    return get_model(lab)["aliases"]


def version_of(model: dict, number: int) -> dict:
    return next(v for v in model["versions"] if v["version"] == number)


def edit_aliases(panel: Any, text: str) -> None:
    from playwright.sync_api import expect

    panel.locator("button.lepton-model-edit").click()
    form = panel.locator("form.lepton-model-edit-form")
    expect(form).to_be_visible()
    form.locator("input.lepton-model-aliases-input").fill(text)
    form.locator("button.lepton-model-save").click()
    expect(form).to_be_hidden()


def test_models_section_and_version_view(lab: BrowserLab, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    model = get_model(lab)
    assert [v["version"] for v in model["versions"]] == [2, 1], model
    assert model["aliases"] == {"production": 2}, model
    v2 = version_of(model, 2)
    formats = {a["format"]: a for a in v2["artifacts"]}
    assert set(formats) == {"safetensors", "onnx"}, v2
    assert formats["onnx"]["max_abs_diff"] is not None, formats

    # 1. the sidebar lists it: newest version, alias, framework, key metric
    sidebar = open_sidebar(page)
    row = sidebar.locator(f"li.lepton-model[data-lepton-model='{MODEL}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_have_attribute("data-lepton-model-latest", "2")
    expect(row.locator(".lepton-model-latest")).to_have_text("v2")
    expect(row.locator(".lepton-model-aliases")).to_have_text("production → v2")
    expect(row.locator(".lepton-model-framework")).to_have_text("torch")
    expect(row.locator(".lepton-model-metric")).to_have_text("accuracy 0.91")
    expect(sidebar.locator(".lepton-no-models")).to_be_hidden()
    expect(sidebar.locator(".lepton-models-error")).to_be_hidden()
    row.scroll_into_view_if_needed()
    shot(page, "models-sidebar.png")

    # 2. the version view: v2, its formats with digest and max_abs_diff vs tolerance
    row.locator(".lepton-model-name").click()
    panel = page.locator(f".lepton-ModelPanel[data-lepton-model='{MODEL}']")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-lepton-model-version", "2")
    expect(panel).to_have_attribute("data-lepton-model-versions", "2,1")
    expect(page.locator(".lm-TabBar-tab").filter(has_text=f"Model: {MODEL} v2")).to_have_count(1)
    rows = panel.locator("tr.lepton-model-artifact")
    expect(rows).to_have_count(2)
    for fmt, artifact in formats.items():
        tr = panel.locator(f"tr.lepton-model-artifact[data-lepton-format='{fmt}']")
        sha = tr.locator(".lepton-model-artifact-sha256")
        expect(sha).to_have_text(artifact["sha256"][:12])
        expect(sha).to_have_attribute("title", artifact["sha256"])
        diff = tr.locator(".lepton-model-artifact-diff")
        if artifact["max_abs_diff"] is not None and artifact["tolerance"] is not None:
            ok = artifact["max_abs_diff"] <= artifact["tolerance"]
            expect(diff).to_have_attribute("data-lepton-verdict", "ok" if ok else "over")
            expect(diff).to_contain_text("≤" if ok else ">")
        print(f"{fmt}: {tr.inner_text()!r}")
    onnx = panel.locator("tr.lepton-model-artifact[data-lepton-format='onnx']")
    expect(onnx.locator(".lepton-model-artifact-diff")).not_to_have_text("–")
    expect(panel.locator(".lepton-model-alias")).to_have_text(["production"])
    accuracy = panel.locator("table.lepton-model-metrics tr[data-lepton-metric='accuracy']")
    expect(accuracy).to_contain_text("0.91")
    expect(panel.locator(".lepton-model-libraries")).to_contain_text("torch")
    shot(page, "models-version.png")

    # 3. Download: the route answers 200 with the artifact's bytes; a click downloads it
    link = onnx.locator("a.lepton-model-download")
    href = link.get_attribute("href")
    assert href and f"/lepton-lab/api/models/{MODEL}/versions/2/artifacts/onnx" in href, href
    answer = page.request.get(href)
    assert answer.status == 200, (answer.status, answer.text()[:500])
    body = answer.body()
    assert len(body) == formats["onnx"]["size"], (len(body), formats["onnx"])
    print("download headers:", answer.headers.get("content-disposition"))
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None, download.failure()
    saved = Path(download.path())
    assert saved.stat().st_size == formats["onnx"]["size"], (saved.stat().st_size, formats)
    print("downloaded:", download.suggested_filename, saved.stat().st_size, "bytes")

    # 4. move `production` to v1 in the UI, then back to v2
    select = panel.locator("select.lepton-model-version-select")
    select.select_option("1")
    expect(panel).to_have_attribute("data-lepton-model-version", "1")
    expect(panel.locator(".lepton-model-alias")).to_have_count(0)
    edit_aliases(panel, "production")
    wait_for(lambda: aliases(lab) == {"production": 1}, 15, "production on v1 in GET models/{name}")
    expect(panel.locator(".lepton-model-alias")).to_have_text(["production"])
    expect(row.locator(".lepton-model-aliases")).to_have_text("production → v1", timeout=15_000)
    expect(select.locator("option[value='1']")).to_have_text("v1 (production)")
    shot(page, "models-alias-moved.png")

    select.select_option("2")
    expect(panel).to_have_attribute("data-lepton-model-version", "2")
    edit_aliases(panel, "production")
    wait_for(lambda: aliases(lab) == {"production": 2}, 15, "production back on v2")
    expect(row.locator(".lepton-model-aliases")).to_have_text("production → v2", timeout=15_000)

    # 5. delete v1 after the confirmation dialog
    select.select_option("1")
    expect(panel).to_have_attribute("data-lepton-model-version", "1")
    panel.locator("button.lepton-model-delete").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Delete {MODEL} v1")
    shot(page, "models-delete-dialog.png")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialog).to_have_count(0)
    expect(panel).to_have_attribute("data-lepton-model-versions", "2", timeout=15_000)
    expect(panel).to_have_attribute("data-lepton-model-version", "2")
    expect(select.locator("option")).to_have_count(1)
    model = get_model(lab)
    assert [v["version"] for v in model["versions"]] == [2], model
    code, body = lab.request("GET", f"lepton-lab/api/models/{MODEL}/versions/1")
    assert code == 404, (code, body)
    expect(row.locator(".lepton-model-versions")).to_have_text("1 version", timeout=15_000)
    shot(page, "models-version-deleted.png")
