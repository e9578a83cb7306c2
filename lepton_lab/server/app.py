"""The Lepton Lab jupyter-server extension (``c.LeptonLab.*``).

On start it begins the cluster in the background (the server answers at once; the sidebar shows
"starting"), and when the cluster is ready it exports the scheduler address to the environment
of every kernel the server starts afterwards. Kernels started earlier find it through a state
file named in their environment. On stop it closes what it started and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, TraitError, Unicode, default, validate

from lepton_lab.cluster.manager import ClusterManager, ClusterSpec
from lepton_lab.config import settings


class LeptonLab(ExtensionApp):
    """Owns (or connects to) the lab's Dask cluster and serves the Lepton Lab REST API."""

    name = "lepton_lab"
    load_other_extensions = True

    cluster_mode = Unicode(
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
        "page; costs about a quarter of a Python-heavy training step's time).",
    )
    cluster_start_timeout = Float(120.0, config=True, help="Seconds to wait for the cluster.")
    scale_timeout = Float(60.0, config=True, help="Seconds PATCH /cluster waits for workers.")
    job_concurrency = Integer(
        None,
        allow_none=True,
        config=True,
        help="Jobs run at once; more wait as queued (default: one per GPU, or 2 on CPU).",
    )
    job_executor = Unicode(
        "local",
        config=True,
        help="Default executor of jobs that name none: 'local' (a papermill process on this "
        "machine) or 'dask' (a task on a cluster worker; the notebook travels with it).",
    )
    run_jobs = Bool(
        True,
        config=True,
        help="Run the job queue and fire schedules in this server (one process at a time does, "
        "by a lease in the database; the `lepton-lab scheduler` daemon can do it instead).",
    )
    state_dir = Unicode(config=True, help="Directory for the store, artifacts and outputs.")
    database_url = Unicode(config=True, help="SQLAlchemy URL of the store (SQLite by default).")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(settings.state_dir())

    @default("database_url")
    def _default_database_url(self) -> str:
        return settings.database_url(state=Path(self.state_dir))

    @validate("job_executor")
    def _check_executor(self, proposal: dict[str, Any]) -> str:
        from lepton_lab.jobs.executors import EXECUTORS

        if proposal["value"] not in EXECUTORS:
            raise TraitError(f"LeptonLab.job_executor must be one of {EXECUTORS}")
        return proposal["value"]

    @validate("n_workers", "threads_per_worker", "max_workers", "job_concurrency")
    def _check_positive(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"LeptonLab.{proposal['trait'].name} must be >= 0, got {value}")
        return value

    def initialize_settings(self) -> None:
        from lepton_lab.store.database import open_store

        # Kernels (and their ll.fit drivers) write runs where this server reads them.
        self._saved_environ: dict[str, str | None] = {}
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)  # a configured one may not exist
        self._export(settings.ENV_STATE_DIR, self.state_dir)
        self._export(settings.ENV_DATABASE_URL, self.database_url)
        self.store = open_store(self.database_url)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lepton-api")
        self.cluster_manager = ClusterManager(
            ClusterSpec(
                mode=self.cluster_mode,
                n_workers=self.n_workers,
                threads_per_worker=self.threads_per_worker,
                memory_limit=self.memory_limit,
                dashboard_address=self.dashboard_address,
                max_workers=self.max_workers,
                start_timeout=self.cluster_start_timeout,
                worker_profiler=self.worker_profiler,
            )
        )
        runtime_dir = Path(self.serverapp.runtime_dir)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_file = runtime_dir / f"lepton-lab-cluster-{os.getpid()}.json"
        # Set before any kernel can start, so every kernel can find the cluster.
        self._export(settings.ENV_CLUSTER_FILE, str(self.cluster_file))
        self._write_cluster_file({"status": "starting"})
        self.log.info("Lepton Lab: starting the cluster (cluster_mode=%s)", self.cluster_mode)
        self.cluster_manager.start_in_background(on_done=self._publish_cluster)
        self._start_jobs()

    def _start_jobs(self) -> None:
        from lepton_lab.jobs.service import JobService
        from lepton_lab.store.jobs import open_job_store

        self.job_store = open_job_store(self.database_url)
        self.job_service = JobService(
            self.job_store,
            Path(self.state_dir),
            concurrency=self.job_concurrency,
            dask_client=self._cluster_client,
            kernels=self.kernel_names,
            name="server",
        )
        if self.run_jobs:
            self.job_service.start()
            self.log.info(
                "Lepton Lab: job queue on (%d at once, default executor %s)",
                self.job_service.concurrency,
                self.job_executor,
            )

    def kernel_names(self) -> set[str]:
        return set(self.serverapp.kernel_spec_manager.find_kernel_specs())

    @property
    def root_dir(self) -> Path:
        """Notebook paths in job requests are resolved inside, and confined to, this."""
        return Path(self.serverapp.root_dir).resolve()

    def _cluster_client(self) -> Any:
        client = self.cluster_manager.client
        if client is None:
            raise RuntimeError("the lab's Dask cluster is not running")
        return client

    def initialize_handlers(self) -> None:
        from lepton_lab.server.handlers import ROUTES

        self.handlers.extend(ROUTES)

    def _publish_cluster(self, manager: ClusterManager) -> None:
        status = manager.status()
        if status["status"] == "running":
            address = status["scheduler_address"]
            self._export(settings.ENV_SCHEDULER_ADDRESS, address)
            # Plain `distributed.Client()` in a kernel then finds the lab's cluster too.
            if "DASK_SCHEDULER_ADDRESS" not in os.environ:
                self._export("DASK_SCHEDULER_ADDRESS", address)
            self.log.info(
                "Lepton Lab: %s at %s, ready %.1f s after start (%s); dashboard %s",
                manager.describe(),
                address,
                status["startup_seconds"] or 0.0,
                status["reason"],
                status["dashboard_link"],
            )
        else:
            self.log.error("Lepton Lab: the cluster did not start: %s", status["error"])
        self._write_cluster_file(
            {
                "status": status["status"],
                "error": status["error"],
                "mode": status["mode"],
                "scheduler_address": status["scheduler_address"],
                "dashboard_link": status["dashboard_link"],
                "server_pid": os.getpid(),
            }
        )

    def _export(self, name: str, value: str) -> None:
        """Set a variable for the kernels this server starts; undone when the server stops."""
        self._saved_environ.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _write_cluster_file(self, state: dict[str, Any]) -> None:
        tmp = self.cluster_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.chmod(tmp, 0o600)
        tmp.replace(self.cluster_file)

    async def stop_extension(self) -> None:
        self.log.info("Lepton Lab: stopping (the cluster is closed only if the lab started it)")
        loop = asyncio.get_running_loop()
        if self.run_jobs:
            await loop.run_in_executor(None, self.job_service.close)
        await loop.run_in_executor(None, self.cluster_manager.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
        for name, old in self._saved_environ.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self.cluster_file.unlink(missing_ok=True)


main = launch_new_instance = LeptonLab.launch_instance
