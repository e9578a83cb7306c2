"""cluster_factory: the shape is checked before anything starts, bad input is one readable line
that names the class, a class is named by its public module, a TLS cluster's credentials can
be handed to another process, and Dask's own config is a second place to set it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dask.config
import pytest

from lepton_lab.cluster.errors import ClusterError
from lepton_lab.cluster.factory import (
    check_factory,
    class_name,
    client_security,
    load_cluster_class,
    start_factory_cluster,
)
from lepton_lab.cluster.gpus import GpuProbe
from lepton_lab.cluster.manager import ClusterManager, choose_mode

NO_GPU = GpuProbe(0, reason="no NVIDIA driver found")
SLURM = {"module": "dask_jobqueue", "class": "SLURMCluster", "kwargs": {"cores": 4}}


def test_a_valid_factory_gets_its_defaults():
    assert check_factory({"module": "distributed", "class": "LocalCluster"}) == {
        "module": "distributed",
        "class": "LocalCluster",
        "args": [],
        "kwargs": {},
    }
    assert check_factory({**SLURM, "args": ("a",)})["args"] == ["a"]


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("dask_jobqueue.SLURMCluster", "must be a dict like"),
        ({**SLURM, "klass": "x"}, "unknown key(s) klass; accepted: module, class, args, kwargs"),
        ({"class": "SLURMCluster"}, "needs 'module' and 'class' as non-empty strings"),
        ({"module": "dask_jobqueue", "class": ""}, "needs 'module' and 'class'"),
        ({**SLURM, "args": {"a": 1}}, "'args' must be a list, got dict"),
        ({**SLURM, "kwargs": ["cores", 4]}, "'kwargs' must be a dict, got list"),
    ],
)
def test_a_malformed_factory_says_what_is_wrong(spec, expected):
    with pytest.raises(ClusterError) as err:
        check_factory(spec)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "spec,expected",
    [
        (
            {"module": "no_such_dask_package", "class": "Cluster"},
            "cluster_factory: cannot import 'no_such_dask_package' (No module named "
            "'no_such_dask_package'); install the package",
        ),
        (
            {"module": "dask_jobqueue", "class": "SlurmCluster"},
            "cluster_factory: dask_jobqueue has no class 'SlurmCluster'",
        ),
        (
            {"module": "distributed", "class": "wait"},  # a function, not a class
            "cluster_factory: distributed has no class 'wait'",
        ),
    ],
)
def test_a_class_that_does_not_load_is_one_line(spec, expected):
    with pytest.raises(ClusterError) as err:
        load_cluster_class(check_factory(spec))
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_rejected_arguments_name_the_class_and_the_reason():
    spec = {"module": "distributed", "class": "LocalCluster", "kwargs": {"bogus": 1}}
    spec["kwargs"]["processes"] = False  # the worker is built in this process: fast
    with pytest.raises(ClusterError) as err:
        start_factory_cluster(check_factory(spec))
    assert str(err.value) == (
        "cluster_factory: distributed.LocalCluster rejected its arguments: TypeError: "
        "Server.__init__() got an unexpected keyword argument 'bogus'"
    )


def test_a_failed_start_reports_its_root_cause():
    """Dask says only "Nanny failed to start." when a worker process rejects an argument;
    the root cause is what a person needs to fix the config."""
    spec = {
        "module": "distributed",
        "class": "LocalCluster",
        "kwargs": {"n_workers": 1, "bogus": 1, "dashboard_address": ":0", "host": "127.0.0.1"},
    }
    with pytest.raises(ClusterError) as err:
        start_factory_cluster(check_factory(spec))
    message = str(err.value)
    assert message.startswith("cluster_factory: distributed.LocalCluster failed to start: ")
    assert "unexpected keyword argument 'bogus'" in message
    assert "\n" not in message


def test_a_factory_cluster_starts_and_is_named_by_its_public_module():
    spec = {
        "module": "distributed",
        "class": "LocalCluster",
        "kwargs": {"processes": False, "n_workers": 1, "dashboard_address": ":0"},
    }
    cluster = start_factory_cluster(check_factory(spec))
    try:
        assert class_name(cluster) == "distributed.LocalCluster"
        assert cluster.scheduler_address.startswith("inproc://")
        assert client_security(cluster) is None  # no TLS: nothing to hand to kernels
    finally:
        cluster.close()


def test_class_names_are_where_the_class_is_imported_from():
    from dask_gateway import GatewayCluster
    from dask_jobqueue.local import LocalCluster as JobqueueLocal

    assert class_name(object.__new__(GatewayCluster)) == "dask_gateway.GatewayCluster"
    # not exported by dask_jobqueue itself: the module a factory must name
    assert class_name(object.__new__(JobqueueLocal)) == "dask_jobqueue.local.LocalCluster"


def test_importing_dask_jobqueue_off_the_main_thread_keeps_the_signal_handlers():
    """dask-jobqueue 0.9 sets a SIGINT handler at import, which raises off the main thread
    (where the lab starts its cluster) and would replace the server's own. A fresh process,
    so the import really happens here."""
    code = textwrap.dedent(
        """
        import json, signal, threading
        from lepton_lab.cluster.factory import load_cluster_class
        before = signal.getsignal(signal.SIGINT)
        out = {}
        def load():
            try:
                cls = load_cluster_class({"module": "dask_jobqueue.local", "class": "LocalCluster"})
                out["class"] = cls.__name__
            except Exception as exc:
                out["error"] = str(exc)
        thread = threading.Thread(target=load)
        thread.start()
        thread.join()
        out["kept"] = signal.getsignal(signal.SIGINT) is before
        out["restored"] = signal.signal.__module__ == "signal"
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "class": "LocalCluster",
        "kept": True,
        "restored": True,
    }


def test_tls_credentials_travel_as_pem_and_connect():
    """What a kernel gets from the server's cluster file must open a real TLS connection."""
    from distributed import Client, LocalCluster
    from distributed.security import Security

    cluster = LocalCluster(
        processes=False,
        n_workers=1,
        protocol="tls://",
        security=Security.temporary(),
        dashboard_address=":0",
    )
    try:
        creds = client_security(cluster)
        assert sorted(creds) == ["tls_ca_file", "tls_client_cert", "tls_client_key"]
        assert all(v.startswith("-----BEGIN") for v in creds.values())
        json.dumps(creds)  # it goes into a JSON file
        security = Security(**creds, require_encryption=True)
        with Client(cluster.scheduler_address, security=security, timeout=30) as client:
            assert client.submit(lambda x: x + 1, 41).result(timeout=30) == 42
        with pytest.raises(TypeError, match="TLS expects a `ssl_context`"):
            Client(cluster.scheduler_address, timeout=5)  # the address alone is not enough
    finally:
        cluster.close()


def test_dask_gateway_credentials_are_its_in_memory_key_and_certificate():
    from types import SimpleNamespace

    from dask_gateway.client import GatewaySecurity

    gateway = SimpleNamespace(security=GatewaySecurity(tls_key="KEY\n", tls_cert="CERT\n"))
    assert client_security(gateway) == {
        "tls_ca_file": "CERT\n",  # self-signed per cluster: the certificate is its own CA
        "tls_client_cert": "CERT\n",
        "tls_client_key": "KEY\n",
    }


def test_the_factory_can_come_from_dask_config():
    with dask.config.set({"lepton-lab.cluster.factory": SLURM}):
        manager = ClusterManager()
        assert manager.factory == SLURM
        choice = choose_mode(manager.mode, NO_GPU, False, manager.factory)
    assert choice.kind == "factory"
    assert choice.reason == "cluster_factory: dask_jobqueue.SLURMCluster"
    assert ClusterManager().factory is None  # nothing configured: the lab's own cluster


def test_lab_config_wins_over_dask_config():
    from traitlets.config import Config

    mine = {"module": "dask_gateway", "class": "GatewayCluster", "kwargs": {}}
    with dask.config.set({"lepton-lab.cluster.factory": SLURM}):
        manager = ClusterManager(config=Config({"ClusterManager": {"factory": mine}}))
    assert manager.factory == mine


def test_a_factory_with_another_explicit_mode_is_a_conflict():
    with pytest.raises(ClusterError) as err:
        choose_mode("local", NO_GPU, False, SLURM)
    assert str(err.value) == (
        "both cluster_mode 'local' and cluster_factory (dask_jobqueue.SLURMCluster) are set; "
        "keep one"
    )
