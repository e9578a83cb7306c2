"""Owning (or borrowing) the lab's Dask cluster.

One :class:`ClusterManager` lives in the Jupyter server process, and one in any process that
calls :func:`lepton_lab.attach` outside the lab. It decides the cluster kind, starts it bound to
127.0.0.1 (or connects to a scheduler someone else runs), reports status, scales, and closes
only what it started.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Dict, Float, Integer, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from lepton_lab.cluster.errors import ClusterError
from lepton_lab.cluster.factory import (
    check_factory,
    class_name,
    factory_name,
    start_factory_cluster,
)
from lepton_lab.cluster.gpus import GpuProbe, probe_gpus
from lepton_lab.cluster.scheduler import scheduler_identity
from lepton_lab.cluster.security import LabCredentials, check_settings, client_security

log = logging.getLogger("lepton_lab.cluster")

#: what ``adapt`` passes on to ``distributed.Adaptive`` besides minimum and maximum
ADAPT_OPTIONS = ("interval", "wait_count", "target_duration")

#: Seconds the status (and the wait of a scale) gives the scheduler to answer: GET /cluster
#: says "unreachable" after that instead of waiting out Dask's connect timeout
STATUS_TIMEOUT = 10.0

#: Requested modes; anything else must be a scheduler address.
NAMED_MODES = ("auto", "local", "cuda")

_ADDRESS = re.compile(r"^(?:(tcp|tls|ucx|inproc|ws|wss)://)?[\w.\-\[\]:]+:\d+/?$")


def is_scheduler_address(value: str) -> bool:
    """True for ``tcp://host:port``-like strings (and bare ``host:port``)."""
    return bool(_ADDRESS.match(value.strip()))


@dataclass(frozen=True)
class ModeChoice:
    """The cluster kind to run (``local``, ``cuda`` or ``external``) and why."""

    kind: str
    reason: str
    address: str | None = None


def choose_mode(
    requested: str,
    probe: GpuProbe,
    cuda_installed: bool,
    factory: dict[str, Any] | None = None,
) -> ModeChoice:
    """Resolve a configured mode against what the machine has; raises on impossible asks.
    A cluster factory wins over ``auto``; with any other explicit mode it is a conflict."""
    requested = (requested or "auto").strip()
    if factory is not None:
        spec = check_factory(factory)
        if requested != "auto":
            raise ClusterError(
                f"both cluster_mode {requested!r} and cluster_factory "
                f"({factory_name(spec)}) are set; keep one"
            )
        return ModeChoice("factory", f"cluster_factory: {factory_name(spec)}")
    if requested == "auto":
        if probe.available and cuda_installed:
            return ModeChoice("cuda", f"{probe.reason}: Dask-CUDA cluster, one worker per GPU")
        if probe.available:
            return ModeChoice(
                "local",
                f"{probe.reason} but dask-cuda is not installed "
                "(pip install 'lepton-lab[cuda]'): CPU LocalCluster",
            )
        return ModeChoice("local", f"{probe.reason}: CPU LocalCluster")
    if requested == "local":
        return ModeChoice("local", "cluster_mode is 'local': CPU LocalCluster")
    if requested == "cuda":
        if not probe.available:
            raise ClusterError(f"cluster_mode is 'cuda' but {probe.reason}; use 'auto' or 'local'")
        if not cuda_installed:
            raise ClusterError(
                "cluster_mode is 'cuda' but dask-cuda is not installed: "
                "pip install 'lepton-lab[cuda]'"
            )
        return ModeChoice("cuda", f"cluster_mode is 'cuda' and {probe.reason}")
    if is_scheduler_address(requested):
        address = requested if "://" in requested else f"tcp://{requested}"
        return ModeChoice("external", f"connecting to the existing scheduler at {address}", address)
    raise ClusterError(
        f"cluster_mode {requested!r} is neither one of {', '.join(NAMED_MODES)} "
        "nor a scheduler address like tcp://host:8786"
    )


@dataclass
class _State:
    status: str = "stopped"  # stopped | starting | running | error | closed
    error: str | None = None
    choice: ModeChoice | None = None
    started_at: float | None = None
    ready_at: float | None = None
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100))


class ClusterManager(LoggingConfigurable):
    """Starts, watches, scales and stops one cluster. Blocking methods; call from threads.

    Configured as ``c.ClusterManager.*``. To run another kind of cluster (dask-gateway,
    dask-kubernetes...), subclass it, override :meth:`start_cluster` (and
    :meth:`max_workers`), and name the class in ``c.LeptonLab.cluster_manager_class``.
    """

    mode = Unicode(
        "auto",
        config=True,
        help="'auto' (Dask-CUDA when NVML finds GPUs, else CPU LocalCluster), 'local', 'cuda', "
        "or the address of an existing scheduler (tcp://host:8786) that the lab attaches to "
        "but never stops. An impossible value is reported in the cluster status and log "
        "(not silently replaced by another mode).",
    )
    n_workers = Integer(
        None, allow_none=True, config=True, help="Workers to start (default: Dask's choice)."
    )
    threads_per_worker = Integer(
        None, allow_none=True, config=True, help="Threads per worker (default: Dask's choice)."
    )
    memory_limit = Unicode(
        "auto", config=True, help="Memory limit per worker, e.g. '4GiB'; 'auto' splits RAM."
    )
    max_workers = Integer(32, config=True, help="Upper bound accepted by PATCH /cluster.")
    dashboard_address = Unicode(
        "127.0.0.1:8787", config=True, help="Where the Dask dashboard listens (loopback only)."
    )
    worker_profiler = Bool(
        False,
        config=True,
        help="Run Dask's statistical profiler in the workers (feeds the dashboard's Profile "
        "page). It samples every worker thread's stack every 10 ms, which cost 24 % of a "
        "Python-heavy Keras epoch (bench/bench_keras.py), so it is off unless asked for.",
    )
    factory = Dict(
        None,
        allow_none=True,
        config=True,
        help="Any Dask cluster class as the lab's cluster: {'module': 'dask_jobqueue', 'class': "
        "'SLURMCluster', 'args': [], 'kwargs': {...}} (dask-labextension's factory shape). "
        "Also read from Dask's config key lepton-lab.cluster.factory. Set as "
        "c.LeptonLab.cluster_factory.",
    )
    adapt = Dict(
        None,
        allow_none=True,
        config=True,
        help="Start with Dask's adaptive scaling on: {'minimum': 0, 'maximum': 8} (other keys "
        "of distributed.Adaptive, e.g. 'interval' or 'wait_count', pass through). Also read "
        "from Dask's config key lepton-lab.cluster.adapt. Set as c.LeptonLab.adapt.",
    )
    tls = Bool(
        True,
        config=True,
        help="Start the lab's own cluster with Dask's mutual TLS and a key pair made at start, "
        "so that only processes given its credentials (the lab's kernels, jobs and CLI, "
        "through the cluster file) can connect. Off: plain TCP that any local process can "
        "use (docs/guide/security.md). Also read from Dask's config key lepton-lab.cluster.tls "
        "(DASK_LEPTON_LAB__CLUSTER__TLS=False), which embedded clusters of scripts use.",
    )
    tls_dir = Unicode(
        "",
        config=True,
        help="Where the key pair of the lab's own cluster is written (a 0700 folder per "
        "cluster, removed at close); default: the state directory's tls/.",
    )
    security = Dict(
        None,
        allow_none=True,
        config=True,
        help="Dask TLS settings of a client for an existing cluster (mode = tls://host:port): "
        "{'tls_ca_file': ..., 'tls_client_cert': ..., 'tls_client_key': ...}, paths or PEM "
        "text. Kernels, jobs and the CLI get them through the cluster file. Set as "
        "c.LeptonLab.security.",
    )
    start_timeout = Float(120.0, config=True, help="Seconds to wait for the cluster to start.")
    scale_timeout = Float(60.0, config=True, help="Seconds PATCH /cluster waits for workers.")

    @default("factory")
    def _factory_from_dask_config(self) -> dict[str, Any] | None:
        import dask.config

        return dask.config.get("lepton-lab.cluster.factory", default=None)

    @default("tls")
    def _tls_from_dask_config(self) -> bool:
        import dask.config

        return bool(dask.config.get("lepton-lab.cluster.tls", default=True))

    @default("adapt")
    def _adapt_from_dask_config(self) -> dict[str, Any] | None:
        import dask.config

        return dask.config.get("lepton-lab.cluster.adapt", default=None)

    @validate("n_workers", "threads_per_worker", "max_workers")
    def _check_positive(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"ClusterManager.{proposal['trait'].name} must be >= 0, got {value}")
        return value

    def __init__(self, probe: GpuProbe | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe = probe
        self._state = _State()
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._cluster: Any = None  # the cluster object when we own it
        self._credentials: LabCredentials | None = None  # the TLS key pair of our own cluster
        self._client: Any = None
        self._adapt: dict[str, Any] | None = None  # the adaptive bounds while on
        # (stop event, thread) raising a gateway's adaptive minimum for waiting runs
        self._follower: tuple[threading.Event, threading.Thread] | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def probe(self) -> GpuProbe:
        return self._probe or probe_gpus()

    @property
    def kind(self) -> str | None:
        choice = self._state.choice
        return choice.kind if choice else None

    @property
    def owned(self) -> bool:
        """Whether the lab started this cluster (and so may scale and stop it)."""
        return self.kind in ("local", "cuda", "factory")

    @property
    def scheduler_address(self) -> str | None:
        if self._cluster is not None:
            return self._cluster.scheduler_address
        if self._client is not None:
            return self._client.scheduler.address
        return None

    def client_security(self) -> dict[str, str] | None:
        """TLS credentials another process needs to connect (what the cluster file holds):
        the key files of the lab's own cluster, the configured ``security`` of an existing
        one, the PEM text of a factory cluster that has them (dask-gateway's); else None."""
        from lepton_lab.cluster.factory import client_security as factory_security

        if self._credentials is not None:
            return self._credentials.client
        if self.kind == "external" and self.security:
            return dict(self.security)
        return factory_security(self._cluster) if self._cluster is not None else None

    @property
    def cluster(self) -> Any:
        """The Dask cluster object the lab started (None for an existing cluster)."""
        return self._cluster

    @property
    def client(self) -> Any:
        """The manager's own ``distributed.Client`` (None until running)."""
        return self._client

    @property
    def startup_seconds(self) -> float | None:
        s = self._state
        return None if s.ready_at is None or s.started_at is None else s.ready_at - s.started_at

    def start(self) -> None:
        """Start or connect; on failure the state holds a readable error and this raises."""
        with self._lock:
            if self._state.status in ("starting", "running"):
                return
            self._begin()
        self._start()

    def _begin(self) -> None:
        self._state.status = "starting"
        self._state.error = None
        self._state.started_at = time.monotonic()
        self._ready.clear()

    def _start(self) -> None:
        from distributed import Client

        try:
            choice = choose_mode(
                self.mode,
                self.probe,
                importlib.util.find_spec("dask_cuda") is not None,
                self.factory,
            )
            self._state.choice = choice
            if choice.kind == "external":
                try:
                    security = client_security(
                        check_settings(self.security) if self.security else None
                    )
                except ValueError as exc:
                    raise ClusterError(str(exc)) from None
                if security is None:
                    # the lab's own cluster, reached from its CLI or a kernel: the server
                    # named its credentials in the cluster file
                    security = _lab_file_security(choice.address)
                client = Client(choice.address, timeout=self.start_timeout, security=security)
            else:
                self._cluster = self.start_cluster(choice.kind)
                get_client = getattr(self._cluster, "get_client", None)
                # a cluster's own client carries its security (dask-gateway's TLS, say)
                client = get_client() if callable(get_client) else Client(self._cluster)
                if choice.kind != "factory":
                    # the lab's workers keep glibc's allocator defaults (LabNanny); this
                    # gives memory back once they are idle instead (docs/decisions/performance.md)
                    from lepton_lab.cluster.workers import IdleTrim

                    client.register_plugin(IdleTrim())
            client.subscribe_topic("all", self._on_scheduler_event)
            self._client = client
        except Exception as exc:  # noqa: BLE001 - the state must record any failure
            message = str(exc) if isinstance(exc, ClusterError) else f"{type(exc).__name__}: {exc}"
            root = _root_cause(exc)
            if root is not exc and str(root) and str(root) not in message:
                # "LabNanny failed to start." alone does not say why the worker died
                message += f" (because {type(root).__name__}: {root})"
            with self._lock:
                self._state.status = "error"
                self._state.error = message
            self._ready.set()
            log.error("Lepton Lab cluster failed to start: %s", message)
            self._close_quietly()
            raise ClusterError(message) from exc
        with self._lock:
            self._state.status = "running"
            self._state.ready_at = time.monotonic()
        if self.adapt and self.owned:
            try:
                self.set_adapt(**self.adapt)
            except (ValueError, TypeError, ClusterError) as exc:
                # the cluster runs at its fixed size; the status and the log say why
                self._state.error = f"the adapt setting was not applied: {exc}"
                log.error("Lepton Lab cluster: %s", self._state.error)
        self._ready.set()
        log.info(
            "Lepton Lab cluster ready in %.1f s: %s (%s)",
            self.startup_seconds,
            self.describe(),
            self._state.choice.reason,
        )

    def start_cluster(self, kind: str) -> Any:
        """Start the cluster the lab owns (``kind`` is ``local`` or ``cuda``, bound to
        127.0.0.1, or ``factory``); returns a Dask cluster object (``scheduler_address``,
        ``scale``, ``adapt``, ``close``)."""
        if kind == "factory":
            return start_factory_cluster(check_factory(self.factory))
        kwargs: dict[str, Any] = {
            "host": "127.0.0.1",
            "dashboard_address": self.dashboard_address,
            "memory_limit": self.memory_limit,
        }
        if self.n_workers is not None:
            kwargs["n_workers"] = self.n_workers
        if self.threads_per_worker is not None:
            kwargs["threads_per_worker"] = self.threads_per_worker
        if not self.worker_profiler:
            # merged into each nanny's copy of the dask config, so restarts keep it
            import dask.config

            kwargs["config"] = dask.config.merge(
                dask.config.config,
                {"distributed": {"worker": {"profile": {"enabled": False}}}},
            )
        if self.tls:
            # Only holders of this key pair can connect (lepton_lab.cluster.security)
            self._credentials = LabCredentials(self._tls_parent(), kind)
            kwargs["security"] = self._credentials.security()
            kwargs["protocol"] = "tls://"
        from lepton_lab.cluster.workers import LabNanny, keep_allocator_defaults

        if kind == "cuda":
            # Imported lazily: dask-cuda and the CUDA bindings exist only with the [cuda] extra.
            from dask_cuda import LocalCUDACluster

            # dask-cuda's worker_class is the Worker inside its own Nanny, so LabNanny cannot
            # be passed: the allocator setting is dropped through Dask's config instead
            keep_allocator_defaults()
            return LocalCUDACluster(resources={"GPU": 1}, **kwargs)
        from distributed import LocalCluster

        # a nanny whose worker never reports gives up by itself instead of waiting forever
        return LocalCluster(
            processes=True, worker_class=LabNanny, death_timeout=self.start_timeout, **kwargs
        )

    def _tls_parent(self) -> str:
        if self.tls_dir:
            return self.tls_dir
        from lepton_lab.config.settings import state_dir

        return str(state_dir() / "tls")

    def start_in_background(
        self, on_done: Callable[[ClusterManager], None] | None = None
    ) -> threading.Thread:
        """Start without blocking the caller (the server keeps serving while workers boot).

        ``on_done`` is called from the starting thread once the cluster runs or has failed.
        """

        def run() -> None:
            try:
                self._start()
            except ClusterError:
                pass  # recorded in the state and logged
            if on_done is not None:
                on_done(self)

        with self._lock:
            if self._thread is not None:
                return self._thread
            self._begin()
            self._thread = threading.Thread(target=run, name="lepton-cluster-start", daemon=True)
        self._thread.start()
        return self._thread

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the cluster is running (True) or failed/timed out (False)."""
        self._ready.wait(timeout)
        return self._state.status == "running"

    def close(self, timeout: float = 30) -> None:
        """Stop what the lab started; an external cluster is only disconnected from.

        A start still in progress is waited for first, so no half-started cluster outlives us.
        """
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(self.start_timeout)
        with self._lock:
            if self._state.status == "closed":
                return
            self._state.status = "closed"
        self._close_quietly(timeout)

    def _close_quietly(self, timeout: float = 30) -> None:
        self._stop_following()
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        self._adapt = None
        if client is not None:
            try:
                client.unsubscribe_topic("all")
                client.close(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - closing must not raise on the way out
                log.debug("closing the cluster client: %s", exc)
        if cluster is not None:
            try:
                try:
                    cluster.close(timeout=timeout)
                except TypeError:  # dask-gateway's close() takes no timeout
                    cluster.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the cluster: %s", exc)
        credentials, self._credentials = self._credentials, None
        if credentials is not None:
            credentials.remove()

    # -- observation -----------------------------------------------------------------------
    def _on_scheduler_event(self, event: Any) -> None:
        stamp, msg = event if isinstance(event, tuple) else (time.time(), event)
        action = msg.get("action") if isinstance(msg, dict) else None
        if action in ("add-worker", "remove-worker"):
            self._state.events.append(
                {
                    "time": float(stamp),
                    "action": action,
                    "worker": msg.get("worker"),
                    "reason": msg.get("stimulus_id") or msg.get("reason"),
                }
            )

    def describe(self) -> str:
        kind = self.kind
        n = len(scheduler_identity(self._client)["workers"]) if self._client else 0
        label = {
            "local": "CPU LocalCluster",
            "cuda": "Dask-CUDA LocalCUDACluster",
            "factory": class_name(self._cluster) if self._cluster is not None else "cluster",
            "external": "existing cluster",
        }.get(kind or "", "cluster")
        adapt = self._adapt
        bounds = f", adaptive {adapt['minimum']}..{adapt['maximum']}" if adapt else ""
        return f"{label} with {n} worker{'s' if n != 1 else ''}{bounds}"

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot: mode, addresses, workers with memory/CPU/GPU, totals, events."""
        s = self._state
        out: dict[str, Any] = {
            "mode": s.choice.kind if s.choice else None,
            "requested_mode": self.mode,
            "reason": s.choice.reason if s.choice else None,
            "status": s.status,
            "error": s.error,
            "owned": self.owned,
            "cluster_class": class_name(self._cluster) if self._cluster is not None else None,
            "adapt": None,
            "scheduler_address": None,
            "dashboard_link": None,
            "startup_seconds": self.startup_seconds,
            "max_workers": self.worker_limit(),
            "workers": [],
            "totals": {"workers": 0, "threads": 0, "memory_limit": 0, "memory_used": 0, "gpus": 0},
            "events": list(s.events),
        }
        client = self._client
        if s.status != "running" or client is None:
            return out
        try:
            info = scheduler_identity(client, timeout=STATUS_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - an unreachable scheduler is a status, not a crash
            out["status"] = "unreachable"
            out["error"] = f"{type(exc).__name__}: {exc}"
            return out
        # the cluster's own address is the one clients use: a dask-gateway scheduler calls
        # itself tls://<internal host>, its clients reach it through gateway://<proxy>/<name>
        own = self._cluster.scheduler_address if self._cluster is not None else None
        out["scheduler_address"] = own or info.get("address") or self.scheduler_address
        out["dashboard_link"] = self._dashboard_link(info)
        if self._adapt is not None or self.kind == "external":
            # an existing cluster may have been made adaptive by its lab: it says so there
            from lepton_lab.cluster.adaptive import adapt_status

            out["adapt"] = adapt_status(client, self._adapt)
        workers = [_worker_view(addr, w) for addr, w in info.get("workers", {}).items()]
        workers.sort(key=lambda w: (str(w["name"]), w["address"]))
        out["workers"] = workers
        out["totals"] = {
            "workers": len(workers),
            "threads": sum(w["nthreads"] for w in workers),
            "memory_limit": sum(w["memory_limit"] or 0 for w in workers),
            "memory_used": sum(w["memory_used"] or 0 for w in workers),
            "gpus": sum(1 for w in workers if w["gpu"]),
        }
        return out

    def _dashboard_link(self, info: dict[str, Any]) -> str | None:
        if "dashboard" not in info.get("services", {}):
            return None
        try:
            return self._client.dashboard_link
        except Exception:  # noqa: BLE001 - a missing dashboard is not an error
            return None

    # -- control ---------------------------------------------------------------------------
    def worker_limit(self) -> int:
        """How many workers scaling may ask for: one per GPU on Dask-CUDA."""
        if self.kind == "cuda":
            return max(self.probe.count, 1)
        return self.max_workers

    def scale(self, n: int, timeout: float | None = None) -> dict[str, Any]:
        """Scale an owned cluster to ``n`` workers and wait until the scheduler sees them."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"workers must be an integer, not {type(n).__name__}")
        if n < 0 or n > self.worker_limit():
            raise ValueError(f"workers must be between 0 and {self.worker_limit()}, got {n}")
        self._check_owned()
        if self._adapt is not None:
            self._stop_adapt()  # a fixed size turns adaptive scaling off
        self._cluster.scale(n)
        timeout = self.scale_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(scheduler_identity(self._client, timeout=STATUS_TIMEOUT)["workers"]) == n:
                return self.status()
            time.sleep(0.1)
        raise ClusterError(f"the cluster did not reach {n} workers within {timeout:.0f} s")

    def _check_owned(self) -> None:
        if self._state.status != "running":
            raise ClusterError(f"the cluster is {self._state.status}, not running; try again later")
        if not self.owned:
            raise ClusterError(
                "this lab is attached to an existing cluster it does not own; "
                "scale it with the tool that started it (dask-jobqueue, dask-kubernetes, ...)"
            )

    def set_adapt(self, minimum: int = 0, maximum: int | None = None, **options: Any) -> Any:
        """Turn on Dask's adaptive scaling between ``minimum`` and ``maximum`` workers
        (``options`` such as ``interval`` or ``wait_count`` go to ``distributed.Adaptive``).

        Dask ``Cluster`` classes get :class:`~lepton_lab.cluster.adaptive.LabAdaptive`, which
        also grows for the workers an ``ll.fit`` waits for; other classes (dask-gateway's)
        use their own ``adapt``, which sizes by task load only."""
        if maximum is None:
            raise ValueError("adapt needs a 'maximum'")
        unknown = sorted(set(options) - set(ADAPT_OPTIONS))
        if unknown:
            raise ValueError(
                f"adapt does not take {', '.join(unknown)}; it takes minimum, maximum, "
                f"{', '.join(ADAPT_OPTIONS)}"
            )
        for name, value in (("minimum", minimum), ("maximum", maximum)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"adapt {name} must be a non-negative integer, got {value!r}")
        if minimum > maximum:
            raise ValueError(f"adapt minimum ({minimum}) is more than its maximum ({maximum})")
        if maximum > self.worker_limit():
            raise ValueError(f"adapt maximum must be at most {self.worker_limit()}, got {maximum}")
        self._check_owned()
        from distributed.deploy import Cluster

        from lepton_lab.cluster.adaptive import ADAPT_KEY, LabAdaptive

        self._stop_following()
        if isinstance(self._cluster, Cluster):
            adaptive = self._cluster.adapt(
                Adaptive=LabAdaptive, minimum=minimum, maximum=maximum, **options
            )
        else:
            adaptive = self._cluster.adapt(minimum=minimum, maximum=maximum, **options)
            self._follow_requests(minimum, maximum, options)
        self._adapt = {"minimum": minimum, "maximum": maximum}
        self._client.set_metadata(ADAPT_KEY, dict(self._adapt))
        log.info("Lepton Lab cluster: adaptive scaling on, %d..%d workers", minimum, maximum)
        return adaptive

    def _follow_requests(self, minimum: int, maximum: int, options: dict[str, Any]) -> None:
        """For a cluster with its own adaptivity (dask-gateway's, decided in the gateway from
        task load), raise its minimum to the workers runs are waiting for, and lower it back
        when they are gone: the gateway cannot read the runs' requests, this process can."""
        stop = threading.Event()

        def follow() -> None:
            applied = minimum
            while not stop.wait(1.0):
                want = min(max(minimum, self._requested_workers()), maximum)
                if want == applied or self._cluster is None:
                    continue
                try:
                    self._cluster.adapt(minimum=want, maximum=maximum, **options)
                    applied = want
                except Exception as exc:  # noqa: BLE001 - retried on the next tick
                    log.warning("Lepton Lab cluster: raising the adaptive minimum: %s", exc)

        self._follower = (stop, threading.Thread(target=follow, name="lepton-adapt", daemon=True))
        self._follower[1].start()

    def _stop_following(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower[0].set()
            follower[1].join(5)

    def _stop_adapt(self) -> None:
        from distributed.deploy import Cluster

        self._stop_following()
        from lepton_lab.cluster.adaptive import ADAPT_KEY

        if isinstance(self._cluster, Cluster):
            adaptive = getattr(self._cluster, "_adaptive", None)
            if adaptive is not None:
                adaptive.stop(reason="lepton-lab-fixed-size")
        # dask-gateway: a scale() call turns its server-side adaptivity off by itself
        self._adapt = None
        self._client.set_metadata(ADAPT_KEY, None)
        log.info("Lepton Lab cluster: adaptive scaling off")

    def _requested_workers(self) -> int:
        from lepton_lab.cluster.adaptive import requested_workers

        return requested_workers(self._client)


def _lab_file_security(address: str) -> Any:
    import os

    from lepton_lab.cluster.security import cluster_file_security
    from lepton_lab.config.settings import ENV_CLUSTER_FILE

    state_file = os.environ.get(ENV_CLUSTER_FILE)
    return cluster_file_security(state_file, address) if state_file else None


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain (``raise ... from`` or raised while handling)."""
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def _worker_view(address: str, w: dict[str, Any]) -> dict[str, Any]:
    metrics = w.get("metrics", {}) or {}
    gpu_static = w.get("gpu") or {}
    gpu_live = metrics.get("gpu") or {}
    gpu = None
    if gpu_static or gpu_live:
        gpu = {
            "name": gpu_static.get("name"),
            "utilization": gpu_live.get("utilization"),
            "memory_used": gpu_live.get("memory-used"),
            "memory_total": gpu_static.get("memory-total"),
        }
    return {
        "name": str(w.get("name", address)),
        "address": address,
        "nthreads": int(w.get("nthreads", 0)),
        "memory_limit": int(w.get("memory_limit") or 0),
        "memory_used": int(metrics.get("memory") or 0),
        "cpu": float(metrics.get("cpu") or 0.0),
        "status": w.get("status", "unknown"),
        "gpu": gpu,
    }
