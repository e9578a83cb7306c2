"""How the cluster kind is chosen from the configured mode and what NVML found."""

from __future__ import annotations

import pytest

from lepton_lab.cluster.gpus import GpuProbe, probe_gpus
from lepton_lab.cluster.manager import ClusterError, choose_mode, is_scheduler_address

NO_GPU = GpuProbe(0, reason="no NVIDIA driver found (NVML library not found)")
TWO_GPUS = GpuProbe(2, ("NVIDIA H100", "NVIDIA H100"), (80, 80), "560", "NVML found 2 GPU(s)")


def test_auto_without_gpu_is_a_cpu_local_cluster_and_says_why():
    choice = choose_mode("auto", NO_GPU, cuda_installed=True)
    assert choice.kind == "local"
    assert choice.reason == "no NVIDIA driver found (NVML library not found): CPU LocalCluster"


def test_auto_with_gpus_and_dask_cuda_is_a_cuda_cluster():
    choice = choose_mode("auto", TWO_GPUS, cuda_installed=True)
    assert choice.kind == "cuda"
    assert "one worker per GPU" in choice.reason


def test_auto_with_gpus_but_no_dask_cuda_falls_back_and_names_the_extra():
    choice = choose_mode("auto", TWO_GPUS, cuda_installed=False)
    assert choice.kind == "local"
    assert "lepton-lab[cuda]" in choice.reason


def test_cuda_mode_without_gpu_is_an_error_not_a_silent_fallback():
    with pytest.raises(ClusterError, match="no NVIDIA driver"):
        choose_mode("cuda", NO_GPU, cuda_installed=True)


@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "127.0.0.1:8786", "tls://sched:8786"])
def test_scheduler_address_means_external(address):
    choice = choose_mode(address, NO_GPU, cuda_installed=False)
    assert choice.kind == "external"
    assert choice.address.endswith(":8786") and "://" in choice.address


@pytest.mark.parametrize("value", ["nonsense", "tcp://", "http//x", "local-ish", ""])
def test_anything_else_is_refused_with_the_valid_choices(value):
    if value == "":
        assert choose_mode(value, NO_GPU, False).kind == "local"  # empty means auto
        return
    assert not is_scheduler_address(value)
    with pytest.raises(ClusterError, match="auto, local, cuda"):
        choose_mode(value, NO_GPU, cuda_installed=False)


def test_this_machine_has_no_gpu_and_nvml_says_why():
    probe = probe_gpus()
    assert probe.count == 0 and not probe.available
    assert probe.reason


def test_a_cluster_factory_wins_over_auto_and_conflicts_with_an_explicit_mode():
    factory = {"module": "dask_jobqueue", "class": "SLURMCluster", "kwargs": {"cores": 4}}
    choice = choose_mode("auto", TWO_GPUS, cuda_installed=True, factory=factory)
    assert choice.kind == "factory"
    assert choice.reason == "cluster_factory: dask_jobqueue.SLURMCluster"
    with pytest.raises(ClusterError, match="both cluster_mode 'cuda' and cluster_factory"):
        choose_mode("cuda", TWO_GPUS, cuda_installed=True, factory=factory)
    with pytest.raises(ClusterError, match="needs 'module' and 'class'"):
        choose_mode("auto", NO_GPU, cuda_installed=False, factory={"module": "distributed"})
