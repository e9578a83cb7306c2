"""``ClusterWidget``: the lab's cluster (mode, class, addresses, workers, GPUs, adaptive
scaling) with a fixed-size Scale control and adaptive min/max with an Adapt button.

Status comes from the same code as the sidebar and ``GET /lepton-lab/api/cluster``
(``ClusterManager.status`` for a cluster this process started, ``_worker_view`` and the
scheduler's metadata for any other). A kernel under the lab does not own the lab's cluster,
so it scales it (fixed or adaptive) through the lab's own REST route, found the way
``jupyter server list`` finds servers (the server info file in the runtime directory named
by the cluster state file).
"""

from __future__ import annotations

import html
import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import ipywidgets as w

from lepton_lab.cluster.adaptive import adapt_status
from lepton_lab.cluster.manager import _worker_view
from lepton_lab.cluster.scheduler import scheduler_identity
from lepton_lab.config.settings import ENV_CLUSTER_FILE

#: seconds between refreshes while displayed
DEFAULT_REFRESH = 2.0


def _gib(n: float | None) -> str:
    return f"{(n or 0) / 2**30:.2f} GiB"


class ClusterWidget(w.VBox):
    """Mode, class, scheduler, dashboard link, workers and adaptive state; refreshes itself
    every ``refresh`` seconds while it is on screen, and stops for good when closed.
    **Scale** sets a fixed size (adaptive scaling off); **Adapt** turns Dask's adaptive
    scaling on between ``min`` and ``max``."""

    def __init__(self, refresh: float = DEFAULT_REFRESH, client: Any = None) -> None:
        from lepton_lab.cluster.attach import attach, embedded_cluster

        self.client = client or attach()
        self.manager = embedded_cluster() if client is None else None
        self.refresh = max(float(refresh), 0.2)
        self.status: dict[str, Any] = {}
        self.summary = w.HTML()
        self.workers_html = w.HTML()
        self.scale_input = w.BoundedIntText(value=0, min=0, max=32, description="workers")
        self.scale_button = w.Button(description="Scale", icon="arrows-v")
        self.scale_button.on_click(self._on_scale)
        self.adapt_min = w.BoundedIntText(value=0, min=0, max=32, description="min")
        self.adapt_max = w.BoundedIntText(value=1, min=0, max=32, description="max")
        self.adapt_button = w.Button(description="Adapt", icon="sliders")
        self.adapt_button.on_click(self._on_adapt)
        self.message = w.HTML()
        super().__init__(
            [
                self.summary,
                self.workers_html,
                w.HBox([self.scale_input, self.scale_button]),
                w.HBox([self.adapt_min, self.adapt_max, self.adapt_button]),
                self.message,
            ]
        )
        self.add_class("lepton-cluster-widget")
        # the frontend counts this widget's views: refresh only while one is on screen
        self._view_count = 0
        self._closed = threading.Event()
        self._scaling = False
        # one update at a time: the refresh thread's and the end of a scaling action's, so a
        # refresh that began while scaling cannot disable the buttons after the action ended
        self._updating = threading.RLock()
        self.update()
        self.scale_input.value = self.status.get("totals", {}).get("workers", 0)
        adapt = self.status.get("adapt")
        self.adapt_min.value = adapt["minimum"] if adapt else 0
        # not adaptive yet: offer 0 up to today's size, within the limit
        self.adapt_max.value = adapt["maximum"] if adapt else max(self.scale_input.value, 1)
        self._thread = threading.Thread(target=self._loop, name="lepton-cluster-widget")
        self._thread.daemon = True
        self._thread.start()

    # -- status ------------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        """The same shape as ``GET /lepton-lab/api/cluster``."""
        if self.manager is not None:
            return self.manager.status()
        info = scheduler_identity(self.client)
        lab = _lab_cluster_file()
        workers = [_worker_view(a, v) for a, v in info.get("workers", {}).items()]
        workers.sort(key=lambda v: (v["name"], v["address"]))
        dashboard = None
        if "dashboard" in info.get("services", {}):
            try:
                dashboard = self.client.dashboard_link
            except Exception:  # noqa: BLE001 - no dashboard is not an error
                pass
        adapt = adapt_status(self.client)
        return {
            "mode": lab.get("mode") or "external",
            "status": "running",
            "owned": bool(lab) and lab.get("mode") in ("local", "cuda", "factory"),
            # the lab's cluster file names the class once the server writes it there
            "cluster_class": lab.get("cluster_class"),
            "adapt": adapt,
            "scheduler_address": info.get("address"),
            "dashboard_link": lab.get("dashboard_link") or dashboard,
            "workers": workers,
            "totals": {
                "workers": len(workers),
                "threads": sum(v["nthreads"] for v in workers),
                "memory_limit": sum(v["memory_limit"] for v in workers),
                "memory_used": sum(v["memory_used"] for v in workers),
                "gpus": sum(1 for v in workers if v["gpu"]),
            },
            "max_workers": 32,
        }

    def update(self, finishing: bool = False) -> None:
        with self._updating:
            self._update(finishing)

    def _update(self, finishing: bool) -> None:
        try:
            status = self.read_status()
        except Exception as exc:  # noqa: BLE001 - an unreachable scheduler is shown, not raised
            self.summary.value = f"<b>cluster unreachable:</b> {html.escape(str(exc))}"
            return
        self.status = status
        self.summary.value = _summary_html(status)
        self.workers_html.value = _workers_html(status["workers"])
        limit = max(int(status.get("max_workers") or 32), 1)
        for field in (self.scale_input, self.adapt_min, self.adapt_max):
            field.max = limit
        can_scale = self.manager is not None or _lab_server() is not None
        off = (self._scaling and not finishing) or not can_scale or not status.get("owned")
        self.scale_button.disabled = off
        self.adapt_button.disabled = off
        if not status.get("owned"):
            why = "not the lab's own cluster: scale it where it runs"
            self.scale_button.tooltip = self.adapt_button.tooltip = why
        elif not can_scale:
            why = "the lab server cannot be reached from this kernel"
            self.scale_button.tooltip = self.adapt_button.tooltip = why
        else:
            self.scale_button.tooltip = "a fixed number of workers (adaptive scaling off)"
            self.adapt_button.tooltip = "Dask's adaptive scaling between min and max workers"

    def _loop(self) -> None:
        while not self._closed.wait(self.refresh):
            if self._view_count:
                self.update()

    def close(self) -> None:
        """Stop refreshing and remove the widget."""
        self._closed.set()
        super().close()

    @property
    def refreshing(self) -> bool:
        return self._thread.is_alive()

    # -- scaling -----------------------------------------------------------------------------
    def _on_scale(self, _button: Any = None) -> None:
        n = int(self.scale_input.value)
        self._start(f"scaling to {n} workers…", self.scale, (n,), f"scaled to {n} workers")

    def _on_adapt(self, _button: Any = None) -> None:
        lo, hi = int(self.adapt_min.value), int(self.adapt_max.value)
        self._start(
            f"turning adaptive scaling on ({lo}–{hi})…",
            self.adapt,
            (lo, hi),
            f"adaptive {lo}–{hi} on",
        )

    def _start(self, doing: str, action: Any, args: tuple[int, ...], done: str) -> None:
        """Run a scaling action off the kernel's thread; one at a time."""
        self._scaling = True
        self.scale_button.disabled = True
        self.adapt_button.disabled = True
        self.message.value = doing
        threading.Thread(target=self._act, args=(action, args, done), daemon=True).start()

    def _act(self, action: Any, args: tuple[int, ...], done: str) -> None:
        try:
            action(*args)
            self.message.value = done
        except Exception as exc:  # noqa: BLE001 - shown next to the control
            self.message.value = (
                f"<span class='lepton-cluster-message-error' style='color:#d62728'>"
                f"{html.escape(str(exc))}</span>"
            )
        finally:
            with self._updating:  # the buttons are back before the action counts as done
                self.update(finishing=True)
                self._scaling = False

    def scale(self, n: int) -> None:
        """Scale the cluster to ``n`` workers and wait until the scheduler sees them
        (adaptive scaling goes off)."""
        self._request({"workers": n})

    def adapt(self, minimum: int, maximum: int) -> None:
        """Turn Dask's adaptive scaling on between ``minimum`` and ``maximum`` workers."""
        self._request({"adapt": {"minimum": minimum, "maximum": maximum}})

    def _request(self, body: dict[str, Any]) -> None:
        """One ``PATCH /cluster`` body: through the facade REST uses when this process owns
        the cluster (same limits, same messages), else through the lab's REST route."""
        if self.manager is not None:
            from lepton_lab.contract import parse
            from lepton_lab.contract.cluster import ScaleRequest
            from lepton_lab.services.cluster import ClusterService

            service = ClusterService(self.manager, dict)
            limit = self.manager.worker_limit()
            service.scale(parse(ScaleRequest, body, {"max_workers": limit}))
            return
        server = _lab_server()
        if server is None:
            raise RuntimeError("no lab server to ask: this kernel did not start under the lab")
        url, token = server
        request = urllib.request.Request(
            f"{url.rstrip('/')}/lepton-lab/api/cluster",
            data=json.dumps(body).encode(),
            method="PATCH",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                response.read()
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            try:
                body = json.loads(body).get("message", body)
            except ValueError:
                pass
            raise RuntimeError(f"the lab refused: {body}") from err


def _lab_cluster_file() -> dict[str, Any]:
    path = os.environ.get(ENV_CLUSTER_FILE)
    if not path:
        return {}
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _lab_server() -> tuple[str, str] | None:
    """URL and token of the lab that started this kernel, from its server info file."""
    path = os.environ.get(ENV_CLUSTER_FILE)
    pid = _lab_cluster_file().get("server_pid")
    if not path or not pid:
        return None
    try:
        info = json.loads((Path(path).parent / f"jpserver-{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    return info["url"], info.get("token", "")


def _scaling_html(status: dict[str, Any]) -> str:
    """The scaling text: "adaptive 0–8" (and a run waiting for more workers than there
    are) or "fixed size"."""
    adapt = status.get("adapt")
    if not adapt:
        return "<span class='lepton-cluster-scaling' data-adaptive='false'>fixed size</span>"
    text = (
        f"<span class='lepton-cluster-scaling' data-adaptive='true'>"
        f"adaptive {adapt['minimum']}–{adapt['maximum']}</span>"
    )
    requested = int(adapt.get("requested") or 0)
    if requested > int(status.get("totals", {}).get("workers", 0)):
        s = "" if requested == 1 else "s"
        text += (
            f" · <span class='lepton-cluster-adapt-waiting'>"
            f"a run is waiting for {requested} worker{s}</span>"
        )
    return text


def _summary_html(status: dict[str, Any]) -> str:
    totals = status.get("totals", {})
    link = status.get("dashboard_link")
    dashboard = f"<a href='{html.escape(link)}' target='_blank'>dashboard</a>" if link else ""
    klass = status.get("cluster_class")
    klass_html = f" <code class='lepton-cluster-class'>{html.escape(klass)}</code>" if klass else ""
    return (
        f"<b>Cluster</b> <span class='lepton-cluster-mode'>{status.get('mode')}</span>"
        f"{klass_html} · "
        f"<code>{html.escape(str(status.get('scheduler_address')))}</code> · {dashboard}<br>"
        f"<span class='lepton-worker-count'>{totals.get('workers', 0)}</span> workers, "
        f"{totals.get('threads', 0)} threads, memory {_gib(totals.get('memory_used'))} / "
        f"{_gib(totals.get('memory_limit'))}, {totals.get('gpus', 0)} GPU(s) · "
        f"{_scaling_html(status)}"
    )


def _workers_html(workers: list[dict[str, Any]]) -> str:
    rows = []
    for v in workers:
        gpu = v.get("gpu")
        gpu_text = ""
        if gpu:
            util = gpu.get("utilization")
            gpu_text = (
                f"{html.escape(str(gpu.get('name')))} · "
                f"{'' if util is None else f'{util:.0f} %'} · "
                f"{_gib(gpu.get('memory_used'))} / {_gib(gpu.get('memory_total'))}"
            )
        rows.append(
            f"<tr class='lepton-worker'><td>{html.escape(v['name'])}</td>"
            f"<td>{html.escape(v['address'])}</td><td>{v['nthreads']}</td>"
            f"<td>{_gib(v['memory_used'])} / {_gib(v['memory_limit'])}</td>"
            f"<td>{v['cpu']:.0f} %</td><td>{gpu_text}</td></tr>"
        )
    return (
        "<table class='lepton-workers'><tr><th>worker</th><th>address</th><th>threads</th>"
        "<th>memory used / limit</th><th>CPU</th><th>GPU (name · util · memory)</th></tr>"
        + "".join(rows)
        + "</table>"
    )
