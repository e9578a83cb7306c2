"""``lepton-lab demo``: the end-to-end demo on the embedded local cluster.

It starts the cluster, shows its status, runs a Dask computation on its workers, then trains
an MLP on sklearn's bundled digits data-parallel with ``ll.fit`` (DDP over every worker) and
checks the result, and last runs an evaluation notebook as a papermill job with parameters.
No download: the data ships with scikit-learn (or, without it, is made up).
"""

from __future__ import annotations

import time
from typing import Any


def digits_loop(config: dict[str, Any]) -> Any:
    """One rank of the demo run: its shard of the digits, DDP, a checkpoint per epoch; returns
    the trained network (rank 0's becomes ``run.model``)."""
    import numpy as np
    import torch

    import lepton_lab as ll

    ctx = ll.context()
    torch.manual_seed(0)
    try:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = x / 16.0
    except ImportError:  # scikit-learn is optional: learnable made-up data instead
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, 1797)
        x = rng.normal(size=(1797, 64)) * 0.3 + np.eye(10)[y].repeat(7, axis=1)[:, :64]
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    x_val, y_val = x[1500:], y[1500:]
    x, y = x[:1500][ctx.rank :: ctx.world_size], y[:1500][ctx.rank :: ctx.world_size]
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = ctx.prepare(net)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    accuracy = 0.0
    for epoch in range(config["epochs"]):
        for i in range(0, len(x), 32):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = float((net(x_val).argmax(1) == y_val).float().mean())
        ctx.report(
            step=epoch,
            loss=loss.item(),
            val_accuracy=accuracy,
            checkpoint={"epoch": epoch, "model": net.state_dict()},
        )
    return net


def run_demo(address: str | None, epochs: int) -> int:
    import dask.array as da

    import lepton_lab as ll
    from lepton_lab.cli.common import CLIError, format_status
    from lepton_lab.cluster.attach import embedded_cluster
    from lepton_lab.cluster.scheduler import scheduler_identity

    t0 = time.perf_counter()
    client = ll.attach(address)
    started = time.perf_counter() - t0
    manager = embedded_cluster()
    if manager is not None:
        print(format_status(manager.status()))
    print(f"cluster ready in {started:.1f} s at {client.scheduler.address}")

    x = da.random.default_rng(0).standard_normal((4000, 4000), chunks=(1000, 1000))
    t0 = time.perf_counter()
    value = client.compute((x @ x.T).mean()).result()
    per_worker = client.run(lambda dask_worker: dask_worker.state.executed_count)
    print(
        f"mean of X @ X.T over a 4000x4000 array: {value:.4f} in {time.perf_counter() - t0:.2f} s"
    )
    for worker, count in sorted(per_worker.items()):
        print(f"  {worker} executed {count} tasks")
    if sum(per_worker.values()) == 0:
        raise CLIError("the workers report no executed tasks; the cluster did not compute")

    try:
        import torch  # noqa: F401
    except ImportError:
        print("training step skipped: install lepton-lab[torch] to train on the cluster")
    else:
        workers = len(scheduler_identity(client)["workers"])
        print(f"training an MLP on the digits, data-parallel on {workers} workers ...")
        t0 = time.perf_counter()
        run = ll.fit(
            digits_loop,
            framework="torch",
            workers=workers,
            config={"epochs": epochs},
            name="demo: digits MLP",
            wait=True,
        )
        if run.status != "completed":
            raise CLIError(f"the demo run {run.id} {run.status}: {run.error}")
        last = {m["name"]: m["value"] for m in run.metrics() if m["step"] == epochs - 1}
        print(
            f"run {run.id} completed in {time.perf_counter() - t0:.1f} s: "
            f"validation accuracy {last.get('val_accuracy', float('nan')):.3f}, "
            f"last loss {last.get('loss', float('nan')):.3f}, "
            f"{len(run.metrics())} metric values and "
            f"{sum(e['kind'] == 'checkpoint' for e in run.events())} checkpoints recorded"
        )
        register_demo_model(run)
    run_demo_job(epochs)
    ll.detach()
    print("demo finished")
    return 0


def register_demo_model(run: Any) -> None:
    """Export the run's network to each torch format, verified, as a registry version."""
    import warnings

    import numpy as np

    try:
        from sklearn.datasets import load_digits

        example = (load_digits().data[1500:1532] / 16.0).astype(np.float32)
    except ImportError:
        example = np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32)
    formats = ["safetensors", "torch.export", "torchscript", "onnx"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # formats that fail are printed below
        version = run.register("demo-digits", formats=formats, example_input=example)
    print(
        f"registered {version.name} v{version.version} in {time.perf_counter() - t0:.1f} s "
        f"(lineage: run {version.run_id}):"
    )
    for a in version.artifacts:
        diff = f"max |diff| {a.max_abs_diff:.1e}"
        print(f"  {a.format:<13} {a.size:>8} B  sha256 {a.sha256[:12]}  {diff}")
    for fmt, reason in version.failed_formats.items():
        print(f"  {fmt:<13} not registered: {reason.splitlines()[0]}")
    serve_demo_model(version, example)


def serve_demo_model(version: Any, example: Any) -> None:
    """Serve the version over the Open Inference Protocol, ask it once, stop it."""
    import importlib.util
    import json
    import urllib.request

    import numpy as np

    if importlib.util.find_spec("mlserver") is None or "onnx" not in version.formats:
        print("serving step skipped: install lepton-lab[serving] (and [onnx]) to serve models")
        return
    from lepton_lab.serving import serve

    t0 = time.perf_counter()
    handle = serve(version.name, version.version, format="onnx", owner="cli")
    started = time.perf_counter() - t0
    try:
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(example.shape),
                    "data": example.ravel().tolist(),
                }
            ]
        }
        request = urllib.request.Request(
            f"{handle.url}/v2/models/{version.name}/infer",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        t1 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        took = (time.perf_counter() - t1) * 1000
        (output,) = answer["outputs"]
        served = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
        direct = version.predictor("onnx")(example)
        same = int((served.argmax(1) == direct.argmax(1)).sum())
        print(
            f"served {version.name} v{version.version} at {handle.url}/v2/models/{version.name} "
            f"(ready in {started:.1f} s): {len(example)} rows in {took:.0f} ms, "
            f"{same}/{len(example)} predictions equal to onnxruntime's in-process"
        )
    finally:
        handle.stop()


EVALUATION = """\
import numpy as np
import lepton_lab as ll
try:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
except ImportError:
    raise SystemExit("install scikit-learn for this notebook")
x, y = load_digits(return_X_y=True)
model = LogisticRegression(C=C, max_iter=max_iter).fit(x[:1500] / 16, y[:1500])
accuracy = float(model.score(x[1500:] / 16, y[1500:]))
ll.log_metrics(accuracy=accuracy)
print(f"C={C}: accuracy {accuracy:.3f} on {len(y) - 1500} held-out digits")
"""


def run_demo_job(epochs: int) -> None:
    """A notebook job, as ``lepton-lab run NB -p C 0.5 --wait`` runs one: papermill with typed
    parameters, per-cell progress, a log and metrics in the store."""
    import tempfile
    from pathlib import Path

    import nbformat

    from lepton_lab.cli.common import CLIError
    from lepton_lab.config.settings import state_dir
    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.jobs.spec import validate_job
    from lepton_lab.jobs.submission import create_job, installed_kernels
    from lepton_lab.jobs.workdir import JobFiles
    from lepton_lab.store import open_store

    kernels = installed_kernels()
    kernel = "lepton-cpu" if "lepton-cpu" in kernels else "python3"
    with tempfile.TemporaryDirectory() as tmp:
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("C = 1.0\nmax_iter = 100")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(EVALUATION)]
        path = Path(tmp, "evaluate_digits.ipynb")
        nbformat.write(nb, path)
        store = open_store()
        spec = validate_job(
            {
                "path": str(path),
                "kernel": kernel,
                "parameters": {"C": 0.5, "max_iter": 50 * epochs},
            },
            None,
            kernels,
        )
        job = create_job(store, state_dir(), spec, message="submitted by the demo")
        print(f"running notebook job {job['id']} with papermill (kernel {kernel}) ...")
        t0 = time.perf_counter()
        record = Dispatcher(store, state_dir(), concurrency=1, name="demo").run_foreground(
            job["id"]
        )
    if record["status"] != "completed":
        raise CLIError(f"the demo job {job['id']} {record['status']}: {record['error']}")
    metrics = {m["name"]: m["value"] for m in record["metrics"]}
    print(
        f"job {job['id']} completed in {time.perf_counter() - t0:.1f} s: "
        f"{record['progress'].get('completed')} of {record['progress'].get('cells')} cells, "
        f"accuracy {metrics.get('accuracy', float('nan')):.3f}; output "
        f"{JobFiles.of(record).output}"
    )
