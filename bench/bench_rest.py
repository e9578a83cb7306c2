"""REST latency of the Lepton Lab server: a baseline git ref against the current working tree.

Run:  .venv/bin/python bench/bench_rest.py [--baseline 95906c3] [--n 200] [--json out.json]

Both servers run at once, each a real `python -m jupyter_server` subprocess on 127.0.0.1 with a
token, its own state dir, root dir (a small notebook with a `parameters` cell) and a one-worker
local Dask cluster; the job queue is off (`run_jobs=False`) so submitted jobs stay queued. The
baseline server imports `lepton_lab` from a `git worktree` of the ref (PYTHONPATH), the current
one from this checkout. Each is seeded with the same 50 jobs, a few schedules and (through its
own store) 50 run records, then every route is timed over one persistent connection per
server, alternating between the two servers in rounds (order flipped each round) so drift hits
both alike. Also: GET /jobs?limit=50 from 8 concurrent clients (throughput).

Prints a markdown table: median and p90 in ms per server and current/baseline of the medians
(throughput: current/baseline of req/s). Routes that only one tree serves are measured there
alone (ratio n/a). A current server that fails to start, or a route that errors, is reported in
the table and tried again at the end. Exits non-zero only on errors; nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.labserver import LabServer  # noqa: E402

API = "/lepton-lab/api"
DEFAULT_BASELINE = "95906c3"  # the last commit before the architecture refactor
LAB = {
    "cluster_mode": "local",
    "n_workers": 1,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
    "run_jobs": False,
}
PARAMETERS_CELL = "epochs = 1\nlr = 0.1\nlabel = 'x'"


def job_body(i: int) -> dict[str, Any]:
    return {
        "path": "params.ipynb",
        "name": f"bench-{i}",
        "parameters": {"epochs": i % 5 + 1, "lr": 0.01 * (i + 1), "label": f"run-{i}"},
        "retries": 1,
        "timeout": 600,
    }


def schedule_body(i: int) -> dict[str, Any]:
    return {
        "path": "params.ipynb",
        "name": f"nightly-{i}",
        "cron": "0 3 1 1 *",  # once a year; the queue is off anyway
        "timezone": "UTC",
        "parameters": {"epochs": i + 1},
    }


BAD_BODY = {"path": "params.ipynb", "no_such_field": 1}

SEED_RUNS = """
import sys, time
from lepton_lab.store.database import open_store
store = open_store()
now = time.time()
for i in range(int(sys.argv[1])):
    store.create_run(f"benchrun{i:04d}", name=f"bench-{i}", framework="torch",
                     status="completed", params={"lr": 0.1, "i": i}, world_size=2,
                     created_at=now - i, started_at=now - i, ended_at=now - i + 0.5)
print(store.url)
"""


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(PARAMETERS_CELL, metadata={"tags": ["parameters"]})
    nb.cells = [params, nbformat.v4.new_code_cell("print(epochs, lr, label)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def tree_env(tree: Path, runtime_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    for name in list(env):
        if name.startswith("LEPTON_LAB_") or name == "DASK_SCHEDULER_ADDRESS":
            env.pop(name)
    if runtime_dir is not None:
        env["JUPYTER_RUNTIME_DIR"] = str(runtime_dir)
    return env


def imported_from(tree: Path) -> str:
    """Where a subprocess with this tree's PYTHONPATH imports lepton_lab from."""
    done = subprocess.run(
        [sys.executable, "-c", "import lepton_lab; print(lepton_lab.__file__)"],
        env=tree_env(tree),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import lepton_lab failed for {tree}:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


class TreeServer(LabServer):
    """A LabServer running one tree's lepton_lab, in a process group of its own (so its Dask
    nanny/worker processes can be found and ended even if the server dies)."""

    def __init__(self, label: str, tree: Path, work: Path) -> None:
        self.label = label
        self.tree = tree
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        write_notebook(work / "root" / "params.ipynb")
        lepton = dict(LAB, state_dir=str(work / "state"))
        super().__init__(
            work / "root", lepton=lepton, log_path=work / "server.log", app="jupyter_server"
        )
        self.runtime_dir = work / "runtime"
        self.conn: Conn | None = None
        self.seeded: dict[str, Any] = {}

    def command(self) -> list[str]:
        return [*super().command(), "--ServerApp.jpserver_extensions=lepton_lab=True"]

    def start(self, timeout: float = 120) -> TreeServer:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=tree_env(self.tree, self.runtime_dir),
            cwd=self.root_dir,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {self.log_reason()}"
                )
            with contextlib.suppress(OSError):
                status, _ = self.request("GET", "api/status", timeout=5)
                if status == 200:
                    self.up_at = time.monotonic()
                    break
            time.sleep(0.1)
        else:
            raise TimeoutError(f"server did not answer within {timeout} s: {self.log_reason()}")
        code, _ = self.request("GET", f"{API}/cluster")
        if code != 200:
            raise RuntimeError(
                f"the lepton_lab extension does not serve (GET {API}/cluster: HTTP {code}); "
                f"server log: {self.log_reason()}"
            )
        self.wait_cluster(timeout=max(10.0, deadline - time.monotonic()))
        return self

    def log_reason(self) -> str:
        """The line of the server log that says why the extension did not load."""
        lines = self.log().splitlines()
        for line in lines:
            if "extension failed loading" in line:
                return line.strip()
        errors = [ln.strip() for ln in lines if "Error" in ln or "error" in ln]
        return errors[-1] if errors else "(nothing about it)"

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (the server closes its cluster), then SIGKILL to whatever is left in the
        process group."""
        self.close_conn()
        if self.proc is None:
            return 0
        pgid = self.proc.pid
        code = self.proc.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                code = self.proc.wait()
        # nanny/worker processes of the group that outlived the server
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._log.close()
        return code

    def call(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, float]:
        if self.conn is None:
            self.conn = Conn(self.port, self.token)
        return self.conn.call(method, path, body)

    def close_conn(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Conn:
    """One kept-alive HTTP connection to a server, with its token."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.http: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    def call(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, float]:
        """One request: (status, body, seconds). A dropped keep-alive reconnects once."""
        headers = {"Authorization": f"token {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.http is None:
                self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                t0 = time.perf_counter()
                self.http.request(method, path, body=body, headers=headers)
                resp = self.http.getresponse()
                data = resp.read()
                return resp.status, data, time.perf_counter() - t0
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


# -- what is measured ----------------------------------------------------------------------
@dataclass
class Route:
    name: str
    method: str
    path: str  # may hold {job_id}
    expect: int
    body: Any = None
    n: int | None = None  # None: --n
    bodies: bool = False  # body is a function of the request number


ROUTES = [
    Route("GET /jobs?limit=50", "GET", f"{API}/jobs?limit=50", 200),
    Route("GET /jobs/{id}", "GET", f"{API}/jobs/{{job_id}}", 200),
    Route("GET /schedules", "GET", f"{API}/schedules", 200),
    Route("GET /cluster", "GET", f"{API}/cluster", 200),
    Route("GET /runs?limit=50", "GET", f"{API}/runs?limit=50", 200),
    Route("GET /kernels", "GET", f"{API}/kernels", 200),
    Route("GET /config", "GET", f"{API}/config", 200),
    Route("POST /jobs (400, bad body)", "POST", f"{API}/jobs", 400, body=BAD_BODY),
    Route("POST /jobs (submit)", "POST", f"{API}/jobs", 201, body=job_body, bodies=True),
]


@dataclass
class Result:
    route: str
    status: dict[str, str] = field(default_factory=dict)  # label -> ok | absent | error: ...
    samples: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds
    note: str = ""
    size: dict[str, int] = field(default_factory=dict)  # label -> bytes of the last response


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def encode(route: Route, i: int) -> bytes | None:
    if route.body is None:
        return None
    return json.dumps(route.body(10_000 + i) if route.bodies else route.body).encode()


def probe(server: TreeServer, route: Route, ids: dict[str, str]) -> str:
    """'ok', 'absent' (Jupyter's HTML 404, i.e. no such route in that tree) or 'error: ...'."""
    path = route.path.format(job_id=ids.get(server.label, "none"))
    try:
        code, data, _ = server.call(route.method, path, encode(route, -1))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"error: {type(exc).__name__}: {exc}"
    if code == route.expect:
        return "ok"
    if code == 404 and route.expect != 404 and not data.lstrip().startswith(b"{"):
        return "absent"  # Jupyter's HTML 404: no such route in that tree
    return f"error: HTTP {code}: {data[:200].decode(errors='replace')}"


def measure(
    servers: list[TreeServer],
    route: Route,
    n: int,
    rounds: int,
    warmup: int,
    ids: dict[str, str],
) -> Result:
    result = Result(route.name)
    live = []
    for s in servers:
        state = probe(s, route, ids)
        result.status[s.label] = state
        if state == "ok":
            live.append(s)
            result.samples[s.label] = []
    rounds = max(1, min(rounds, n))
    for s in live:  # warm-up: lazy imports, caches, the connection
        try:
            for i in range(warmup):
                s.call(route.method, route.path.format(job_id=ids[s.label]), encode(route, i))
        except Exception as exc:  # noqa: BLE001
            result.status[s.label] = f"error: {type(exc).__name__}: {exc}"
    live = [s for s in live if result.status[s.label] == "ok"]
    counter = warmup
    for r in range(rounds):
        order = live if r % 2 == 0 else live[::-1]
        for s in order:
            path = route.path.format(job_id=ids[s.label])
            for _ in range(n * (r + 1) // rounds - n * r // rounds):
                counter += 1
                try:
                    code, data, dt = s.call(route.method, path, encode(route, counter))
                except Exception as exc:  # noqa: BLE001
                    result.status[s.label] = f"error: {type(exc).__name__}: {exc}"
                    break
                if code != route.expect:
                    result.status[s.label] = (
                        f"error: HTTP {code}: {data[:200].decode(errors='replace')}"
                    )
                    break
                result.samples[s.label].append(dt)
                result.size[s.label] = len(data)
        live = [s for s in live if result.status[s.label] == "ok"]
    for label, state in result.status.items():
        if state != "ok":
            result.samples.pop(label, None)
    return result


def concurrent(servers: list[TreeServer], clients: int, per_client: int, rounds: int) -> Result:
    """GET /jobs?limit=50 from `clients` threads, each with its own connection."""
    route = f"GET /jobs?limit=50, {clients} clients (req/s)"
    result = Result(route)
    walls: dict[str, float] = {s.label: 0.0 for s in servers}
    counts: dict[str, int] = {s.label: 0 for s in servers}
    lat: dict[str, list[float]] = {s.label: [] for s in servers}
    for s in servers:
        result.status[s.label] = "ok"

    def one_round(server: TreeServer) -> None:
        errors: list[str] = []
        samples: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(clients + 1)

        def client() -> None:
            conn = Conn(server.port, server.token)
            mine: list[float] = []
            try:
                conn.call("GET", f"{API}/jobs?limit=50", None)  # connect outside the clock
                barrier.wait()
                for _ in range(per_client):
                    code, _, dt = conn.call("GET", f"{API}/jobs?limit=50", None)
                    if code != 200:
                        errors.append(f"HTTP {code}")
                        break
                    mine.append(dt)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.abort()
            finally:
                conn.close()
                with lock:
                    samples.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        if errors:
            result.status[server.label] = f"error: {errors[0]}"
        walls[server.label] += wall
        counts[server.label] += len(samples)
        lat[server.label].extend(samples)

    for r in range(rounds):
        for s in servers if r % 2 == 0 else servers[::-1]:
            if result.status[s.label] == "ok":
                one_round(s)
    for s in servers:
        if result.status[s.label] == "ok" and walls[s.label] > 0:
            result.samples[s.label] = lat[s.label]
            result.samples[s.label + ":rps"] = [counts[s.label] / walls[s.label]]
    return result


# -- the run -------------------------------------------------------------------------------
def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-rest-"))
        self.worktree = self.tmp / "baseline"
        self.servers: dict[str, TreeServer] = {}
        self.ids: dict[str, str] = {}
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.info: dict[str, Any] = {}
        self.attempts = 0
        self.info["loadavg_start"] = os.getloadavg()

    # setup ---------------------------------------------------------------------------------
    def make_worktree(self) -> None:
        ref = self.args.baseline
        git("worktree", "add", "--detach", str(self.worktree), ref)
        self.info["baseline"] = {
            "ref": ref,
            "commit": git("rev-parse", "--short", f"{ref}^{{commit}}"),
        }
        dirty = git("status", "--porcelain", "--untracked-files=no")
        self.info["current"] = {
            "head": git("rev-parse", "--short", "HEAD"),
            "modified_files": len(dirty.splitlines()) if dirty else 0,
        }

    def start(self, label: str, tree: Path) -> bool:
        self.attempts += 1
        try:
            where = imported_from(tree)
            expected = (tree / "lepton_lab" / "__init__.py").resolve()
            if Path(where).resolve() != expected:
                raise RuntimeError(f"PYTHONPATH={tree} imports lepton_lab from {where}")
            self.info.setdefault(label, {})["lepton_lab"] = where
            server = TreeServer(label, tree, self.tmp / f"{label}-{self.attempts}")
            self.servers[label] = server
            server.start(timeout=self.args.start_timeout)
            self.seed(server)
            return True
        except Exception as exc:  # noqa: BLE001 - the current tree may be mid-refactor
            msg = f"{label} server failed to start or seed: {type(exc).__name__}: {exc}"
            self.notes.append(msg[:3000])
            print(msg[:3000], file=sys.stderr)
            if label in self.servers:
                self.servers.pop(label).stop()
            return False

    def seed(self, server: TreeServer) -> None:
        for i in range(self.args.jobs):
            code, body = server.request("POST", f"{API}/jobs", job_body(i))
            if code != 201:
                raise RuntimeError(f"seeding job {i}: HTTP {code}: {body}")
            if i == self.args.jobs // 2:
                self.ids[server.label] = body["id"]
        for i in range(self.args.schedules):
            code, body = server.request("POST", f"{API}/schedules", schedule_body(i))
            if code != 201:
                raise RuntimeError(f"seeding schedule {i}: HTTP {code}: {body}")
        # runs have no POST route: write them through this tree's own store
        env = tree_env(server.tree)
        env["LEPTON_LAB_STATE_DIR"] = server.lepton["state_dir"]
        done = subprocess.run(
            [sys.executable, "-c", SEED_RUNS, str(self.args.runs)],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            self.notes.append(
                f"{server.label}: runs not seeded (GET /runs lists none): "
                + (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:300]
            )
        server.seeded = {}
        for kind, path in (
            ("jobs", "jobs?limit=1000"),
            ("schedules", "schedules"),
            ("runs", "runs?limit=1000"),
        ):
            code, body = server.request("GET", f"{API}/{path}")
            server.seeded[kind] = len(body.get(kind, [])) if code == 200 else f"HTTP {code}"

    # measure -------------------------------------------------------------------------------
    def measure_all(self, routes: list[Route]) -> dict[str, Result]:
        servers = [self.servers[k] for k in ("baseline", "current") if k in self.servers]
        out = {}
        a = self.args
        for route in routes:
            n = a.n_submit if route.bodies else a.n
            print(f"  {route.name} ...", file=sys.stderr, flush=True)
            out[route.name] = measure(servers, route, n, a.rounds, a.warmup, self.ids)
        return out

    def run(self) -> dict[str, Any]:
        a = self.args
        self.make_worktree()
        print(f"baseline {a.baseline} at {self.worktree}; current {REPO}", file=sys.stderr)
        self.start("baseline", self.worktree)
        if "baseline" not in self.servers:
            raise SystemExit("the baseline server did not start; nothing to compare")
        self.start("current", REPO)
        results = self.measure_all(ROUTES)
        results_c = concurrent(
            [self.servers[k] for k in ("baseline", "current") if k in self.servers],
            a.clients,
            a.per_client,
            a.rounds_concurrent,
        )

        # retry what failed on the current tree (it may be mid-edit)
        failed = [
            r
            for r in ROUTES
            if results[r.name].status.get("current", "error").startswith("error")
            or "current" not in self.servers
        ]
        if failed and a.retry_wait >= 0:
            print(
                f"retrying {len(failed)} route(s) on current in {a.retry_wait} s", file=sys.stderr
            )
            time.sleep(a.retry_wait)
            if "current" not in self.servers:
                self.start("current", REPO)
            if "current" in self.servers:
                again = self.measure_all(failed)
                for r in failed:
                    old = results[r.name].status.get("current", "not started")
                    results[r.name] = again[r.name]
                    results[r.name].note = f"retried (first try: {old[:80]})"
                if not results_c.status.get("current") == "ok":
                    results_c = concurrent(
                        [self.servers[k] for k in ("baseline", "current")],
                        a.clients,
                        a.per_client,
                        a.rounds_concurrent,
                    )
        if "current" not in self.servers:
            self.errors.append("the current server did not start (also on retry)")
        for res in [*results.values(), results_c]:
            for label, state in res.status.items():
                if state.startswith("error"):
                    self.errors.append(f"{res.route} on {label}: {state[:300]}")
        return self.report(results, results_c)

    # output --------------------------------------------------------------------------------
    def report(self, results: dict[str, Result], conc: Result) -> dict[str, Any]:
        rows = []
        for res in [*results.values(), conc]:
            row: dict[str, Any] = {"route": res.route, "note": res.note}
            for label in ("baseline", "current"):
                state = res.status.get(label, "not started")
                samples = res.samples.get(label)
                row[label] = {"status": state}
                if samples:
                    row[label].update(
                        n=len(samples),
                        median_ms=statistics.median(samples) * 1e3,
                        p90_ms=percentile(samples, 90) * 1e3,
                    )
                    if label in res.size:
                        row[label]["bytes"] = res.size[label]
                    rps = res.samples.get(label + ":rps")
                    if rps:
                        row[label]["req_per_s"] = rps[0]
            b, c = row["baseline"], row["current"]
            if "req_per_s" in b and "req_per_s" in c:
                row["ratio"] = c["req_per_s"] / b["req_per_s"]
            elif "median_ms" in b and "median_ms" in c:
                row["ratio"] = c["median_ms"] / b["median_ms"]
            else:
                row["ratio"] = None
            rows.append(row)
        self.info["loadavg_end"] = os.getloadavg()
        return {
            "rows": rows,
            "info": self.info,
            "notes": self.notes,
            "errors": self.errors,
            "seeded": {k: s.seeded for k, s in self.servers.items()},
        }

    def cleanup(self) -> None:
        for label in list(self.servers):
            try:
                self.servers.pop(label).stop()
            except Exception as exc:  # noqa: BLE001
                print(f"stopping {label}: {exc}", file=sys.stderr)
        if self.worktree.exists():
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(self.worktree)],
                capture_output=True,
            )
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def cell(side: dict[str, Any]) -> tuple[str, str]:
    if "req_per_s" in side:
        return f"{side['req_per_s']:.0f} req/s", f"{side['median_ms']:.2f} / {side['p90_ms']:.2f}"
    if "median_ms" in side:
        return f"{side['median_ms']:.2f}", f"{side['p90_ms']:.2f}"
    state = side["status"]
    short = "absent (404)" if state == "absent" else state.split(":", 1)[0]
    return short, ""


def markdown(out: dict[str, Any], args: argparse.Namespace) -> str:
    info = out["info"]
    base, cur = info.get("baseline", {}), info.get("current", {})
    lines = [
        f"REST latency: baseline `{base.get('commit')}` (ref {base.get('ref')}) vs current "
        f"tree (HEAD `{cur.get('head')}`, {cur.get('modified_files')} modified tracked files); "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; N={args.n} per GET "
        f"({min(args.rounds, args.n)} alternating rounds, {args.warmup} warm-up), "
        f"submit N={args.n_submit}, "
        f"{args.clients} clients x {args.per_client} req x {args.rounds_concurrent} rounds; "
        f"load average {info['loadavg_start'][0]:.1f} at start, "
        f"{info['loadavg_end'][0]:.1f} at end.",
        "",
        "| route | baseline median ms | baseline p90 ms | current median ms | current p90 ms "
        "| current/baseline | response bytes (b / c) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in out["rows"]:
        bm, bp = cell(row["baseline"])
        cm, cp = cell(row["current"])
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        name = row["route"] + (f" ({row['note']})" if row["note"] else "")
        size = " / ".join(str(row[k].get("bytes", "-")) for k in ("baseline", "current"))
        lines.append(f"| {name} | {bm} | {bp} | {cm} | {cp} | {ratio} | {size} |")
    lines += [
        "",
        "Ratios are of medians (< 1: current faster), except the concurrent row: req/s "
        "(> 1: current faster; its ms columns are median / p90 latency under load).",
        f"Listed after seeding (before the timed submissions): {out['seeded']}.",
    ]
    for note in out["notes"]:
        lines.append(f"- note: {note.splitlines()[0][:600]}")
    for err in out["errors"]:
        lines.append(f"- ERROR: {err}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref of the baseline")
    p.add_argument("--n", type=int, default=200, help="timed requests per GET route and server")
    p.add_argument("--n-submit", type=int, default=40, help="timed POST /jobs submissions")
    p.add_argument("--rounds", type=int, default=100, help="alternations per route (at most N)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--jobs", type=int, default=50, help="jobs seeded per server")
    p.add_argument("--schedules", type=int, default=5)
    p.add_argument("--runs", type=int, default=50, help="run records seeded per server")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=25)
    p.add_argument("--rounds-concurrent", type=int, default=8)
    p.add_argument("--start-timeout", type=float, default=180)
    p.add_argument(
        "--retry-wait",
        type=float,
        default=30,
        help="seconds before retrying what failed on current (-1: no retry)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(args)
    try:
        out = bench.run()
    except KeyboardInterrupt:
        print("interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
    print(markdown(out, args))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(out, args=vars(args)), indent=2))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
