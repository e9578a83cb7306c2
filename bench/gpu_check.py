"""GPU check: the lab's GPU path end to end, runnable on a GPU machine that has no package index.

On a machine with NVIDIA GPUs (torch with CUDA installed, no index), after ``make gpu-wheels``
here and copying the repository with its ``.whl/`` folder there, one command runs it:

    python3 bench/gpu_check.py --wheels .whl [--json out.json]

``--wheels`` installs what the GPU image lacks from ``.whl`` (pip, ``--no-index``; packages the
environment already has, torch above all, are kept) into the running interpreter's environment,
then starts the check again. It:

1. starts the lab's cluster with ``cluster_mode="auto"`` and expects Dask-CUDA's
   ``LocalCUDACluster`` with one worker per GPU that NVML reports (each worker's first
   ``CUDA_VISIBLE_DEVICES`` entry a different GPU);
2. reads ``GET /lepton-lab/api/cluster``'s body and expects NVML figures (GPU name, memory,
   utilisation) for every worker. The body comes from ``ClusterService.status()``, the call the
   route's handler makes, serialised as the handler does (``model_dump_json``); no Jupyter server
   is started, because jupyter_server and JupyterLab with their dependencies do not fit the 64 MiB
   that travels to the GPU machine, and the handler adds nothing to the figures (the server tests
   cover the route itself on CPU);
3. runs ``ll.fit`` with a torch loop on 2 ranks over NCCL when there are 2 GPUs, else 1 rank on
   the GPU; ``precision="mixed"`` (fp16 autocast on a GPU); a Keras run (Keras 3, torch backend)
   and a Keras ``precision="mixed"`` run (``mixed_float16`` with loss scaling on a GPU);
4. prints a table (check, result, figures/time, note) and exits 1 if a check that ran failed.

Without a GPU (or with ``--cpu``) it runs the CPU parts: ``auto`` must pick a CPU
``LocalCluster`` and say why, the torch run uses 2 ranks on gloo, mixed precision means bf16,
and the rows that need a GPU are listed as skipped with the reason.

Other modes: ``--requirements`` prints what the check needs from pyproject.toml (for
``pip download``), ``--prune-wheels DIR`` drops the wheels the GPU image already has and checks
that the rest stays under 64 MiB (both used by ``make gpu-wheels``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# lepton_lab comes from this tree, here and in the workers the cluster spawns
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
# Keras fixes its backend at its first import; Lepton Lab's Keras runs need torch
os.environ.setdefault("KERAS_BACKEND", "torch")

#: what the check imports, by distribution name; versions come from pyproject.toml
NEEDED = (
    "dask",
    "distributed",
    "dask-cuda",
    "keras",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "traitlets",
    "nvidia-ml-py",
    "fsspec",
    "cloudpickle",
    "psutil",
)
#: needed but not named in pyproject.toml (jupyter_server brings it there): the state paths
EXTRA_REQUIREMENTS = ("jupyter_core>=5",)
#: never carried: the GPU machine's torch is the one built for its CUDA, and its cuda-bindings
#: match that CUDA (13 on the workplace's image, where pyproject's [cuda] extra says 12.*:
#: dask-cuda 26.10 itself only asks for cuda-core, which works with either)
NEVER_CARRIED = ("torch", "cuda-bindings", "cuda-toolkit")
#: large binary wheels the workplace's GPU image already has (device KINDS.md, 2026-11-17):
#: pruned from .whl so the rest fits; pip then uses the installed ones
DEVICE_PROVIDES = ("numpy", "pandas", "pillow", "h5py", "scipy", "pyarrow", "triton")
WHEEL_BUDGET = 64 * 1024**2

FEATURES, CLASSES = 32, 4


# -- requirements and wheels ----------------------------------------------------------------
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The check's requirements with pyproject.toml's pins, so the carried wheels follow them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise SystemExit("reading pyproject.toml needs Python 3.11 or later (tomllib)") from None
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(s for s in extra if not s.startswith("lepton-lab"))
    found: dict[str, str] = {}
    for spec in specs:
        name = _canonical(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0])
        if name in NEEDED and name not in found:
            found[name] = spec.replace(" ", "")
    missing = [n for n in NEEDED if n not in found]
    if missing:
        raise SystemExit(f"pyproject.toml names no version of {', '.join(missing)}")
    return [found[n] for n in NEEDED] + list(EXTRA_REQUIREMENTS)


def _wheel_name(path: Path) -> str:
    return _canonical(path.name.split("-", 1)[0])


def prune_wheels(folder: Path) -> int:
    """Drop wheels the GPU image provides (and any torch/CUDA wheel); 1 if the rest is over
    budget or holds two versions of one package (pip would refuse them)."""
    wheels = sorted(folder.glob("*.whl"))
    dropped = []
    for wheel in wheels:
        name = _wheel_name(wheel)
        if name in DEVICE_PROVIDES or name in NEVER_CARRIED or name.startswith("nvidia-cu"):
            wheel.unlink()
            dropped.append(wheel.name)
    kept = sorted(folder.glob("*.whl"))
    size = sum(w.stat().st_size for w in kept)
    names = [_wheel_name(w) for w in kept]
    twice = sorted({n for n in names if names.count(n) > 1})
    print(f"dropped (the GPU image has them): {', '.join(dropped) or 'none'}")
    print(f"{len(kept)} wheels, {size / 1024**2:.1f} MiB in {folder}")
    if twice:
        print(f"two versions of: {', '.join(twice)}; remove {folder} and download again")
        return 1
    if size >= WHEEL_BUDGET:
        print(f"over the {WHEEL_BUDGET / 1024**2:.0f} MiB that travels to the GPU machine")
        return 1
    return 0


def install_wheels(folder: str) -> None:
    """Install the missing requirements from ``folder`` with no index, then run the check
    again in a fresh interpreter (the new packages must not meet half-imported old ones)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        folder,
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--root-user-action=ignore",
        *requirements(),
    ]
    print("installing from", folder, flush=True)
    done = subprocess.run(command)
    if done.returncode:
        raise SystemExit(f"pip could not install the check's requirements from {folder}")
    argv, skip = [], False
    for arg in sys.argv[1:]:  # the same options, less --wheels DIR / --wheels=DIR
        if skip or arg.startswith("--wheels="):
            skip = False
        elif arg == "--wheels":
            skip = True
        else:
            argv.append(arg)
    os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv])


# -- the training code the ranks run (module level: cloudpickle sends it by value) ------------
def torch_loop(config: dict[str, Any]) -> dict[str, Any]:
    """An MLP on generated 4-class data, data-parallel; what it returns shows where it ran."""
    import hashlib

    import torch
    import torch.distributed as dist

    import lepton_lab as ll

    ctx = ll.context()
    device = torch.device(ctx.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(config["samples"], FEATURES, generator=g)
    y = (x @ torch.randn(FEATURES, CLASSES, generator=g)).argmax(1)
    xs = x[ctx.rank :: ctx.world_size].to(device)
    ys = y[ctx.rank :: ctx.world_size].to(device)
    net = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, CLASSES)
    )
    model = ctx.prepare(net)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    # fp16 needs loss scaling; bf16 (CPU) does not
    scaler = torch.amp.GradScaler("cuda") if cuda and ctx.precision == "mixed" else None
    batch, losses, out_dtype, steps = config["batch_size"], [], None, 0
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for epoch in range(config["epochs"]):
        for i in range(0, len(xs), batch):
            opt.zero_grad(set_to_none=True)
            with ctx.autocast():
                logits = model(xs[i : i + batch])
                loss = torch.nn.functional.cross_entropy(logits.float(), ys[i : i + batch])
            out_dtype = str(logits.dtype).replace("torch.", "")
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            losses.append(float(loss))
            steps += 1
        ctx.report(step=epoch, loss=losses[-1])
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        accuracy = float((net(x.to(device)).argmax(1) == y.to(device)).float().mean())
    weights = b"".join(p.detach().float().cpu().numpy().tobytes() for p in net.parameters())
    return {
        "rank": ctx.rank,
        "device": ctx.device,
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "out_dtype": out_dtype,
        "first_loss": sum(losses[:5]) / len(losses[:5]),
        "last_loss": sum(losses[-5:]) / len(losses[-5:]),
        "accuracy": accuracy,
        "steps_per_second": steps / seconds if seconds else 0.0,
        "weights_sha": hashlib.sha256(weights).hexdigest(),
    }


def keras_model() -> Any:
    """A compiled Keras MLP; the last layer stays float32 as mixed precision wants."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(CLASSES, dtype="float32"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def precision_probe() -> Any:
    """A callback factory (each rank builds its own): reports the policy the rank trained in."""
    import keras

    import lepton_lab as ll

    class PrecisionProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            compute = self.model.layers[0].dtype_policy.compute_dtype
            scaled = isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)
            ctx = ll.context()
            ctx.report(
                step=0,
                probe_float16=float(compute == "float16"),
                probe_bfloat16=float(compute == "bfloat16"),
                probe_loss_scaled=float(scaled),
                probe_on_gpu=float(ctx.device.startswith("cuda")),
            )
            ctx.flush()

    return PrecisionProbe()


def generated_arrays(samples: int) -> tuple[Any, Any]:
    """The same kind of data as ``torch_loop``'s, as numpy arrays for Keras."""
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.standard_normal((samples, FEATURES)).astype("float32")
    y = (x @ rng.standard_normal((FEATURES, CLASSES))).argmax(1).astype("int64")
    return x, y


# -- the check --------------------------------------------------------------------------------
@dataclass
class Row:
    check: str
    result: str  # PASS | FAIL | SKIP
    figures: str = ""
    note: str = ""


@dataclass
class Check:
    """Runs the steps in order and records one row each; a step's exception is its FAIL."""

    quick: bool
    force_cpu: bool
    run_timeout: float
    rows: list[Row] = field(default_factory=list)
    probe: Any = None
    manager: Any = None
    gpus: int = 0
    workdir: str = ""
    store: Any = None

    def add(self, check: str, result: str, figures: str = "", note: str = "") -> None:
        note = " ".join(note.split())  # one line per row, whatever an error message held
        self.rows.append(Row(check, result, figures, note))
        print(f"  {result:<4} {check}: {figures} {note}".rstrip(), flush=True)

    def step(self, name: str, fn: Callable[[], tuple[str, str, str] | None]) -> None:
        started = time.perf_counter()
        try:
            outcome = fn()
        except Exception as exc:  # noqa: BLE001 - a failed check is a row, not a crash
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.add(name, "FAIL", f"{time.perf_counter() - started:.1f} s", last[:300])
            return
        if outcome is None:
            return
        result, figures, note = outcome
        if result != "SKIP":
            figures = f"{figures}; {time.perf_counter() - started:.1f} s".lstrip("; ")
        self.add(name, result, figures, note)

    @property
    def on_gpu(self) -> bool:
        return self.manager is not None and self.manager.kind == "cuda"

    # -- steps ------------------------------------------------------------------------------
    def environment(self) -> tuple[str, str, str]:
        from importlib import metadata

        from lepton_lab.cluster.gpus import GpuProbe, probe_gpus

        self.probe = (
            GpuProbe(0, reason="--cpu: GPUs are not used") if self.force_cpu else probe_gpus()
        )
        self.gpus = self.probe.count

        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "-"

        import torch

        cuda = torch.version.cuda or "none"
        figures = (
            f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {cuda}, "
            f"NVML {self.gpus} GPU(s)"
        )
        names = ("dask", "distributed", "dask-cuda", "cuda-core", "cuda-bindings", "keras")
        note = ", ".join(f"{n} {version(n)}" for n in names)
        missing = [n for n in ("dask", "distributed", "keras", "sqlalchemy") if version(n) == "-"]
        if missing:
            return "FAIL", figures, f"missing: {', '.join(missing)}; {note}"
        return "PASS", figures, note

    def dask_cuda_import(self) -> tuple[str, str, str]:
        import importlib.util
        from importlib import metadata

        installed = importlib.util.find_spec("dask_cuda") is not None
        if not self.probe.available:
            state = "installed" if installed else "not installed"
            return "SKIP", "", f"no GPU ({self.probe.reason}); dask-cuda {state}"
        try:
            bindings = metadata.version("cuda-bindings")
        except metadata.PackageNotFoundError:
            bindings = "not installed"
        import dask_cuda

        return "PASS", f"dask-cuda {dask_cuda.__version__}", f"cuda-bindings {bindings}"

    def cluster(self) -> tuple[str, str, str]:
        from lepton_lab.cluster.manager import ClusterManager

        kwargs: dict[str, Any] = {"mode": "auto", "dashboard_address": "127.0.0.1:0"}
        if not self.probe.available:  # Dask-CUDA picks one worker per GPU by itself
            kwargs.update(n_workers=2, threads_per_worker=1)
        self.manager = ClusterManager(probe=self.probe, **kwargs)
        self.manager.start()
        client = self.manager.client
        expected = self.gpus if self.probe.available else 2
        client.wait_for_workers(expected, timeout=60)
        kind = type(getattr(client, "cluster", None)).__name__
        status = self.manager.status()
        n = status["totals"]["workers"]
        figures = f"{kind}, {n} worker(s), ready in {self.manager.startup_seconds:.1f} s"
        reason = status["reason"]
        if self.probe.available:
            visible = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES", ""))
            firsts = sorted(v.split(",")[0] for v in visible.values())
            note = f"{reason}; CUDA_VISIBLE_DEVICES first entries {firsts}"
            ok = (
                self.manager.kind == "cuda"
                and kind == "LocalCUDACluster"
                and n == self.gpus
                and len(set(firsts)) == n
                and all(firsts)
            )
            return ("PASS" if ok else "FAIL"), figures, note
        ok = self.manager.kind == "local" and kind == "LocalCluster" and self.probe.reason in reason
        return ("PASS" if ok else "FAIL"), figures, f"reason: {reason}"

    def _route_body(self) -> dict[str, Any]:
        """GET /lepton-lab/api/cluster's body: the handler's call, serialised as it does."""
        from lepton_lab.services.cluster import ClusterService

        service = ClusterService(self.manager, kernelspecs=dict)
        return json.loads(service.status().model_dump_json())

    def cluster_route(self) -> tuple[str, str, str]:
        body = self._route_body()
        totals = body["totals"]
        workers = body["workers"]
        figures = (
            f"{totals['workers']} workers, {totals['threads']} threads, "
            f"{totals['memory_limit'] / 1024**3:.1f} GiB, {totals['gpus']} GPU(s)"
        )
        ok = (
            body["status"] == "running"
            and body["mode"] == self.manager.kind
            and totals["workers"] == len(workers) > 0
            and all(w["nthreads"] > 0 and w["memory_limit"] > 0 for w in workers)
            and totals["gpus"] == (self.gpus if self.on_gpu else 0)
        )
        return ("PASS" if ok else "FAIL"), figures, "ClusterService.status(), the route's body"

    def nvml_figures(self) -> tuple[str, str, str]:
        if not self.on_gpu:
            if self.probe.available:  # GPUs there, yet no Dask-CUDA cluster to report them
                return "FAIL", "", f"not run: no Dask-CUDA cluster ({self.probe.reason})"
            return "SKIP", "", f"no Dask-CUDA cluster ({self.probe.reason})"

        def complete(w: dict[str, Any]) -> bool:
            gpu = w["gpu"] or {}
            return bool(
                gpu.get("name")
                and (gpu.get("memory_total") or 0) > 0
                and gpu.get("utilization") is not None
                and gpu.get("memory_used") is not None
            )

        # live figures arrive with the workers' heartbeats
        deadline = time.monotonic() + 20
        body = self._route_body()
        while not all(complete(w) for w in body["workers"]) and time.monotonic() < deadline:
            time.sleep(0.5)
            body = self._route_body()
        parts = []
        for w in body["workers"]:
            gpu = w["gpu"] or {}
            used, total = gpu.get("memory_used") or 0, gpu.get("memory_total") or 0
            parts.append(
                f"{gpu.get('name')}: {gpu.get('utilization')} % busy, "
                f"{used / 1024**3:.1f}/{total / 1024**3:.1f} GiB"
            )
        missing = sorted(
            {
                key
                for w in body["workers"]
                for key in ("name", "memory_total", "memory_used", "utilization")
                if (w["gpu"] or {}).get(key) in (None, "")
            }
        )
        ok = len(body["workers"]) == self.gpus and all(complete(w) for w in body["workers"])
        note = "name, memory, utilisation per worker"
        if missing:
            note += f"; missing: {', '.join(missing)}"
        return ("PASS" if ok else "FAIL"), "; ".join(parts), note

    def _fit(self, fn: Any, **kwargs: Any) -> Any:
        import lepton_lab as ll

        run = ll.fit(
            fn,
            client=self.manager.client,
            store=self.store,
            artifact_dir=f"{self.workdir}/artifacts",
            **kwargs,
        )
        status = run.wait(self.run_timeout)
        if status in ("queued", "running"):
            run.stop()
            run.wait(60)
            raise RuntimeError(f"run did not finish within {self.run_timeout:g} s (stopped)")
        if status != "completed":
            first = (run.error or "no error recorded").strip().splitlines()[0]
            raise RuntimeError(f"run {status}: {first}")
        return run

    def _torch_world(self) -> int:
        if self.on_gpu:
            return 2 if self.gpus >= 2 else 1
        return 2

    def torch_run(self) -> tuple[str, str, str]:
        world = self._torch_world()
        samples, epochs = (2048, 3) if self.quick else (8192, 5)
        config = {"samples": samples, "epochs": epochs, "batch_size": 64}
        run = self._fit(torch_loop, framework="torch", workers=world, config=config)
        ranks = run.result
        want_device = "cuda" if self.on_gpu else "cpu"
        want_backend = None if world == 1 else ("nccl" if self.on_gpu else "gloo")
        devices = {r["device"].split(":")[0] for r in ranks}
        visible = {r["visible"] for r in ranks}
        ok = (
            len(ranks) == world
            and devices == {want_device}
            and all(r["backend"] == want_backend for r in ranks)
            and len({r["weights_sha"] for r in ranks}) == 1
            and all(r["last_loss"] < r["first_loss"] for r in ranks)
            and ranks[0]["accuracy"] >= 0.8
            and (not self.on_gpu or len(visible) == world)
        )
        figures = (
            f"{world} rank(s), {want_backend or 'no process group'}, "
            f"acc {ranks[0]['accuracy']:.2f}, {ranks[0]['steps_per_second']:.0f} steps/s"
        )
        where = ", ".join(sorted({r["gpu"] or r["device"] for r in ranks}))
        return ("PASS" if ok else "FAIL"), figures, f"on {where}; ranks' weights identical"

    def nccl_skipped(self) -> tuple[str, str, str] | None:
        if self.on_gpu and self.gpus >= 2:
            return None  # the torch run above was the NCCL run
        if self.on_gpu:
            return "SKIP", "", f"needs 2 GPUs; NVML found {self.gpus}"
        if self.gpus >= 2:
            return "FAIL", "", f"not run: no Dask-CUDA cluster ({self.probe.reason})"
        return "SKIP", "", f"no GPU ({self.probe.reason}); the torch run used gloo"

    def torch_mixed(self) -> tuple[str, str, str]:
        samples, epochs = (2048, 2) if self.quick else (8192, 3)
        config = {"samples": samples, "epochs": epochs, "batch_size": 64}
        run = self._fit(torch_loop, framework="torch", workers=1, config=config, precision="mixed")
        rank = run.result[0]
        want = "float16" if self.on_gpu else "bfloat16"
        ok = rank["out_dtype"] == want and rank["last_loss"] < rank["first_loss"]
        figures = f"autocast {rank['out_dtype']}, acc {rank['accuracy']:.2f}"
        note = "fp16 + GradScaler on the GPU" if self.on_gpu else "bf16 autocast on the CPU"
        return ("PASS" if ok else "FAIL"), figures, note

    def keras_run(self) -> tuple[str, str, str]:
        world = min(self.gpus, 2) if self.on_gpu else 2
        x, y = generated_arrays(2048 if self.quick else 8192)
        epochs = 3 if self.quick else 5
        run = self._fit(keras_model, data=(x, y), epochs=epochs, batch_size=64, workers=world)
        ranks = run.result
        history = ranks[0]["history"]
        ok = (
            len(ranks) == world
            and len({r["weights_sha"] for r in ranks}) == 1
            and history["loss"][-1] < history["loss"][0]
            and history["accuracy"][-1] >= 0.8
        )
        figures = f"{world} rank(s), {epochs} epochs, acc {history['accuracy'][-1]:.2f}"
        return ("PASS" if ok else "FAIL"), figures, "Keras 3 on torch; ranks' weights identical"

    def keras_mixed(self) -> tuple[str, str, str]:
        x, y = generated_arrays(2048)
        run = self._fit(
            keras_model,
            data=(x, y),
            epochs=2,
            batch_size=64,
            workers=1,
            precision="mixed",
            callbacks=[precision_probe],
        )
        probe = {m["name"]: m["value"] for m in run.metrics() if m["name"].startswith("probe_")}
        history = run.result[0]["history"]
        if self.on_gpu:
            ok = probe.get("probe_float16") == 1.0 and probe.get("probe_loss_scaled") == 1.0
            policy = "mixed_float16 + LossScaleOptimizer"
        else:
            ok = probe.get("probe_bfloat16") == 1.0
            policy = "mixed_bfloat16"
        ok = ok and probe.get("probe_on_gpu") == float(self.on_gpu)
        ok = ok and history["loss"][-1] < history["loss"][0]
        saw = next(
            (d for d in ("float16", "bfloat16") if probe.get(f"probe_{d}") == 1.0), "float32"
        )
        saw += " + loss scaling" if probe.get("probe_loss_scaled") else ""
        figures = f"compute {saw}, acc {history['accuracy'][-1]:.2f}"
        return ("PASS" if ok else "FAIL"), figures, f"expects {policy}"

    # -- all --------------------------------------------------------------------------------
    def run(self) -> int:
        from lepton_lab.store import Store

        with tempfile.TemporaryDirectory(prefix="lepton-gpu-check-") as workdir:
            self.workdir = workdir
            os.environ.setdefault("LEPTON_LAB_STATE_DIR", f"{workdir}/state")
            self.store = Store(f"sqlite:///{workdir}/runs.db")
            self.step("environment", self.environment)
            if self.probe is None:
                self.print_table()
                return 1
            self.step("dask-cuda import", self.dask_cuda_import)
            self.step("cluster_mode=auto", self.cluster)
            try:
                if self.manager is not None and self.manager.client is not None:
                    self.step("GET /cluster", self.cluster_route)
                    self.step("NVML figures in GET /cluster", self.nvml_figures)
                    world = self._torch_world()
                    self.step(f"torch fit, {world} rank{'s' * (world > 1)}", self.torch_run)
                    self.step("torch fit, 2 ranks on NCCL", self.nccl_skipped)
                    self.step('torch precision="mixed"', self.torch_mixed)
                    self.step("Keras fit", self.keras_run)
                    self.step('Keras precision="mixed"', self.keras_mixed)
                else:
                    for name in ("GET /cluster", "torch fit", "Keras fit"):
                        self.add(name, "FAIL", "", "not run: the cluster did not start")
            finally:
                if self.manager is not None:
                    self.manager.close(timeout=30)
        self.print_table()
        return 1 if any(r.result == "FAIL" for r in self.rows) else 0

    def print_table(self) -> None:
        head = Row("check", "result", "figures/time", "note")
        width = [max(len(getattr(r, f)) for r in [head, *self.rows]) for f in ("check", "result")]
        figw = min(max(len(r.figures) for r in [head, *self.rows]), 70)
        print()
        for r in [head, *self.rows]:
            print(f"{r.check:<{width[0]}}  {r.result:<{width[1]}}  {r.figures:<{figw}}  {r.note}")
        counts = {k: sum(r.result == k for r in self.rows) for k in ("PASS", "FAIL", "SKIP")}
        mode = "GPU" if self.on_gpu else "CPU"
        skipped = [r for r in self.rows if r.result == "SKIP"]
        if skipped:
            print("\nskipped:")
            for r in skipped:
                print(f"  {r.check}: {r.note}")
        print(
            f"\ngpu_check ({mode} mode): {counts['PASS']} passed, {counts['FAIL']} failed, "
            f"{counts['SKIP']} skipped"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (the tests use it)")
    parser.add_argument("--cpu", action="store_true", help="ignore GPUs: the CPU mode anywhere")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON here")
    parser.add_argument("--run-timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--wheels", metavar="DIR", help="first install what is missing from DIR")
    parser.add_argument("--requirements", action="store_true", help="print them and exit")
    parser.add_argument("--prune-wheels", metavar="DIR", help="prune DIR for the GPU image")
    args = parser.parse_args(argv)
    if args.requirements:
        print("\n".join(requirements()))
        return 0
    if args.prune_wheels:
        return prune_wheels(Path(args.prune_wheels))
    if args.wheels:
        install_wheels(args.wheels)  # does not return
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # torch in the workers sees no GPU either
    check = Check(quick=args.quick, force_cpu=args.cpu, run_timeout=args.run_timeout)
    code = check.run()
    if args.json:
        rows = [asdict(r) for r in check.rows]
        Path(args.json).write_text(json.dumps({"gpu": check.on_gpu, "rows": rows}, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
