"""Serving (#11): a registered model behind the Open Inference Protocol endpoint, with adaptive
batching on and off, against onnxruntime called in-process on the same artifact.

Run:  flock /tmp/cpu.lock .venv/bin/python bench/bench_serving.py [--requests 2000]
      [--repeats 3] [--concurrency 64] [--quick]

The model: a small torch MLP (64 -> 32 -> 10) trained for a few steps on sklearn's digits,
registered as ``digits`` with the ``onnx`` format, in a state dir of its own (a temp dir).
Two deployments of it run at once (``ll.models.serve``, ``workers=0``, each its own model
server process on 127.0.0.1):

- batching ON: the defaults, ``max_batch_size=32``, ``max_batch_delay_ms=5``;
- batching OFF: ``max_batch_delay_ms=0`` (every request is one model call).

Each request is one row, batch 1 (``FP32 [1, 64]``), a digits row in turn; bodies are encoded
once before the timing. The client is one asyncio process (aiohttp, one connection pool for
the whole run, keep-alive): at concurrency C, C tasks each send a request as soon as their
last answer is read. Every cell is warmed (``--warmup`` requests at its concurrency, untimed)
before ``--requests`` timed ones; latency is from the send to the answer's body parsed, req/s
is requests / wall time of the cell. Every answer is checked: HTTP 200, and its argmax equals
in-process onnxruntime's argmax for that row (``wrong``); transport errors and non-200 are
``errors``.

In-process floor: ``ll.models.load("digits", format="onnx")`` (an onnxruntime session) and
``onnx_predict`` on one row at a time, sequentially, the same ``--requests``; and, for the
model's own throughput ceiling, the same rows as batches of 32 (rows/s).

Mean batch size: ``lepton_batch_size_sum / _count`` (label ``model="digits"``) read from the
deployment's ``/metrics`` before and after each timed cell (the difference: that cell only).
CPU: seconds of CPU (user + system) that the client process and the model server process
used during the cell, per request.

Each repeat runs every cell; the order of the two deployments flips every repeat so drift on
a shared machine hits both. The tables show medians over the repeats (latency percentiles are
per repeat, then the median of those). Exits non-zero on any error or wrong answer; nothing
here asserts speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MODEL = "digits"
ON, OFF = "on", "off"


# -- the model -----------------------------------------------------------------------------
def digits_mlp() -> tuple[Any, np.ndarray]:
    """A torch MLP trained briefly on sklearn's digits, and its inputs (float32 [1797, 64])."""
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    xt = torch.tensor(x / 16.0, dtype=torch.float32)
    yt = torch.tensor(y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        optimizer.step()
    return net.eval(), xt.numpy()


def request_body(row: np.ndarray) -> bytes:
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 64], "data": row.tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


# -- measurements --------------------------------------------------------------------------
@dataclass
class Cell:
    """One measured cell of one repeat."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    wrong: int = 0
    mean_batch: float | None = None
    client_cpu_ms: float | None = None  # per request
    server_cpu_ms: float | None = None  # per request
    first_error: str | None = None


@dataclass
class Results:
    cells: dict[str, list[Cell]] = field(default_factory=dict)

    def add(self, key: str, cell: Cell) -> None:
        self.cells.setdefault(key, []).append(cell)

    def med(self, key: str, attr: str) -> float | None:
        values = [getattr(c, attr) for c in self.cells.get(key, [])]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def total(self, key: str, attr: str) -> int:
        return sum(getattr(c, attr) for c in self.cells.get(key, []))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def in_process(session: Any, x: np.ndarray, n: int, expected: np.ndarray) -> Cell:
    """onnxruntime in this process: one row per call, sequentially."""
    from lepton_lab.models.formats import onnx_predict

    for i in range(200):  # warm-up
        onnx_predict(session, x[i % len(x)][None])
    latencies, wrong = [], 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        row = x[i % len(x)][None]
        s = time.perf_counter()
        y = onnx_predict(session, row)
        latencies.append(time.perf_counter() - s)
        wrong += int(y[0].argmax() != expected[i % len(x)])
    wall = time.perf_counter() - t0
    return Cell(
        rps=n / wall,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        wrong=wrong,
        client_cpu_ms=(time.process_time() - cpu0) / n * 1e3,
    )


def in_process_batched(session: Any, x: np.ndarray, n: int, batch: int = 32) -> float:
    """Rows per second of onnxruntime in this process on batches of ``batch`` rows."""
    from lepton_lab.models.formats import onnx_predict

    starts = [(i * batch) % (len(x) - batch) for i in range(max(1, n // batch))]
    for s in starts[:20]:
        onnx_predict(session, x[s : s + batch])
    t0 = time.perf_counter()
    for s in starts:
        onnx_predict(session, x[s : s + batch])
    return len(starts) * batch / (time.perf_counter() - t0)


def batch_metric(url: str) -> tuple[float, float]:
    """(sum, count) of ``lepton_batch_size`` for this model, from the deployment's /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    pattern = re.compile(r"^lepton_batch_size_(sum|count)\{([^}]*)\}\s+(\S+)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if m and f'model="{MODEL}"' in m.group(2):
            found[m.group(1)] = float(m.group(3))
    if "sum" not in found or "count" not in found:
        raise RuntimeError(f"no lepton_batch_size{{model={MODEL!r}}} in {url}/metrics")
    return found["sum"], found["count"]


async def load(
    session: Any,
    url: str,
    bodies: list[bytes],
    expected: np.ndarray,
    n: int,
    concurrency: int,
    start: int = 0,
) -> tuple[list[float], float, int, int, str | None]:
    """``n`` requests from ``concurrency`` tasks: (latencies, wall, errors, wrong, first error)."""
    import aiohttp

    endpoint = f"{url}/v2/models/{MODEL}/infer"
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors = wrong = 0
    first_error: str | None = None
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, errors, wrong, first_error
        while next_index < n:
            row = (start + next_index) % len(bodies)
            next_index += 1
            s = time.perf_counter()
            try:
                async with session.post(endpoint, data=bodies[row], headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            if status != 200:
                errors += 1
                first_error = first_error or f"HTTP {status}: {raw[:300]!r}"
                continue
            data = json.loads(raw)["outputs"][0]["data"]
            latencies.append(time.perf_counter() - s)
            if max(range(len(data)), key=data.__getitem__) != expected[row]:
                wrong += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0, errors, wrong, first_error


async def served_cell(
    session: Any,
    url: str,
    server: Any,
    bodies: list[bytes],
    expected: np.ndarray,
    n: int,
    concurrency: int,
    warmup: int,
) -> Cell:
    await load(session, url, bodies, expected, warmup, concurrency, start=n)
    sum0, count0 = batch_metric(url)
    cpu0 = time.process_time()
    scpu0 = server.cpu_times() if server is not None else None
    latencies, wall, errors, wrong, first = await load(
        session, url, bodies, expected, n, concurrency
    )
    client_cpu = time.process_time() - cpu0
    server_cpu = None
    if scpu0 is not None:
        scpu1 = server.cpu_times()
        server_cpu = (scpu1.user + scpu1.system) - (scpu0.user + scpu0.system)
    sum1, count1 = batch_metric(url)
    calls = count1 - count0
    return Cell(
        rps=len(latencies) / wall,
        p50_ms=percentile(latencies, 50) * 1e3 if latencies else float("nan"),
        p99_ms=percentile(latencies, 99) * 1e3 if latencies else float("nan"),
        errors=errors,
        wrong=wrong,
        mean_batch=(sum1 - sum0) / calls if calls else None,
        client_cpu_ms=client_cpu / n * 1e3,
        server_cpu_ms=server_cpu / n * 1e3 if server_cpu is not None else None,
        first_error=first,
    )


# -- the run -------------------------------------------------------------------------------
def server_process(handle: Any) -> Any:
    """The model server process of a deployment (psutil), or None where it cannot be found."""
    try:
        import psutil

        pid = handle.info().get("pid")
        return psutil.Process(int(pid)) if pid else None
    except Exception:  # CPU figures are extra; their absence shows as n/a
        return None


async def measure_served(
    args: argparse.Namespace,
    handles: dict[str, Any],
    servers: dict[str, Any],
    bodies: list[bytes],
    expected: np.ndarray,
    results: Results,
) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 1))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for repeat in range(args.repeats):
            order = (ON, OFF) if repeat % 2 == 0 else (OFF, ON)
            for mode in order:
                for c in (1, args.concurrency):
                    cell = await served_cell(
                        session,
                        handles[mode].url,
                        servers[mode],
                        bodies,
                        expected,
                        args.requests,
                        c,
                        args.warmup,
                    )
                    results.add(f"{mode}/{c}", cell)
                    print(
                        f"repeat {repeat + 1} batching {mode:>3} c={c:<3} "
                        f"{cell.rps:8.0f} req/s  p50 {cell.p50_ms:7.2f} ms  "
                        f"p99 {cell.p99_ms:7.2f} ms  batch "
                        f"{fmt(cell.mean_batch, '{:.2f}')}  errors {cell.errors} "
                        f"wrong {cell.wrong}",
                        file=sys.stderr,
                        flush=True,
                    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else spec.format(value)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    v = a / b
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}" if v >= 0.1 else f"{v:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64, help="the concurrent cell's C")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests per cell")
    parser.add_argument("--quick", action="store_true", help="1000 requests, 1 repeat, 200 warm-up")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    if args.quick:
        args.requests, args.repeats, args.warmup = 1000, 1, 200

    state = tempfile.mkdtemp(prefix="bench-serving-")
    os.environ["LEPTON_LAB_STATE_DIR"] = state
    import lepton_lab as ll

    net, x = digits_mlp()
    ll.models.register(net, MODEL, formats=["onnx"], example_input=x[:4])
    ort_session = ll.models.load(MODEL, format="onnx")
    from lepton_lab.models.formats import onnx_predict

    # the reference answer of each row: onnxruntime in-process, one row at a time
    expected = np.array(
        [int(onnx_predict(ort_session, x[i][None])[0].argmax()) for i in range(len(x))]
    )
    bodies = [request_body(row) for row in x]

    results = Results()
    handles: dict[str, Any] = {}
    try:
        handles[ON] = ll.models.serve(
            MODEL, format="onnx", max_batch_size=32, max_batch_delay_ms=5.0, workers=0
        )
        handles[OFF] = ll.models.serve(
            MODEL, format="onnx", max_batch_size=32, max_batch_delay_ms=0.0, workers=0
        )
        servers = {mode: server_process(h) for mode, h in handles.items()}
        print(f"serving: on {handles[ON].url}, off {handles[OFF].url}", file=sys.stderr)
        rows_per_s = []
        for repeat in range(args.repeats):
            cell = in_process(ort_session, x, args.requests, expected)
            results.add("inproc", cell)
            rows_per_s.append(in_process_batched(ort_session, x, args.requests * 4))
            print(
                f"repeat {repeat + 1} in-process: {cell.rps:.0f} req/s, p50 "
                f"{cell.p50_ms * 1e3:.1f} us; batch 32: {rows_per_s[-1]:.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )
        asyncio.run(measure_served(args, handles, servers, bodies, expected, results))
    finally:
        for h in handles.values():
            h.stop()
    elapsed = time.perf_counter() - started
    loads = (load_before, os.getloadavg()[0])
    report(args, results, statistics.median(rows_per_s), elapsed, loads)
    bad = sum(results.total(k, "errors") + results.total(k, "wrong") for k in results.cells)
    if bad:
        firsts = [c.first_error for cs in results.cells.values() for c in cs if c.first_error]
        raise SystemExit(f"{bad} errors or wrong answers; first error: {firsts[:1]}")


def report(
    args: argparse.Namespace,
    r: Results,
    batched_rows_s: float,
    elapsed: float,
    loads: tuple[float, float],
) -> None:
    import aiohttp
    import mlserver
    import onnxruntime

    c = args.concurrency
    print()
    print("## Serving the digits MLP (#11): Open Inference Protocol endpoint vs in-process")
    print()
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores ({cpu_model()}),"
        f" Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(
        f"versions: mlserver {mlserver.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"aiohttp {aiohttp.__version__}"
    )
    print(
        f"per cell: {args.requests} timed requests after {args.warmup} warm-up; "
        f"{args.repeats} repeat(s), medians shown; whole run {elapsed:.0f} s"
    )
    print(
        f"1-min load average: {loads[0]:.2f} at the start, {loads[1]:.2f} at the end "
        "(other processes on this machine add noise)"
    )
    print()
    head = (
        f"| {'cell (batch 1 per request)':<38} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} "
        f"| {'mean batch':>10} | {'client CPU ms/req':>17} | {'server CPU ms/req':>17} "
        f"| {'errors':>6} | {'wrong':>5} |"
    )
    print(head)
    print("|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|")
    cells = [
        ("inproc", "onnxruntime in-process, sequential"),
        (f"{ON}/1", "served, batching ON, c=1"),
        (f"{ON}/{c}", f"served, batching ON, c={c}"),
        (f"{OFF}/1", "served, batching OFF, c=1"),
        (f"{OFF}/{c}", f"served, batching OFF, c={c}"),
    ]
    for key, title in cells:
        p50, p99 = r.med(key, "p50_ms"), r.med(key, "p99_ms")
        digits = "{:.3f}" if key == "inproc" else "{:.2f}"
        print(
            f"| {title:<38} | {fmt(r.med(key, 'rps'), '{:.0f}'):>8} "
            f"| {fmt(p50, digits):>7} | {fmt(p99, digits):>7} "
            f"| {fmt(r.med(key, 'mean_batch'), '{:.2f}'):>10} "
            f"| {fmt(r.med(key, 'client_cpu_ms'), '{:.3f}'):>17} "
            f"| {fmt(r.med(key, 'server_cpu_ms'), '{:.3f}'):>17} "
            f"| {r.total(key, 'errors'):>6} | {r.total(key, 'wrong'):>5} |"
        )
    print(
        f"\nonnxruntime in-process on batches of 32 rows (the model's own ceiling): "
        f"{batched_rows_s:.0f} rows/s"
    )
    print()
    head = f"| {'ratio':<44} | {'req/s':>6} | {'p50':>7} | {'p99':>7} |"
    print(head)
    print("|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|")
    pairs = [
        (f"batching ON / OFF, c={c}", f"{ON}/{c}", f"{OFF}/{c}"),
        ("batching ON / OFF, c=1", f"{ON}/1", f"{OFF}/1"),
        ("served OFF c=1 / in-process", f"{OFF}/1", "inproc"),
        ("served ON c=1 / in-process", f"{ON}/1", "inproc"),
        (f"served ON c={c} / in-process", f"{ON}/{c}", "inproc"),
        (f"served OFF c={c} / in-process", f"{OFF}/{c}", "inproc"),
    ]
    for title, a, b in pairs:
        print(
            f"| {title:<44} | {ratio(r.med(a, 'rps'), r.med(b, 'rps')):>6} "
            f"| {ratio(r.med(a, 'p50_ms'), r.med(b, 'p50_ms')):>7} "
            f"| {ratio(r.med(a, 'p99_ms'), r.med(b, 'p99_ms')):>7} |"
        )
    errors = sum(r.total(k, "errors") for k in r.cells)
    wrong = sum(r.total(k, "wrong") for k in r.cells)
    print(
        f"\nAnswers checked: {errors} errors (transport or non-200), {wrong} wrong "
        f"(argmax differs from in-process onnxruntime's for that row)."
    )
    print(
        "\nNotes: the asyncio client and both model server processes share this machine's "
        f"{os.cpu_count()} cores, so at c={c} the client's own CPU (column above) is taken from "
        "the server: served req/s here is a lower bound of what the server does with the "
        "cores to itself. The idle deployment of the pair stays up while the other is "
        "measured. 'mean batch' is lepton_batch_size_sum / _count (model=\"digits\") from "
        "/metrics over the timed requests of that cell; OFF must read 1.00. With batching ON "
        "a lone request waits up to max_batch_delay_ms (5 ms) for company, which the c=1 "
        "row shows. CPU per request also grows as requests get sparser (wake-ups), so compare "
        "the CPU columns between cells of similar req/s. The in-process row's CPU is this "
        "process's."
    )


if __name__ == "__main__":
    main()
