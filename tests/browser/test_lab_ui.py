"""Browser tests of the Lepton Lab UI: a real ``jupyter lab`` subprocess driven by headless
Chromium (Playwright, sync API).

What they cover (DOM hooks: ``labextension/README.md``):

1. the notebook toolbar's kernel switch: CPU -> GPU -> CPU, checked in the DOM and through the
   server's REST API (``api/sessions``), and a cell run in the GPU kernel that reaches the lab's
   cluster and prints the "runs on CPU" notice on a machine without a GPU;
2. the Lepton sidebar: mode and worker count, and that it follows a scale-up/-down made through
   the REST API by itself (refresh polling);
3. the launcher's "CPU notebook" / "GPU notebook" cards.

Chromium: Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``), or
``LEPTON_LAB_CHROMIUM=/path/to/chromium``. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.labserver import LabServer
from tests.support.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(110)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: the README's and the docs' pictures: retaken by every browser run, so they show today's UI
DOC_IMAGES = REPO / "docs" / "images"
CHROMIUM = os.environ.get("LEPTON_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LEPTON = {
    "cluster_mode": "local",
    "n_workers": 2,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
}
REFRESH_MS = 1000  # the sidebar's poll interval for these tests (user setting; default 3000)
UI_TIMEOUT_MS = 30_000


# --------------------------------------------------------------------------------------------
# helpers


def installed_labextension() -> Path | None:
    """The lepton-lab labextension folder JupyterLab finds, if it is a complete one."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base, "lepton-lab")
        if (candidate / "package.json").is_file():
            return candidate
    return None


class BrowserLab(LabServer):
    """LabServer with a private workspace and user-settings folder, so the browser starts from
    a clean layout, no news/update pop-ups cover the UI, and the user's ``~/.jupyter`` is left
    alone."""

    def __init__(self, root_dir: Path, state_dir: Path, **kwargs: Any) -> None:
        super().__init__(root_dir, **kwargs)
        self.state_dir = state_dir
        self.workspaces_dir = state_dir / "workspaces"
        self.settings_dir = state_dir / "settings"

    def command(self) -> list[str]:
        return super().command() + [
            f"--LabApp.workspaces_dir={self.workspaces_dir}",
            f"--LabApp.user_settings_dir={self.settings_dir}",
        ]

    def write_settings(self) -> None:
        settings = {
            "@jupyterlab/apputils-extension/notification": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
            "lepton-lab/plugin": {"refreshInterval": REFRESH_MS},
        }
        self.workspaces_dir.mkdir(parents=True, exist_ok=True)
        for name, values in settings.items():
            path = self.settings_dir / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 90) -> BrowserLab:
        self.write_settings()
        super().start(timeout)
        return self

    # ---- REST shortcuts

    def sessions(self) -> list[dict]:
        code, body = self.request("GET", "api/sessions")
        assert code == 200, (code, body)
        return body

    def session_for(self, path: str) -> dict | None:
        for session in self.sessions():
            if session.get("path") == path or session.get("notebook", {}).get("path") == path:
                return session
        return None

    def kernel_of(self, path: str) -> tuple[str, str] | None:
        """(kernel name, execution state) of the notebook's session, if it has a kernel."""
        session = self.session_for(path)
        if not session or not session.get("kernel"):
            return None
        kernel = session["kernel"]
        return kernel["name"], kernel.get("execution_state", "")

    def close_all_sessions(self) -> None:
        for session in self.sessions():
            self.request("DELETE", f"api/sessions/{session['id']}")

    @contextlib.contextmanager
    def serving(self, workers: int | None = None) -> Iterator[BrowserLab]:
        """The lab running (with ``workers`` cluster workers up) for the block; then its
        sessions closed and the server stopped, killed as a last resort (also at exit, if
        pytest itself is interrupted hard)."""
        if installed_labextension() is None:
            pytest.fail(
                "the lepton-lab labextension is not installed in this environment (no "
                "package.json in share/jupyter/labextensions/lepton-lab): install the package "
                "with `make test` (or `pip install .`), which builds and ships it"
            )

        def kill() -> None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

        atexit.register(kill)
        try:
            self.start()
            if workers is not None:
                self.wait_cluster(
                    lambda s: s["status"] == "running" and len(s["workers"]) == workers, 90
                )
            yield self
        finally:
            # best effort before SIGTERM (which stops the kernels too)
            with contextlib.suppress(Exception):
                self.close_all_sessions()
            try:
                self.stop(timeout=30)
            finally:
                kill()
                atexit.unregister(kill)


def write_notebook(path: Path, kernel: str, source: str = "") -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel,
        "display_name": "Lepton (GPU)" if kernel == "lepton-gpu" else "Lepton (CPU)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, str(path))


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def doc_shot(target: Any, name: str) -> Path:
    """A screenshot (of a page or one element) that the README and the docs show."""
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    path = DOC_IMAGES / name
    target.screenshot(path=str(path))
    assert path.stat().st_size > 1000, path
    return path


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserLab]:
    base = tmp_path_factory.mktemp("browser-lab")
    with BrowserLab(base / "root", base / "state", lepton=LEPTON).serving(workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Install it with "
            "`apt-get update && apt-get install -y chromium` (or set LEPTON_LAB_CHROMIUM)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _replaced_kernels_subshell_request(error: str) -> bool:
    """JupyterLab asks an ipykernel 7 kernel for a subshell as it connects; when the notebook's
    kernel is replaced (the CPU/GPU switch) before the reply, JupyterLab's kernel connection
    rejects that request's future with no handler. The rejection is JupyterLab's own, about a
    kernel that is gone, and nothing of the extension's (CI saw it once in the switch test)."""
    return error.startswith("Error: Canceled future for create_subshell_request message")


@pytest.fixture
def page(lab: BrowserLab, browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context on a freshly reset lab layout (launcher open)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        pg.goto(f"{lab.url}lab?reset&token={lab.token}", wait_until="domcontentloaded")
        pg.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
        pg.wait_for_selector(".jp-SideBar [data-id='lepton-sidebar']", timeout=UI_TIMEOUT_MS)
        # the reset layout ends with the launcher in the main area: the app is fully restored
        pg.wait_for_selector(".jp-Launcher-body .jp-LauncherCard", timeout=UI_TIMEOUT_MS)
        yield pg
        errors = [e for e in errors if not _replaced_kernels_subshell_request(e)]
        assert not errors, f"uncaught errors in the page: {errors}"
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            with contextlib.suppress(Exception):
                shot(pg, f"FAILED-{request.node.name}.png")
        context.close()
        lab.close_all_sessions()


def open_notebook(pg: Any, lab: BrowserLab, name: str) -> Any:
    """Open ``name`` (in the server root) from the file browser's URL; return its panel."""
    pg.goto(f"{lab.url}lab/tree/{name}?token={lab.token}", wait_until="domcontentloaded")
    panel = pg.locator(".jp-NotebookPanel").filter(has=pg.locator(".jp-Notebook"))
    panel.first.wait_for(state="visible", timeout=60_000)
    return panel.first


def switch_of(panel: Any) -> Any:
    return panel.locator(".jp-NotebookPanel-toolbar .lepton-kernel-switch")


def wait_device(switch: Any, device: str, timeout_ms: int = UI_TIMEOUT_MS) -> None:
    from playwright.sync_api import expect

    expect(switch).to_have_attribute("data-lepton-device", device, timeout=timeout_ms)
    expect(switch).not_to_have_attribute("data-lepton-busy", "true", timeout=timeout_ms)
    button = switch.locator(".jp-ToolbarButtonComponent")
    expect(button).to_have_text(device.upper(), timeout=timeout_ms)


# --------------------------------------------------------------------------------------------
# tests


def test_kernel_switch_cpu_gpu_cpu(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    cluster = lab.wait_cluster()
    address = cluster["scheduler_address"]
    assert address, cluster
    name = "switch.ipynb"
    write_notebook(
        lab.root_dir / name,
        "lepton-cpu",
        "import lepton_lab as ll\nprint('scheduler:', ll.attach().scheduler.address)",
    )

    panel = open_notebook(page, lab, name)
    wait_for(lambda: lab.kernel_of(name) == ("lepton-cpu", "idle"), 60, "an idle lepton-cpu kernel")
    switch = switch_of(panel)
    expect(switch).to_have_count(1)
    wait_device(switch, "cpu")
    assert switch.get_attribute("title"), "the kernel switch has no tooltip"
    print("kernel switch tooltip (cpu):", switch.get_attribute("title"))

    # CPU -> GPU
    switch.locator(".jp-ToolbarButtonComponent").click()
    wait_for(lambda: (lab.kernel_of(name) or ("",))[0] == "lepton-gpu", 60, "session on lepton-gpu")
    wait_device(switch, "gpu")
    print("kernel switch tooltip (gpu):", switch.get_attribute("title"))
    wait_for(lambda: lab.kernel_of(name) == ("lepton-gpu", "idle"), 60, "an idle lepton-gpu kernel")
    expect(panel.locator(".jp-KernelName")).to_contain_text("GPU")

    # run the cell in the GPU kernel: it reaches the lab's cluster, and says it runs on CPU
    panel.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")
    output = panel.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
    expect(output.filter(has_text="scheduler:")).to_have_count(1, timeout=60_000)
    text = panel.locator(".jp-Cell").first.locator(".jp-OutputArea").inner_text()
    assert f"scheduler: {address}" in text, text
    if not cluster["totals"].get("gpus"):
        assert "runs on CPU" in text, text
        assert "no GPU on this machine" in text, text
    assert "Traceback" not in text, text
    shot(page, "notebook-gpu-kernel.png")

    # GPU -> CPU
    switch.locator(".jp-ToolbarButtonComponent").click()
    wait_for(lambda: (lab.kernel_of(name) or ("",))[0] == "lepton-cpu", 60, "session on lepton-cpu")
    wait_device(switch, "cpu")
    sessions = [s for s in lab.sessions() if s["path"] == name]
    assert len(sessions) == 1, sessions  # switched in place: no second session


def test_sidebar_follows_scaling(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    lab.wait_cluster(lambda s: s["status"] == "running" and len(s["workers"]) == 2)
    page.locator(".jp-SideBar [data-id='lepton-sidebar']").click()
    sidebar = page.locator("#lepton-sidebar")
    expect(sidebar).to_be_visible()
    count = sidebar.locator(".lepton-worker-count")
    expect(count).to_have_text("2")
    expect(sidebar.locator(".lepton-cluster-mode")).to_have_text("local")
    expect(sidebar).to_have_attribute("data-lepton-status", "running")
    expect(sidebar.locator("tr.lepton-worker")).to_have_count(2)
    expect(sidebar.locator(".lepton-thread-count")).to_have_text("2")
    expect(sidebar.locator(".lepton-sidebar-error")).to_be_hidden()
    status = lab.wait_cluster()
    expect(sidebar.locator(".lepton-scheduler-address")).to_have_text(status["scheduler_address"])
    expect(sidebar.locator(".lepton-memory")).to_have_text(re.compile(r".+ / .+"))
    shot(page, "lab-sidebar.png")
    doc_shot(page, "lab-sidebar.png")

    try:
        code, body = lab.request("PATCH", "lepton-lab/api/cluster", {"workers": 3})
        assert code == 200, (code, body)
        # no click, no refresh: the sidebar's own polling picks the new worker up
        expect(count).to_have_text("3", timeout=15_000)
        expect(sidebar.locator("tr.lepton-worker")).to_have_count(3, timeout=15_000)
        shot(page, "lab-sidebar-3-workers.png")
    finally:
        code, body = lab.request("PATCH", "lepton-lab/api/cluster", {"workers": 2})
        assert code == 200, (code, body)
    expect(count).to_have_text("2", timeout=15_000)
    expect(sidebar.locator("tr.lepton-worker")).to_have_count(2, timeout=15_000)


def test_launcher_cards(lab: BrowserLab, page: Any) -> None:
    from playwright.sync_api import expect

    launcher = page.locator(".jp-Launcher-body")
    expect(launcher).to_be_visible()
    cards = launcher.locator(".jp-LauncherCard[data-category='Lepton Lab']")
    cpu = cards.filter(has_text="CPU notebook")
    gpu = cards.filter(has_text="GPU notebook")
    expect(cpu).to_have_count(1)
    expect(gpu).to_have_count(1)
    shot(page, "launcher.png")

    before = {s["id"] for s in lab.sessions()}
    assert not before, f"sessions left over from an earlier test: {lab.sessions()}"
    gpu.click()
    # JupyterLab first creates the session on a temporary UUID path, then renames it to the
    # notebook's path (SessionContext works around a server race that way): wait for the rename
    new = wait_for(
        lambda: [
            s
            for s in lab.sessions()
            if s["id"] not in before and s.get("kernel") and s["path"].endswith(".ipynb")
        ],
        60,
        "a new notebook session from the GPU card, on its .ipynb path",
    )
    assert len(new) == 1, f"expected one new session, got {json.dumps(new, indent=1)}"
    session = new[0]
    assert session["type"] == "notebook", f"not a notebook session: {session}"
    assert session["path"].endswith(".ipynb"), f"not a notebook path: {session}"
    assert session["kernel"]["name"] == "lepton-gpu", f"wrong kernel: {session}"
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel).to_have_count(1)
    wait_device(switch_of(panel), "gpu")
    saved = json.loads((lab.root_dir / session["path"]).read_text())
    assert saved["metadata"].get("kernelspec", {}).get("name") in (None, "lepton-gpu"), saved
