"""The deployments facade: start, list, look up, stop, read logs. REST and the sidebar call
it in the lab's server, which supervises the deployments it starts; the CLI reads and stops
any deployment through the same store."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from lepton_lab.contract import Conflict, NotFound, RequestError
from lepton_lab.contract.runs import StopAccepted
from lepton_lab.contract.serving import (
    FINAL_DEPLOYMENT_STATUSES,
    Deployment,
    DeploymentList,
    DeploymentLogQuery,
    DeploymentLogs,
    DeploymentQuery,
    DeploymentRequest,
)
from lepton_lab.models.registry import ModelRegistry
from lepton_lab.serving import supervisor
from lepton_lab.store import Store, UnknownDeployment

#: The most log bytes one ``GET .../logs`` answers; poll again with ``next``.
LOG_PAGE = 256 << 10


class DeploymentService:
    """Deployments of one store; those this process starts are supervised from it."""

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        artifact_dir: str | None = None,
        owner: str = "server",
    ) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.registry = ModelRegistry(store, artifact_dir)
        self.owner = owner
        self._supervisors: dict[str, supervisor.Supervisor] = {}
        self._lock = threading.Lock()

    def start(self, request: DeploymentRequest) -> Deployment:
        """Start serving a version; ``starting`` at once, ``ready`` once its model answers."""
        if importlib.util.find_spec("mlserver") is None:
            raise RequestError(
                "this lab cannot serve models: MLServer is not installed "
                "(pip install 'lepton-lab[serving]')",
                status=409,
            )
        handle = supervisor.start(
            self.store, request, self.owner, registry=self.registry, state=self.state_dir
        )
        with self._lock:
            self._supervisors[handle.id] = handle
        return self.get(handle.id)

    def record(self, deployment_id: str) -> dict:
        try:
            return self.store.get_deployment(deployment_id)
        except UnknownDeployment as exc:
            raise NotFound(str(exc)) from None

    def get(self, deployment_id: str) -> Deployment:
        self.reconcile()
        return view(self.record(deployment_id))

    def list(self, query: DeploymentQuery | None = None) -> DeploymentList:
        query = query or DeploymentQuery()
        # a kernel or `lepton-lab serve` that died took its model server with it: say so now
        # rather than list a dead endpoint as ready until the next server start
        self.reconcile()
        rows = self.store.list_deployments(query.status, query.limit)
        return DeploymentList(deployments=[view(r) for r in rows])

    def stop(self, deployment_id: str) -> StopAccepted:
        """Ask the deployment's supervisor (this process or another) to stop it; its ports
        are free once its status is ``stopped``."""
        try:
            record = self.store.request_deployment_stop(deployment_id)
        except UnknownDeployment as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        with self._lock:
            handle = self._supervisors.get(deployment_id)
        if handle is not None:
            handle.request_stop()  # at once, not at its next look at the store
        return StopAccepted(id=deployment_id, status=record["status"])

    def logs(self, deployment_id: str, query: DeploymentLogQuery | None = None) -> DeploymentLogs:
        query = query or DeploymentLogQuery()
        record = self.record(deployment_id)
        data = b""
        try:
            with open(record["log_path"], "rb") as f:
                f.seek(query.offset)
                data = f.read(LOG_PAGE)
        except FileNotFoundError:
            pass
        complete = record["status"] in FINAL_DEPLOYMENT_STATUSES and len(data) < LOG_PAGE
        return DeploymentLogs(
            id=deployment_id,
            offset=query.offset,
            next=query.offset + len(data),
            text=data.decode("utf-8", "replace"),
            complete=complete,
        )

    def reconcile(self) -> list[str]:
        """End deployments left live by a supervisor that died (a killed server, kernel or
        ``lepton-lab serve`` on this host); cheap: one query and a pid check per live row."""
        return supervisor.reconcile(self.store)

    def close(self) -> None:
        """Stop every deployment this process supervises (the server is shutting down)."""
        with self._lock:
            handles = list(self._supervisors.values())
        for handle in handles:
            handle.request_stop()
        for handle in handles:
            handle.stop()


def view(record: dict) -> Deployment:
    live = record["status"] not in FINAL_DEPLOYMENT_STATUSES and record["port"] is not None
    url = supervisor.endpoint_url(record["host"], record["port"]) if live else None
    proxy = f"proxy/{record['port']}/" if live else None
    return Deployment.model_validate({**record, "url": url, "proxy_path": proxy})
