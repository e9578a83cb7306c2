"""Shapes of the deployment routes (``/deployments``...): a registered model version served
over the Open Inference Protocol by a supervised MLServer process (docs/guide/serving.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lepton_lab.contract.base import Request, View

DEPLOYMENT_STATUSES = ("starting", "ready", "failed", "stopped")
FINAL_DEPLOYMENT_STATUSES = ("failed", "stopped")
DeploymentStatus = Literal[DEPLOYMENT_STATUSES]  # type: ignore[valid-type]

#: The formats a deployment can serve: each loads without the code that trained the model.
SERVABLE_FORMATS = ("onnx", "onnx-int8", "torch.export", "torchscript", "keras")
ServableFormat = Literal[SERVABLE_FORMATS]  # type: ignore[valid-type]

#: At most this many inference worker processes per deployment (MLServer's parallel workers).
MAX_WORKERS = 16


class DeploymentRequest(Request):
    """``POST /deployments``: serve one version of a registered model."""

    model: str = Field(
        description="`name@alias`, `name:version` or `name` (its latest version)",
        min_length=1,
        max_length=300,
    )
    format: ServableFormat | None = Field(
        None, description="the artifact to serve; default: onnx when the version has it"
    )
    host: Literal["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"] = Field(
        "127.0.0.1",
        description="where the endpoint listens; the lab proxies it under its own URL either way",
    )
    port: int | None = Field(
        None, ge=1024, le=65535, description="default: a free port chosen at start"
    )
    workers: int = Field(
        0,
        ge=0,
        le=MAX_WORKERS,
        description="inference worker processes (0: inference in the server's own process)",
    )
    max_batch_size: int = Field(
        32, ge=1, le=4096, description="adaptive batching: the most requests in one batch"
    )
    max_batch_delay_ms: float = Field(
        5.0,
        ge=0,
        le=10_000,
        description="adaptive batching: how long a request may wait for others (0: no batching)",
    )
    max_request_bytes: int = Field(
        16 << 20,
        ge=1024,
        le=1 << 30,
        description="a request body larger than this is refused with 413",
    )
    max_restarts: int = Field(
        3, ge=0, le=100, description="restarts after a crash before the deployment fails"
    )

    @field_validator("model")
    @classmethod
    def _no_whitespace(cls, value: str) -> str:
        if value != value.strip() or any(c.isspace() for c in value):
            raise ValueError("a model reference holds no spaces")
        return value


class Deployment(View):
    """A served model version and where its endpoint answers."""

    id: str
    model: str = Field(description="the model name, as the endpoint serves it")
    version: int
    ref: str = Field(description="what was asked for, e.g. `digits@production`")
    format: str
    status: DeploymentStatus
    error: str | None = None
    host: str
    port: int | None = None
    url: str | None = Field(
        None, description="the endpoint on this machine, e.g. `http://127.0.0.1:8500`"
    )
    proxy_path: str | None = Field(
        None,
        description="the endpoint under the Jupyter server's URL (relative to its base URL), "
        "e.g. `proxy/8500/`; it needs the same authentication as the Jupyter server",
    )
    workers: int
    max_batch_size: int
    max_batch_delay_ms: float
    max_request_bytes: int
    restarts: int = 0
    max_restarts: int
    owner: str = Field(description="who supervises it: `server`, `cli` or `kernel`")
    pid: int | None = Field(None, description="the model server's process id while it runs")
    created_at: float
    ready_at: float | None = None
    ended_at: float | None = None
    stop_requested: bool = False


class DeploymentList(View):
    deployments: list[Deployment]


class DeploymentQuery(Request):
    """``GET /deployments``: newest first; ``status`` filters."""

    status: DeploymentStatus | None = None
    limit: int = Field(100, ge=1, le=1000)


class DeploymentLogQuery(Request):
    """``GET /deployments/{id}/logs``: the model server's log from byte ``offset``."""

    offset: int = Field(0, ge=0, le=2**62)


class DeploymentLogs(View):
    id: str
    offset: int
    next: int = Field(description="the offset to poll with next")
    text: str
    complete: bool = Field(description="the deployment has ended: nothing more will be written")
