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
from traitlets import Bool, Dict, Integer, List, TraitError, Type, Unicode, default, validate

from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.config import settings
from lepton_lab.config.files import private_dir
from lepton_lab.metering.config import parse_prices
from lepton_lab.server.openapi import openapi_document
from lepton_lab.services.cluster import ClusterService
from lepton_lab.services.deployments import DeploymentService
from lepton_lab.services.jobs import JobService
from lepton_lab.services.lab import LabServices
from lepton_lab.services.models import ModelService
from lepton_lab.services.notifications import NotificationService
from lepton_lab.services.runs import RunService
from lepton_lab.services.schedules import ScheduleService
from lepton_lab.services.usage import UsageService

#: ``c.LeptonLab.<old name>`` settings of the cluster, now ``c.ClusterManager.<new name>``;
#: still honoured (with a warning) so existing config files keep working.
LEGACY_CLUSTER_SETTINGS = {
    "cluster_mode": "mode",
    "n_workers": "n_workers",
    "threads_per_worker": "threads_per_worker",
    "memory_limit": "memory_limit",
    "max_workers": "max_workers",
    "dashboard_address": "dashboard_address",
    "worker_profiler": "worker_profiler",
    "cluster_start_timeout": "start_timeout",
    "scale_timeout": "scale_timeout",
}

#: ``c.LeptonLab.<name>`` settings that are documented under that name and configure the
#: ClusterManager (``c.ClusterManager.<new name>`` works too)
CLUSTER_SETTINGS = {"cluster_factory": "factory", "adapt": "adapt", "security": "security"}

#: Dask's config (as environment variables) of a client with TLS credentials: a plain
#: ``distributed.Client()`` in a kernel reads them, like ``ll.attach()`` reads the cluster file
DASK_TLS_ENV = {
    "tls_ca_file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
    "tls_client_cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
    "tls_client_key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
}


class LeptonLab(ExtensionApp):
    """Owns (or connects to) the lab's Dask cluster and serves the Lepton Lab REST API."""

    name = "lepton_lab"
    load_other_extensions = True
    classes = [ClusterManager]

    #: (old, new) names of the settings this server was given the deprecated way
    deprecated_settings: tuple[tuple[str, str], ...] = ()

    cluster_manager_class = Type(
        ClusterManager,
        klass=ClusterManager,
        config=True,
        help="The class that starts (or connects to) the lab's cluster; configure it as "
        "c.ClusterManager.* (mode, n_workers, memory_limit...). Subclass it for other kinds "
        "of clusters.",
    )
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
    artifact_dir = Unicode(
        "",
        config=True,
        help="Where registered models' artifacts go (under models/): a path or any fsspec URL "
        "(default: the state directory's artifacts/). Exported to kernels and jobs.",
    )
    mlflow_tracking_uri = Unicode(
        "",
        config=True,
        help="Mirror every registered model version to this MLflow tracking/registry URI "
        "(needs the [mlflow] extra). Exported to kernels and jobs; the environment variable "
        "LEPTON_LAB_MLFLOW_TRACKING_URI does the same without a server.",
    )
    database_url = Unicode(config=True, help="SQLAlchemy URL of the store (SQLite by default).")
    prices = Dict(
        config=True,
        help="Prices that turn usage into cost in reports: {'cpu_hour': 0.05, 'gpu_hour': "
        "{'H100': 2.5, 'default': 1.0}, 'gb_month': 0.02}. A gpu_hour key matches GPU model "
        "names that contain it. Without prices, reports show units only.",
    )
    notifications = List(
        config=True,
        help="The lab's notification rules, for every job (or the ones they choose): "
        "[{'on': ['failed', 'timed_out'], 'channel': 'email', 'to': ['team@example.com'], "
        "'tags': ['nightly']}, {'on': ['late'], 'after': '2h', 'channel': 'webhook', 'url': "
        "'https://hooks.slack.com/...', 'kinds': ['schedule']}]. See docs/guide/notifications.md.",
    )
    smtp = Dict(
        config=True,
        help="The SMTP server of email notifications: {'host', 'port', 'starttls', 'ssl', "
        "'username', 'password_env' (the name of the environment variable holding the "
        "password; never the password itself), 'sender'}.",
    )
    notify_in_lab = Bool(
        True,
        config=True,
        help="Show a notification in the user's open labs when a job they started, or a run "
        "a notebook started, ends.",
    )
    retention = Dict(
        config=True,
        help="How long to keep job outputs, run checkpoints and model versions: {'jobs': "
        "'90d', 'runs': '180d', 'models': '365d'} (s, m, h, d, w). Older files are deleted "
        "by the service that holds the job lease; their usage records stay, and model "
        "versions with an alias are never deleted.",
    )

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(settings.state_dir())

    @default("database_url")
    def _default_database_url(self) -> str:
        return settings.database_url(state=Path(self.state_dir))

    @validate("job_executor")
    def _check_executor(self, proposal: dict[str, Any]) -> str:
        from lepton_lab.jobs.plugins import executor_names

        names = executor_names()
        if proposal["value"] not in names:
            raise TraitError(f"LeptonLab.job_executor must be one of {', '.join(names)}")
        return proposal["value"]

    @validate("prices", "retention")
    def _check_metering(self, proposal: dict[str, Any]) -> dict[str, Any]:
        """Checked by the parsers the CLI and the services use, so all say the same."""
        from lepton_lab.metering.config import parse_prices, parse_retention

        name = proposal["trait"].name
        check = parse_prices if name == "prices" else parse_retention
        try:
            check(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"LeptonLab.{name}: {exc}") from None
        return proposal["value"]

    @validate("notifications")
    def _check_notifications(self, proposal: dict[str, Any]) -> list[Any]:
        from lepton_lab.contract import RequestError, parse
        from lepton_lab.contract.notifications import NotifyRule

        for i, rule in enumerate(proposal["value"]):
            try:
                parse(NotifyRule, rule)
            except RequestError as exc:
                raise TraitError(f"LeptonLab.notifications[{i}]: {exc}") from None
        return proposal["value"]

    @validate("smtp")
    def _check_smtp(self, proposal: dict[str, Any]) -> dict[str, Any]:
        known = {"host", "port", "starttls", "ssl", "username", "password_env", "sender"}
        unknown = sorted(set(proposal["value"]) - known)
        if unknown:
            raise TraitError(
                f"LeptonLab.smtp: unknown key(s) {', '.join(unknown)}; accepted: "
                + ", ".join(sorted(known))
                + (
                    " (give the password's variable name as password_env)"
                    if "password" in unknown
                    else ""
                )
            )
        return proposal["value"]

    @validate("job_concurrency")
    def _check_positive(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"LeptonLab.{proposal['trait'].name} must be >= 0, got {value}")
        return value

    def initialize_settings(self) -> None:
        from lepton_lab.store import StoreUnavailable, StoreVersionError, open_store

        # Kernels (and their ll.fit drivers) write runs where this server reads them.
        self._saved_environ: dict[str, str | None] = {}
        private_dir(self.state_dir)  # a configured one may not exist yet
        self._warn_if_shared(Path(self.state_dir))
        self._export(settings.ENV_STATE_DIR, self.state_dir)
        self._export(settings.ENV_DATABASE_URL, self.database_url)
        if self.artifact_dir:
            self._export(settings.ENV_ARTIFACT_DIR, self.artifact_dir)
        if self.mlflow_tracking_uri:
            self._export(settings.ENV_MLFLOW_TRACKING_URI, self.mlflow_tracking_uri)
        if self.prices:
            self._export(settings.ENV_PRICES, json.dumps(self.prices))
        if self.retention:
            self._export(settings.ENV_RETENTION, json.dumps(self.retention))
        # the job service and kernels (their runs' messages) read these
        if self.notifications:
            self._export(settings.ENV_NOTIFICATIONS, json.dumps(self.notifications))
        if self.smtp:
            self._export(settings.ENV_SMTP, json.dumps(self.smtp))
        if not self.notify_in_lab:
            self._export("LEPTON_LAB_NOTIFY_IN_LAB", "0")
        try:  # links in messages; the URL has no token (the reader logs in)
            self._export(settings.ENV_SERVER_URL, self.serverapp.connection_url)
        except Exception:  # noqa: BLE001 - no URL (yet): messages go without a link
            pass
        try:
            self.store = open_store(self.database_url)  # upgrades an older schema in place
        except (StoreVersionError, StoreUnavailable) as exc:
            # one line that says why (an unreachable database: its URL without the password)
            self.log.error("Lepton Lab: not started: %s", exc)
            raise
        for old, new in self.deprecated_settings:
            self.log.warning(
                "Lepton Lab: c.LeptonLab.%s is deprecated; use c.ClusterManager.%s", old, new
            )
        self.cluster_manager = self.cluster_manager_class(parent=self)
        self._proxy_dashboard()
        runtime_dir = Path(self.serverapp.runtime_dir)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_file = runtime_dir / f"lepton-lab-cluster-{os.getpid()}.json"
        # Set before any kernel can start, so every kernel can find the cluster.
        self._export(settings.ENV_CLUSTER_FILE, str(self.cluster_file))
        self._write_cluster_file({"status": "starting"})
        self.log.info("Lepton Lab: starting the cluster (mode=%s)", self.cluster_manager.mode)
        self.cluster_manager.start_in_background(on_done=self._publish_cluster)
        self._start_jobs()
        self.services = self._services()
        ended = self.services.deployments.reconcile()
        if ended:
            self.log.warning(
                "Lepton Lab: %d deployment(s) had lost their supervisor: marked failed (%s)",
                len(ended),
                ", ".join(ended),
            )

    def _load_config(self, cfg: Any, section_names: Any = None, traits: Any = None) -> None:
        """Move cluster settings given the old way (``c.LeptonLab.n_workers``) to the
        ClusterManager's section before traitlets reads them; a setting given both ways keeps
        the new one. Without this, traitlets would also warn that LeptonLab does not know them.
        """
        moved = list(self.deprecated_settings)
        if "LeptonLab" in cfg:
            section = cfg["LeptonLab"]
            for name, new in CLUSTER_SETTINGS.items():
                if name in section:
                    value = section.pop(name)
                    if new not in cfg.ClusterManager:
                        cfg.ClusterManager[new] = value
            for old, new in LEGACY_CLUSTER_SETTINGS.items():
                if old in section:
                    value = section.pop(old)
                    if new not in cfg.ClusterManager:
                        cfg.ClusterManager[new] = value
                    if (old, new) not in moved:
                        moved.append((old, new))
        self.deprecated_settings = tuple(moved)  # this instance's own
        super()._load_config(cfg, section_names=section_names, traits=traits)

    def _services(self) -> LabServices:
        root, kernels, executor = self.root_dir, self.kernel_names, self.job_executor
        jobs = JobService(self.store, Path(self.state_dir), root, kernels, executor)
        return LabServices(
            cluster=ClusterService(
                self.cluster_manager,
                self.serverapp.kernel_spec_manager.get_all_specs,
                executor,
                self.features,
            ),
            runs=RunService(self.store, lambda: self.cluster_manager.client),
            jobs=jobs,
            schedules=ScheduleService(jobs),
            models=ModelService(self.store, self.artifact_dir or None),
            deployments=DeploymentService(
                self.store, Path(self.state_dir), self.artifact_dir or None
            ),
            usage=UsageService(self.store, parse_prices(self.prices)),
            notifications=NotificationService(self.store, Path(self.state_dir)),
            pool=ThreadPoolExecutor(max_workers=4, thread_name_prefix="lepton-api"),
            openapi=openapi_document,
        )

    def features(self) -> dict[str, bool]:
        """What this lab can do beyond the basics, for UIs to show or hide."""
        from lepton_lab.cluster.gpus import probe_gpus

        return {
            "job_queue": self.run_jobs,
            "gpu": probe_gpus().available,
            "cluster_scaling": self.cluster_manager.owned,
        }

    def _start_jobs(self) -> None:
        from lepton_lab.jobs.dispatcher import Dispatcher

        self.dispatcher = Dispatcher(
            self.store,
            Path(self.state_dir),
            concurrency=self.job_concurrency,
            dask_client=self._cluster_client,
            kernels=self.kernel_names,
            name="server",
        )
        if self.run_jobs:
            self.dispatcher.start()
            self.log.info(
                "Lepton Lab: job queue on (%d at once, default executor %s)",
                self.dispatcher.concurrency,
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
        security = manager.client_security() if status["status"] == "running" else None
        if status["status"] == "running":
            address = status["scheduler_address"]
            self._export(settings.ENV_SCHEDULER_ADDRESS, address)
            # Plain `distributed.Client()` in a kernel then finds the lab's cluster too,
            # with its TLS credentials when it has some (files, not a gateway's PEM text)
            paths = security is not None and not any("\n" in v for v in security.values())
            if "DASK_SCHEDULER_ADDRESS" not in os.environ and (security is None or paths):
                self._export("DASK_SCHEDULER_ADDRESS", address)
                if paths:
                    for name, variable in DASK_TLS_ENV.items():
                        if name in security:
                            self._export(variable, security[name])
                    self._export("DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "True")
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
                "cluster_class": status["cluster_class"],
                "server_pid": os.getpid(),
                # PEM text; the file is 0600 in the server's runtime directory
                "security": security,
            }
        )

    def _proxy_dashboard(self) -> None:
        """Dashboard links (status, sidebar, widgets, ``client.dashboard_link`` in kernels)
        go through this server's URL, so they open where 127.0.0.1 is not the browser's
        machine (Binder, JupyterHub): Dask formats its own ``distributed.dashboard.link``."""
        import dask.config

        from lepton_lab.cluster.dashboard import proxied_dashboard_link, user_dashboard_link

        link = proxied_dashboard_link(self.serverapp.base_url, self.cluster_manager.mode)
        if link is not None:
            self._export("DASK_DISTRIBUTED__DASHBOARD__LINK", link)
            # undone at stop: a second server in this process (tests) starts from Dask's own
            self._dashboard_config = dask.config.set({"distributed.dashboard.link": link})
        elif user_dashboard_link() is not None:
            self.log.info(
                "Lepton Lab: keeping your distributed.dashboard.link %s", user_dashboard_link()
            )

    def _warn_if_shared(self, folder: Path) -> None:
        """A state folder that others may enter exposes the store and job outputs."""
        try:
            mode = folder.stat().st_mode & 0o777
        except OSError:
            return
        if mode & 0o077:
            self.log.warning(
                "Lepton Lab: the state directory %s is readable by others (mode %o): run "
                "chmod 700 on it to keep the store, job outputs and cluster keys private",
                folder,
                mode,
            )

    def _export(self, name: str, value: str) -> None:
        """Set a variable for the kernels this server starts; undone when the server stops."""
        self._saved_environ.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _write_cluster_file(self, state: dict[str, Any]) -> None:
        tmp = self.cluster_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # created 0600, never readable by others even for a moment (it may hold TLS keys)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(state))
        tmp.replace(self.cluster_file)

    async def stop_extension(self) -> None:
        """Close what started, in reverse order; a start that failed part way (a database
        from a newer release, say) leaves less to close, and the server still shuts down."""
        self.log.info("Lepton Lab: stopping (the cluster is closed only if the lab started it)")
        loop = asyncio.get_running_loop()
        dispatcher = getattr(self, "dispatcher", None)
        if dispatcher is not None and self.run_jobs:
            await loop.run_in_executor(None, dispatcher.close)
        manager = getattr(self, "cluster_manager", None)
        if manager is not None:
            await loop.run_in_executor(None, manager.close)
        services = getattr(self, "services", None)
        if services is not None:
            # the deployments this server supervises stop with it, and free their ports
            await loop.run_in_executor(None, services.deployments.close)
            services.pool.shutdown(wait=False, cancel_futures=True)
        dashboard_config = getattr(self, "_dashboard_config", None)
        if dashboard_config is not None:
            dashboard_config.__exit__(None, None, None)
        for name, old in getattr(self, "_saved_environ", {}).items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        cluster_file = getattr(self, "cluster_file", None)
        if cluster_file is not None:
            cluster_file.unlink(missing_ok=True)


main = launch_new_instance = LeptonLab.launch_instance
