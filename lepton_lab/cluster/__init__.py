"""The lab's Dask cluster: choosing, starting or connecting, status, scaling, attaching."""

from lepton_lab.cluster.attach import attach, detach
from lepton_lab.cluster.gpus import GpuProbe, probe_gpus
from lepton_lab.cluster.manager import ClusterError, ClusterManager, choose_mode

__all__ = [
    "ClusterError",
    "ClusterManager",
    "GpuProbe",
    "attach",
    "choose_mode",
    "detach",
    "probe_gpus",
]
