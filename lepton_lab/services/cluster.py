"""The cluster facade: status, scaling, the kernels and what this lab has installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lepton_lab._version import __version__
from lepton_lab.cluster.gpus import probe_gpus
from lepton_lab.cluster.manager import ClusterError, ClusterManager
from lepton_lab.contract import Conflict, RequestError
from lepton_lab.contract.base import Unavailable
from lepton_lab.contract.cluster import ClusterStatus, Kernels, LabConfig, ScaleRequest
from lepton_lab.jobs.plugins import describe_executors
from lepton_lab.notify.channels import describe_channels

LEPTON_KERNELS = (("lepton-cpu", "cpu"), ("lepton-gpu", "gpu"))

#: Seconds a request waits for the cluster's scheduler to answer before it is called
#: unreachable (a 503). A Dask client left alone waits for a lost scheduler for its connect
#: timeout (30 s), then closes itself.
SCHEDULER_TIMEOUT = 10.0


def scheduler_unreachable(client: Any, timeout: float = SCHEDULER_TIMEOUT) -> str | None:
    """Why the scheduler behind ``client`` does not answer within ``timeout`` seconds (one
    line that names it), or None when it does."""
    try:
        address = client.scheduler.address
    except Exception:  # noqa: BLE001 - a closed client may have lost its rpc
        address = None
    where = f"the cluster's scheduler at {address}" if address else "the cluster's scheduler"
    try:
        client.sync(client.scheduler.identity, callback_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is "unreachable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, TimeoutError) and "timed out" in reason:
            reason = f"no answer within {timeout:g} s"
        return f"{where} cannot be reached: {reason}"
    return None


def check_scheduler(client: Any, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Raise :class:`Unavailable` (a 503) when the scheduler does not answer in time."""
    problem = scheduler_unreachable(client, timeout) if client is not None else None
    if problem:
        raise Unavailable(problem)


class ClusterService:
    """The lab's cluster (through its manager) and the machine's kernels."""

    def __init__(
        self,
        manager: ClusterManager,
        kernelspecs: Callable[[], dict[str, Any]],
        default_executor: str = "local",
        features: Callable[[], dict[str, bool]] | None = None,
    ) -> None:
        self.manager = manager
        self.kernelspecs = kernelspecs
        self.default_executor = default_executor
        self.features = features or (lambda: {})

    def status(self) -> ClusterStatus:
        return ClusterStatus.model_validate(self.manager.status())

    def scale(self, request: ScaleRequest) -> ClusterStatus:
        """Scale a lab-owned cluster to a fixed size (waiting until the scheduler sees the
        workers; adaptive scaling goes off), or turn adaptive scaling on."""
        limit = self.manager.worker_limit()
        if request.workers is not None and request.workers > limit:
            raise RequestError(f"'workers' must be between 0 and {limit}, got {request.workers}")
        client = self.manager.client
        if self.manager.owned:
            # a lost scheduler is a 503 at once, not a wait for workers it can no longer count
            check_scheduler(client)
        try:
            if request.adapt is not None:
                self.manager.set_adapt(request.adapt.minimum, request.adapt.maximum)
                return self.status()
            return ClusterStatus.model_validate(self.manager.scale(request.workers))
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        except ClusterError as exc:
            if client is not None and self.manager.owned:
                check_scheduler(client)  # "did not reach 2 workers" because it went away
            raise Conflict(str(exc)) from exc
        except Exception:
            # the scheduler went away while scaling: Dask says so in many ways (a closed
            # comm, a closed connection pool, a connect timeout); ask it once more to tell
            check_scheduler(client)
            raise

    def kernels(self) -> Kernels:
        specs = self.kernelspecs()
        probe = probe_gpus()
        kernels = []
        for name, device in LEPTON_KERNELS:
            spec = specs.get(name, {}).get("spec", {})
            kernels.append(
                {
                    "name": name,
                    "display_name": spec.get("display_name", name),
                    "device": device,
                    "installed": name in specs,
                    "runs_on": "gpu" if device == "gpu" and probe.available else "cpu",
                }
            )
        others = [
            {"name": n, "display_name": s.get("spec", {}).get("display_name", n), "device": None}
            for n, s in sorted(specs.items())
            if n not in dict(LEPTON_KERNELS)
        ]
        return Kernels(
            gpu_available=probe.available,
            gpu_count=probe.count,
            gpu_names=list(probe.names),
            gpu_reason=probe.reason,
            kernels=kernels,
            other_kernels=others,
        )

    def config(self) -> LabConfig:
        return LabConfig(
            version=__version__,
            default_executor=self.default_executor,
            executors=describe_executors(),
            channels=describe_channels(),
            features=self.features(),
        )
