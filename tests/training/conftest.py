"""A real 2-worker cluster and a real SQLite store shared by the training tests."""

from __future__ import annotations

import os

import pytest

# As in the Lepton kernels: Keras 3 on the torch backend unless the user chose another.
os.environ.setdefault("KERAS_BACKEND", "torch")

from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.store import Store


@pytest.fixture(scope="module")
def cluster():
    manager = ClusterManager(
        mode="local",
        n_workers=2,
        threads_per_worker=1,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
    )
    manager.start()
    yield manager
    manager.close()


@pytest.fixture(scope="module")
def client(cluster):
    return cluster.client


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'runs.db'}")


@pytest.fixture
def fit(client, store, tmp_path):
    """``ll.fit`` bound to the test cluster, store and artifact folder."""
    import lepton_lab as ll

    def run(fn, **kwargs):
        if "data" not in kwargs:
            kwargs.setdefault("framework", "torch")
        return ll.fit(
            fn, client=client, store=store, artifact_dir=str(tmp_path / "artifacts"), **kwargs
        )

    return run


@pytest.fixture(autouse=True)
def both_workers(request):
    """Each test starts on both workers. A test that kills a worker leaves its nanny bringing
    it back, and the run's abort restarts the other; when that race ends with a nanny closed
    (the cluster's spec then holds one worker), the cluster is scaled back to two."""
    if not {"client", "fit"} & set(request.fixturenames):
        return
    manager = request.getfixturevalue("cluster")
    try:
        manager.client.wait_for_workers(2, timeout=30)
    except TimeoutError:
        manager.scale(2, timeout=120)
        manager.client.wait_for_workers(2, timeout=60)
