"""Model registry: export + verify time per format against the framework's plain save, and CPU
inference latency of the registered ONNX artifacts (onnxruntime) against the framework itself.

Run:  .venv/bin/python bench/bench_models.py [--repeats 3] [--threads 2] [--json out.json]

Models: a Keras MLP (torch backend) and a torch MLP, both 64-128-64-10, trained briefly on
sklearn's digits (X/16, float32). Everything runs in one process on one temporary store
(sqlite) and artifact directory; the MLflow mirror is switched off.

1. export: --repeats register calls per model, each with all of the framework's formats
   (Keras: keras, onnx, onnx-int8; torch: safetensors, torch.export, torchscript, onnx,
   onnx-int8). Per format, the median of the registry's own `details` (export_seconds,
   verify_seconds: reload in its runtime + compare on the check rows); the artifact's size;
   and (export + verify) / plain save. Also the wall time of the whole register call against
   the plain save (keras: model.save(.keras); torch: torch.save(state_dict)), the two
   alternating in the same run, after one untimed warm-up of each. "bookkeeping" = wall -
   sum(export + verify): reference outputs, int8 accuracy on the eval rows, lineage (library
   versions, git state), sha256, publish, store rows.
2. latency: per-call median and p95 (microseconds) at batch 1 and 256, after warm-up, calls
   interleaved in rounds across runtimes; numpy in, numpy out for all. ratio = the row's median
   / onnxruntime on the registered fp32 onnx artifact of the same model and batch (> 1: ORT is
   faster). torch.set_num_threads(--threads), torch interop threads 1; ORT sessions with
   intra_op_num_threads=--threads, inter_op 1, sequential. The session exactly as
   registry.load(format="onnx") builds it (ORT's default threads) is a row too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["KERAS_BACKEND"] = "torch"
os.environ.pop("MLFLOW_TRACKING_URI", None)  # no MLflow mirroring in the timings

import numpy as np  # noqa: E402

from lepton_lab.models import mirror  # noqa: E402
from lepton_lab.models.registry import ModelRegistry  # noqa: E402
from lepton_lab.store import open_store  # noqa: E402

os.environ.pop(mirror.ENV_MLFLOW_TRACKING_URI, None)

FORMATS = {
    "keras": ["keras", "onnx", "onnx-int8"],
    "torch": ["safetensors", "torch.export", "torchscript", "onnx", "onnx-int8"],
}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1500], y[:1500], x[1500:], y[1500:]


def keras_model(x: np.ndarray, y: np.ndarray, epochs: int) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def torch_model(x: np.ndarray, y: np.ndarray, epochs: int) -> Any:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[i : i + 64]), yt[i : i + 64])
            loss.backward()
            opt.step()
    return model.eval()


def accuracy(outputs: Any, y: np.ndarray) -> float:
    return float((np.asarray(outputs).argmax(axis=-1) == y).mean())


# -- 1. export ---------------------------------------------------------------------------------
def plain_save(framework: str, model: Any, path: Path) -> float:
    """Seconds for the framework's own save: model.save(.keras) / torch.save(state_dict)."""
    import torch

    t0 = time.perf_counter()
    if framework == "keras":
        model.save(str(path))
    else:
        torch.save(model.state_dict(), str(path))
    return time.perf_counter() - t0


def bench_export(
    reg: ModelRegistry,
    framework: str,
    model: Any,
    name: str,
    example: np.ndarray,
    eval_data: tuple[np.ndarray, np.ndarray],
    repeats: int,
    folder: Path,
) -> dict[str, Any]:
    """Plain save and register call alternate, so drift on a shared machine hits both; the
    first of each is a warm-up (lazy imports, first-call caches) and is not counted."""
    suffix = ".keras" if framework == "keras" else ".pt"
    save_times, walls, record = [], [], None
    per_format: dict[str, list] = {f: [] for f in FORMATS[framework]}
    for i in range(repeats + 1):
        path = folder / f"{name}-{i}{suffix}"
        saved = plain_save(framework, model, path)
        t0 = time.perf_counter()
        record = reg.register(
            model, name, formats=FORMATS[framework], example_input=example, eval_data=eval_data
        )
        wall = time.perf_counter() - t0
        if record["failed_formats"]:
            raise SystemExit(f"{name}: formats failed: {record['failed_formats']}")
        if i == 0:
            continue
        save_times.append(saved)
        walls.append(wall)
        for a in record["artifacts"]:
            per_format[a["format"]].append(a)
    save_size = path.stat().st_size
    save = statistics.median(save_times)
    formats = {}
    for fmt, rows in per_format.items():
        export_s = statistics.median(r["details"]["export_seconds"] for r in rows)
        verify_s = statistics.median(r["details"]["verify_seconds"] for r in rows)
        formats[fmt] = {
            "export_seconds": export_s,
            "verify_seconds": verify_s,
            "export_verify_over_plain_save": (export_s + verify_s) / save,
            "size_bytes": rows[-1]["size"],
            "max_abs_diff": rows[-1]["max_abs_diff"],
            "tolerance": rows[-1]["tolerance"],
            "accuracy_change": rows[-1]["details"].get("accuracy_change"),
        }
    wall = statistics.median(walls)
    attributed = sum(f["export_seconds"] + f["verify_seconds"] for f in formats.values())
    return {
        "model": name,
        "framework": framework,
        "versions_registered": record["version"],
        "plain_save_seconds": save,
        "plain_save_bytes": save_size,
        "register_wall_seconds": wall,
        "register_over_plain_save": wall / save,
        "bookkeeping_seconds": wall - attributed,
        "formats": formats,
        "all_register_walls": walls,
        "all_plain_saves": save_times,
    }


def print_export(results: list[dict[str, Any]], repeats: int) -> None:
    print(f"\n1. export + verify per format (seconds, median of {repeats} register calls)")
    head = (
        f"{'model':<7} {'format':<26} {'export':>8} {'verify':>8} {'ratio':>8} "
        f"{'size KiB':>9} {'max|diff|':>10} {'int8 acc chg':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        m = r["framework"]
        baseline = "model.save (.keras)" if m == "keras" else "torch.save(state_dict)"
        print(
            f"{m:<7} {'baseline: ' + baseline:<26} {r['plain_save_seconds']:>8.4f} {'':>8} "
            f"{1.0:>8.2f} {r['plain_save_bytes'] / 1024:>9.1f}"
        )
        for fmt, f in r["formats"].items():
            change = f["accuracy_change"]
            print(
                f"{m:<7} {fmt:<26} {f['export_seconds']:>8.4f} {f['verify_seconds']:>8.4f} "
                f"{f['export_verify_over_plain_save']:>8.2f} {f['size_bytes'] / 1024:>9.1f} "
                f"{f['max_abs_diff']:>10.2e} {'' if change is None else f'{change:+.4f}':>12}"
            )
        print(
            f"{m:<7} {'bookkeeping (wall - sum)':<26} {r['bookkeeping_seconds']:>8.4f} {'':>8} "
            f"{r['bookkeeping_seconds'] / r['plain_save_seconds']:>8.2f}"
        )
        print(
            f"{m:<7} {'whole register call (wall)':<26} {r['register_wall_seconds']:>8.4f} "
            f"{'':>8} {r['register_over_plain_save']:>8.2f}"
        )
    print(
        "ratio = (export + verify) / the framework's plain save (for the last two rows: "
        "their seconds / plain save)"
    )


# -- 2. latency --------------------------------------------------------------------------------
def ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_runner(session: Any) -> Any:
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run


def torch_runner(module: Any) -> Any:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run


def keras_call_runner(model: Any) -> Any:
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(x, training=False).detach().numpy()

    return run


def keras_predict_on_batch_runner(model: Any) -> Any:
    def run(x: np.ndarray) -> np.ndarray:
        return model.predict_on_batch(x)

    return run


def measure(
    runners: dict[str, Any],
    x: np.ndarray,
    calls: int,
    warmup: int,
    rounds: int,
    budget_s: float,
) -> dict[str, list[float]]:
    """Per-call seconds for each runner; calls interleaved in ``rounds`` blocks so that drift
    on a shared machine hits every runner alike. A runner's block ends after calls / rounds
    calls or budget_s / rounds seconds, whichever comes first (slow runtimes get fewer calls,
    at least 5 a block)."""
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    per_round = max(1, calls // rounds)
    block_s = budget_s / rounds
    clock = time.perf_counter
    for _ in range(rounds):
        for label, run in runners.items():
            bucket = times[label]
            block_end = clock() + block_s
            for n in range(per_round):
                t0 = clock()
                run(x)
                t1 = clock()
                bucket.append(t1 - t0)
                if n >= 4 and t1 > block_end:
                    break
    return times


def bench_latency(
    runners: dict[str, Any],
    reference: str,
    x_pool: np.ndarray,
    batches: list[int],
    calls: dict[int, int],
    warmup: int,
    budget_s: float,
) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {label: {} for label in runners}
    for batch in batches:
        x = np.ascontiguousarray(x_pool[:batch])
        expected = runners[reference](x)
        for label, run in runners.items():  # every runtime answers the same, within int8's
            got = np.asarray(run(x))
            if got.shape != expected.shape or np.max(np.abs(got - expected)) > 0.5:
                raise SystemExit(f"{label} disagrees with {reference} at batch {batch}")
        times = measure(runners, x, calls[batch], warmup, rounds=10, budget_s=budget_s)
        ref_median = statistics.median(times[reference])
        for label, values in times.items():
            median = statistics.median(values)
            out[label][str(batch)] = {
                "median_us": median * 1e6,
                "p95_us": percentile(values, 95) * 1e6,
                "calls": len(values),
                "ratio_vs_ort_onnx": median / ref_median,
            }
    return out


def print_latency(results: dict[str, Any], batches: list[int], threads: int) -> None:
    print(
        f"\n2. CPU inference latency per call (microseconds; torch threads {threads}, "
        f"ORT intra-op {threads})"
    )
    head = f"{'model':<7} {'runtime':<44}"
    for b in batches:
        head += f" {f'b{b} median':>11} {f'b{b} p95':>9} {'ratio':>6} {'calls':>5}"
    print(head)
    print("-" * len(head))
    for model, rows in results.items():
        for label, per_batch in rows.items():
            line = f"{model:<7} {label:<44}"
            for b in batches:
                r = per_batch[str(b)]
                line += (
                    f" {r['median_us']:>11.1f} {r['p95_us']:>9.1f}"
                    f" {r['ratio_vs_ort_onnx']:>6.2f} {r['calls']:>5}"
                )
            print(line)
    print(
        "ratio = the row's median / onnxruntime on the registered fp32 onnx artifact "
        "(same model, same batch); > 1 means onnxruntime is faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3, help="register calls per model")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls at batch 1")
    parser.add_argument("--calls-256", type=int, default=500, help="timed calls at batch 256")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls per runtime")
    parser.add_argument(
        "--budget", type=float, default=4.0, help="at most ~seconds per runtime and batch"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    import keras
    import onnxruntime

    x_train, y_train, x_test, y_test = digits()
    models = {
        "keras": keras_model(x_train, y_train, args.epochs),
        "torch": torch_model(x_train, y_train, args.epochs),
    }
    example = x_train[:64]
    batches = [1, 256]
    calls = {1: args.calls, 256: args.calls_256}
    export_results, latency_results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        store = open_store(f"sqlite:///{tmp}/db.sqlite")
        reg = ModelRegistry(store, artifact_dir=f"{tmp}/artifacts")
        plain = Path(tmp) / "plain"
        plain.mkdir()
        for framework, model in models.items():
            name = f"digits-{framework}"
            export_results.append(
                bench_export(
                    reg, framework, model, name, example, (x_test, y_test), args.repeats, plain
                )
            )

            # 2. latency, on the artifacts of the last registered version
            def path(fmt: str, name: str = name) -> Path:
                return reg.artifact(name, "latest", fmt)[1]

            onnx_default = reg.load(name, format="onnx")  # the session as the registry builds it
            assert type(onnx_default).__name__ == "InferenceSession", type(onnx_default)
            runners: dict[str, Any] = {}
            if framework == "keras":
                runners["keras model(x) (torch backend, no_grad)"] = keras_call_runner(model)
                runners["keras predict_on_batch (torch backend)"] = keras_predict_on_batch_runner(
                    model
                )
            else:
                runners["torch nn.Module (inference_mode)"] = torch_runner(model)
                program = reg.load(name, format="torch.export")
                runners["torch.export reloaded .module() (inf. mode)"] = torch_runner(
                    program.module()
                )
                runners["torchscript reloaded (inference_mode)"] = torch_runner(
                    reg.load(name, format="torchscript")
                )
            runners["onnxruntime onnx"] = ort_runner(ort_session(path("onnx"), args.threads))
            runners["onnxruntime onnx-int8"] = ort_runner(
                ort_session(path("onnx-int8"), args.threads)
            )
            runners["onnxruntime onnx, registry.load (ORT default)"] = ort_runner(onnx_default)
            latency_results[framework] = bench_latency(
                runners, "onnxruntime onnx", x_test, batches, calls, args.warmup, args.budget
            )
            own = next(iter(runners.values()))  # the framework's own, first
            export_results[-1]["test_accuracy"] = accuracy(own(x_test), y_test)

    print(
        f"\nmodels: 64-128-64-10 MLP on digits ({len(x_train)} train / {len(x_test)} test rows, "
        f"{args.epochs} epochs); test accuracy "
        + ", ".join(f"{r['framework']} {r['test_accuracy']:.3f}" for r in export_results)
    )
    print(
        f"torch {torch.__version__}, keras {keras.__version__} "
        f"(backend {keras.backend.backend()}), "
        f"onnxruntime {onnxruntime.__version__}; {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}"
    )
    print_export(export_results, args.repeats)
    print_latency(latency_results, batches, args.threads)
    total = time.perf_counter() - started
    load_after = os.getloadavg()
    print(
        f"\n(total {total:.0f} s; 1-min load average {load_before[0]:.1f} at the start, "
        f"{load_after[0]:.1f} at the end, on {os.cpu_count()} CPUs)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": {
                        "repeats": args.repeats,
                        "threads": args.threads,
                        "torch_interop_threads": 1,
                        "ort_intra_op_threads": args.threads,
                        "ort_inter_op_threads": 1,
                        "epochs": args.epochs,
                        "calls": calls,
                        "warmup": args.warmup,
                        "budget_seconds": args.budget,
                        "load_average_start": load_before,
                        "load_average_end": load_after,
                        "cpus": os.cpu_count(),
                        "torch": torch.__version__,
                        "keras": keras.__version__,
                        "onnxruntime": onnxruntime.__version__,
                    },
                    "export": export_results,
                    "latency": latency_results,
                    "total_seconds": total,
                },
                indent=2,
            )
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
