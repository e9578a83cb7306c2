"""Notification latency: from a job's end to its webhook delivered.

Run:  .venv/bin/python bench/bench_notify.py [--jobs 20] [--concurrency 2] [--tick 0.2]

A real Dispatcher (the one the server and ``lepton-lab scheduler`` run) in this process, on a
SQLite store of its own, runs --jobs trivial notebook jobs (papermill, the local executor),
each with a webhook rule on "completed" that POSTs to an HTTP server of this script.

Measured per job, in wall-clock seconds of this machine:
- webhook: the job's ``ended_at`` in the store -> the POST received by the local HTTP server;
- toast:   the job's ``ended_at`` -> the in-lab toast row's ``sent_at`` (published for the lab).

Table: median and max of each over the jobs. The Dispatcher's tick and the notification
Sender's tick (its thread polls the log at that interval) are printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat


def notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("print('done')")]
    nbformat.write(nb, path)
    return path


class Sink:
    """Records the receive time of each POST by the job id in its body."""

    def __init__(self) -> None:
        self.received: dict[str, list[float]] = {}
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                at = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    received.setdefault(body["record"]["id"], []).append(at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--tick", type=float, default=0.2, help="the Dispatcher's (default 0.2)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    state = work / "state"
    state.mkdir()
    os.environ["LEPTON_LAB_STATE_DIR"] = str(state)
    os.environ["LEPTON_LAB_DATABASE_URL"] = f"sqlite:///{state / 'lab.db'}"
    for name in ("LEPTON_LAB_NOTIFICATIONS", "LEPTON_LAB_NOTIFY_IN_LAB"):
        os.environ.pop(name, None)

    from lepton_lab.jobs.dispatcher import Dispatcher
    from lepton_lab.jobs.spec import validate_job
    from lepton_lab.jobs.submission import create_job
    from lepton_lab.store import open_store

    store = open_store()
    sink = Sink()
    nb = notebook(work / "quick.ipynb")
    rule = {"on": ["completed"], "channel": "webhook", "url": sink.url}
    dispatcher = Dispatcher(
        store, state, concurrency=args.concurrency, tick=args.tick, name="bench"
    )
    assert dispatcher.sender is not None
    dispatcher.start()
    try:
        jobs = []
        for _ in range(args.jobs):
            spec = validate_job({"path": str(nb), "notify": [rule]}, None, {"python3"})
            jobs.append(create_job(store, state, spec)["id"])
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if len(sink.received) == len(jobs):
                toasts = store.list_notifications(channel="jupyterlab", limit=1000)
                if sum(1 for t in toasts if t["status"] == "sent") == len(jobs):
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"not every job was delivered in {args.timeout:g} s")
        time.sleep(1.0)  # a duplicate would show up by now
    finally:
        dispatcher.close()

    published = store.list_notifications(channel="jupyterlab", limit=1000)
    toasts = {t["subject_id"]: t for t in published}
    webhook, toast = [], []
    for job_id in jobs:
        job = store.get_job(job_id, details=False)
        if job["status"] != "completed":
            raise SystemExit(f"job {job_id} ended {job['status']}")
        posts = sink.received[job_id]
        if len(posts) != 1:
            raise SystemExit(f"job {job_id}: {len(posts)} webhook POSTs")
        webhook.append(posts[0] - job["ended_at"])
        toast.append(toasts[job_id]["sent_at"] - job["ended_at"])

    print(f"notification latency over {len(jobs)} jobs ({args.concurrency} at once)")
    print(
        f"Dispatcher tick {dispatcher.tick:g} s, Sender tick {dispatcher.sender.tick:g} s, "
        f"python {sys.version.split()[0]}"
    )
    print(f"{'from the job ended_at to':<34} {'median ms':>10} {'max ms':>8} {'min ms':>8}")
    for name, values in (
        ("webhook POST received", webhook),
        ("in-lab toast row sent_at", toast),
    ):
        print(
            f"{name:<34} {1000 * statistics.median(values):>10.0f} "
            f"{1000 * max(values):>8.0f} {1000 * min(values):>8.0f}"
        )


if __name__ == "__main__":
    main()
