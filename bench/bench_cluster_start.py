"""Embedded cluster start from a plain script against plain Dask in a guarded script (#13).

Run:  flock /tmp/cpu.lock .venv/bin/python bench/bench_cluster_start.py [--repeat 5]

Every repeat runs each variant once, in turn (alternating, so a busy moment of the machine
falls on all of them), each in a fresh Python process:

- ``ll.attach() file``: an unguarded ``script.py`` (no ``if __name__ == "__main__":``) that
  calls ``ll.attach()``, the embedded default (LabNanny workers that skip ``__main__``);
- ``LocalCluster guarded``: a guarded ``script.py`` with ``distributed.LocalCluster`` and a
  ``Client``, the same shape (Dask's default worker count and threads, 127.0.0.1, dashboard on
  a free port): what plain Dask needs the guard for;
- ``ll.attach() -c`` and ``ll.attach() stdin``: the same body as ``python -c`` and
  ``python - < script.py``.

Columns (medians over the repeats, seconds): ``first result`` from spawning the process to
its line with the computed ``sum([1, 2, 3])`` (interpreter start, imports, cluster start,
first task); ``start call`` the ``ll.attach()`` (or ``LocalCluster()`` + ``Client()``) call
inside the script (``distributed`` and ``lepton_lab``'s cluster modules are imported before
it in both, so it is the cluster start alone); ``exit`` from spawning to the process's end
(includes the shutdown of the cluster); ``min first`` the best repeat. ``workers`` is the
shape each variant got.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ATTACH = """
import time
import distributed  # imported before the start call, as the guarded script does
import lepton_lab as ll
import lepton_lab.cluster.manager
t0 = time.perf_counter()
client = ll.attach()
t1 = time.perf_counter()
print("answer", client.submit(sum, [1, 2, 3]).result(), flush=True)
print("start", t1 - t0, "workers", sorted(client.nthreads().values()), flush=True)
"""

GUARDED = """
import time
from distributed import Client, LocalCluster

if __name__ == "__main__":
    t0 = time.perf_counter()
    cluster = LocalCluster(host="127.0.0.1", dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    t1 = time.perf_counter()
    print("answer", client.submit(sum, [1, 2, 3]).result(), flush=True)
    print("start", t1 - t0, "workers", sorted(client.nthreads().values()), flush=True)
    client.close()
    cluster.close()
"""

#: label -> (script body, how it is given to Python)
VARIANTS: dict[str, tuple[str, str]] = {
    "ll.attach() file (no guard)": (ATTACH, "file"),
    "LocalCluster guarded file": (GUARDED, "file"),
    "ll.attach() python -c": (ATTACH, "c"),
    "ll.attach() python - (stdin)": (ATTACH, "stdin"),
}


def run_once(body: str, how: str, folder: Path, env: dict[str, str]) -> dict[str, float | str]:
    """One fresh process: seconds to its first result line, its start call, its exit."""
    script = folder / "script.py"
    script.write_text(body)
    command = {
        "file": [sys.executable, str(script)],
        "c": [sys.executable, "-c", body],
        "stdin": [sys.executable, "-"],
    }[how]
    t0 = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=folder,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(body if how == "stdin" else "")
    process.stdin.close()
    first = None
    start = workers = None
    for line in process.stdout:
        if line.startswith("answer 6") and first is None:
            first = time.perf_counter() - t0
        elif line.startswith("start "):
            parts = line.split(maxsplit=3)
            start, workers = float(parts[1]), parts[3].strip()
    code = process.wait(timeout=120)
    ended = time.perf_counter() - t0
    if code != 0 or first is None or start is None:
        raise RuntimeError(f"{how} run failed (exit {code})")
    return {"first": first, "start": start, "exit": ended, "workers": workers or "?"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LEPTON_LAB_SCHEDULER_ADDRESS", "LEPTON_LAB_CLUSTER_FILE")
    }
    results: dict[str, list[dict[str, float | str]]] = {label: [] for label in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        env["LEPTON_LAB_STATE_DIR"] = str(Path(tmp, "state"))
        for repeat in range(args.repeat):
            for index, (label, (body, how)) in enumerate(VARIANTS.items()):
                folder = Path(tmp, f"run-{repeat}-{index}")
                folder.mkdir()
                results[label].append(run_once(body, how, folder, env))
    print(
        f"{args.repeat} repeats, alternating; medians in seconds; Python {sys.version.split()[0]}"
    )
    header = f"{'variant':32} {'first result':>12} {'start call':>10} {'exit':>6} {'min first':>9}"
    print(header + "  workers (threads each)")
    print("-" * (len(header) + 24))
    for label, runs in results.items():
        first = statistics.median(float(r["first"]) for r in runs)
        start = statistics.median(float(r["start"]) for r in runs)
        ended = statistics.median(float(r["exit"]) for r in runs)
        best = min(float(r["first"]) for r in runs)
        print(
            f"{label:32} {first:12.2f} {start:10.2f} {ended:6.2f} {best:9.2f}  {runs[0]['workers']}"
        )


if __name__ == "__main__":
    main()
