"""``notebooks/tensorflow_digits.ipynb`` as a real notebook job: papermill runs it in the
``lepton-cpu`` kernel (which defaults Keras to torch; the notebook switches its kernel to
TensorFlow), ``ll.fit(..., backend="tensorflow")`` trains on a real 2-worker cluster that the
kernel reaches the way lab kernels do (the scheduler address in its environment), and the
notebook logs its accuracy on the job and registers the model as ``keras``, ``savedmodel`` and
``onnx``, with the job in its lineage. The SavedModel, loaded back here, predicts what the
``.keras`` file predicts.

Real papermill, real kernels, real TensorFlow processes, a real SQLite store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import lepton_lab as ll
from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.config.settings import ENV_CLUSTER_FILE, ENV_SCHEDULER_ADDRESS
from lepton_lab.models import api as models_api
from lepton_lab.services.jobs import JobService
from lepton_lab.store.schema import JOB_FINAL_STATUSES
from tests.support.tf_processes import tf_children, wait_no_children

pytestmark = pytest.mark.timeout(300)

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "tensorflow_digits.ipynb"
PARAMETERS = {"epochs": 4, "workers": 2, "register_as": "tf-digits"}


@pytest.fixture
def lab_cluster(state: Path, monkeypatch: pytest.MonkeyPatch):
    """A 2-worker cluster that the job's kernel attaches to, as a lab kernel attaches to the
    lab's: its scheduler address in the environment the runner and its kernel inherit."""
    manager = ClusterManager(
        mode="local",
        n_workers=2,
        threads_per_worker=1,
        memory_limit="2GiB",
        dashboard_address="127.0.0.1:0",
    )
    manager.start()
    # the cluster file as the server writes it: the address and the TLS keys' paths
    cluster_file = state / "cluster.json"
    cluster_file.write_text(
        json.dumps(
            {
                "status": "running",
                "scheduler_address": manager.scheduler_address,
                "security": manager.client_security(),
            }
        )
    )
    monkeypatch.setenv(ENV_CLUSTER_FILE, str(cluster_file))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv(ENV_SCHEDULER_ADDRESS, manager.scheduler_address)
    # what the Lepton kernels default to; the notebook must switch to TensorFlow itself
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    yield manager
    manager.close()


@pytest.fixture
def registry_here(state: Path):
    """``ll.models`` on this test's store (the process-wide registry is rebuilt)."""
    models_api._registry = None
    yield models_api.registry()
    models_api._registry = None


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[1500:] / 16).astype("float32"), y[1500:]


def test_the_tensorflow_notebook_trains_logs_and_registers_a_savedmodel_as_a_job(
    tmp_path, state, store, lab_cluster, registry_here
):
    started = time.monotonic()
    job = ll.jobs.submit(NOTEBOOK, parameters=PARAMETERS)  # in the kernel the notebook names
    ranks_seen = 0  # TensorFlow processes alive at once under the cluster's workers
    while job.status not in JOB_FINAL_STATUSES and time.monotonic() - started < 240:
        ranks_seen = max(ranks_seen, len(tf_children()))
        time.sleep(0.2)
    assert job.status == "completed", f"{job.error}\n{job.logs()[-5000:]}"
    seconds = time.monotonic() - started
    assert job.record()["kernel"] == "lepton-cpu"

    # the accuracy the notebook measured on the held-out digits is on the job
    metrics = job.metrics()
    assert metrics["accuracy"] >= 0.9, metrics

    # the run it made: tf.keras on two ranks, as the notebook's parameters said
    (run,) = store.list_runs()
    assert run["status"] == "completed"
    assert run["params"]["backend"] == "tensorflow" and run["params"]["workers"] == 2
    assert run["params"]["epochs"] == 4
    # ... on the cluster the kernel found in its environment, not one of its own
    (start,) = [e for e in store.get_run(run["id"])["events"] if e["kind"] == "start"]
    assert set(start["data"]["workers"]) == set(lab_cluster.client.scheduler_info()["workers"])

    # the registered version: every format asked for, the job and the run in its lineage
    version = ll.models.get("tf-digits", 1)
    assert sorted(version.formats) == ["keras", "onnx", "savedmodel"], version.failed_formats
    assert version.failed_formats == {}
    assert version.framework == "keras"
    assert version.versions["keras.backend"] == "tensorflow"
    assert version.job_id == job.id
    assert version.run_id == run["id"]
    assert Path(version.notebook) == NOTEBOOK
    assert version.params["register_as"] == "tf-digits" and version.params["epochs"] == 4
    assert version.metrics["val_accuracy"] >= 0.9  # the run's last reported values
    for artifact in version.artifacts:
        assert 0.0 <= artifact.max_abs_diff <= artifact.tolerance, artifact
    refs = JobService(store, state, tmp_path, ["lepton-cpu"], "local").get(job.id).models
    assert [(r.name, r.version) for r in refs] == [("tf-digits", 1)]
    assert "registered tf-digits v1" in job.output_path.read_text()

    # the SavedModel, loaded back with TensorFlow, predicts what the .keras file predicts
    x, y = held_out_digits()
    saved = ll.models.load("tf-digits", 1, format="savedmodel")
    assert "serving_default" in saved.signatures
    from_saved = np.asarray(saved.serve(x)).argmax(axis=1)
    from_keras = ll.models.get("tf-digits", 1).predictor("keras")(x).argmax(axis=1)
    assert (from_saved == from_keras).mean() >= 0.99
    assert (from_saved == y).mean() >= 0.9

    # the ranks' TensorFlow processes, one per worker, ended with the run
    assert ranks_seen == 2
    assert wait_no_children() == []
    print(f"job {job.id} completed in {seconds:.0f} s; accuracy {metrics['accuracy']:.4f}")
