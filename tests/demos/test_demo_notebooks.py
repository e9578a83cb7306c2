"""Every notebook in ``notebooks/`` runs as a job through the real CLI (``lepton-lab run NB -p
name value ... --wait``), in order, on one shared 2-worker cluster and one state directory,
as a newcomer would run them. Each test asserts on what the job recorded in the store (its
status, its logged metrics, the runs, models, schedules and deployments it made), not only on
the exit status.

The job kernels reach the cluster as lab kernels do: the scheduler address and the cluster
file are in the environment that the CLI, its runner and its kernel inherit.

Real papermill, real ``lepton-cpu`` kernels, real Dask workers, real TensorFlow processes and
a real MLServer process, on a real SQLite store.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

import lepton_lab as ll
from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.config.settings import ENV_CLUSTER_FILE, ENV_SCHEDULER_ADDRESS
from lepton_lab.jobs import client as jobs_client
from lepton_lab.models import api as models_api
from lepton_lab.models.registry import ModelRegistry
from lepton_lab.services.jobs import JobService
from lepton_lab.store import Store, open_store
from tests.support.demos import NOTEBOOKS, ORDER
from tests.support.labcluster import start_published_cluster
from tests.support.tf_processes import tf_children, wait_no_children

# generous per test; the whole module takes about 3 minutes on 2 cores
pytestmark = pytest.mark.timeout(420)

DEMOS = [name for name in ORDER if name[:2].isdigit()]


@dataclass
class Lab:
    state: Path
    store: Store
    cluster: ClusterManager


@dataclass
class Done:
    """A finished ``lepton-lab run``: its exit status, output and the job's record."""

    returncode: int
    stdout: str
    stderr: str
    job: dict[str, Any]
    seconds: float

    @property
    def metrics(self) -> dict[str, float]:
        return {m["name"]: m["value"] for m in self.job["metrics"]}

    def explain(self) -> str:
        return (
            f"exit {self.returncode}; job {self.job.get('status')}: {self.job.get('error')}\n"
            + (self.stdout[-6000:] + self.stderr[-3000:])
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One state directory and one 2-worker cluster for the module, as a lab kernel sees
    them: the scheduler address and the cluster file in the environment."""
    state = tmp_path_factory.mktemp("demos") / "state"
    state.mkdir()
    cluster, cluster_file = start_published_cluster(state)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEPTON_LAB_STATE_DIR", str(state))
        mp.setenv("LEPTON_LAB_DATABASE_URL", f"sqlite:///{state / 'lab.db'}")
        mp.delenv("LEPTON_LAB_ARTIFACT_DIR", raising=False)
        mp.setenv(ENV_CLUSTER_FILE, str(cluster_file))
        mp.setenv(ENV_SCHEDULER_ADDRESS, cluster.scheduler_address)
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        mp.delenv("LEPTON_LAB_JOB_ID", raising=False)
        # what the Lepton kernels default to; notebook 3 switches its kernel to TensorFlow
        mp.setenv("KERAS_BACKEND", "torch")
        # `!lepton-lab ...` in notebook 4 finds this environment's command
        mp.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        models_api._registry = None  # ll.models here: on this store
        store = open_store()
        try:
            yield Lab(state, store, cluster)
        finally:
            models_api._registry = None
            if jobs_client._embedded is not None:
                jobs_client._embedded.close()
                jobs_client._embedded = None
            cluster.close()


@pytest.fixture
def healthy(lab: Lab) -> Lab:
    """Both workers there before a notebook runs: after notebook 2 kills one, its nanny
    brings it back; if that race ends with a nanny closed, scale back to two."""
    try:
        lab.cluster.client.wait_for_workers(2, timeout=60)
    except TimeoutError:
        lab.cluster.scale(2, timeout=120)
        lab.cluster.client.wait_for_workers(2, timeout=60)
    return lab


def run_job(lab: Lab, notebook: str, watch=None, **parameters: Any) -> Done:
    """``lepton-lab run NOTEBOOK -p name value ... --wait`` in a subprocess; ``watch()`` is
    called every 0.2 s while it runs."""
    cmd = [sys.executable, "-m", "lepton_lab.cli.main", "run", str(NOTEBOOKS / notebook)]
    for name, value in parameters.items():
        if isinstance(value, str):
            cmd += ["-r", name, value]  # as the string it is ("" stays "")
        else:
            cmd += ["-p", name, json.dumps(value)]
    cmd.append("--wait")
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if watch is not None:
        while process.poll() is None:
            watch()
            time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=400)
    seconds = time.monotonic() - started
    found = re.search(r"lepton-lab: job (\w+): ", stderr)
    assert found, f"no job id in the CLI's output:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    job = lab.store.get_job(found.group(1))
    print(f"{notebook}: job {job['id']} {job['status']} in {seconds:.1f} s")
    return Done(process.returncode, stdout, stderr, job, seconds)


def completed(done: Done) -> None:
    assert done.returncode == 0 and done.job["status"] == "completed", done.explain()


def runs_named(store: Store, name: str) -> list[dict[str, Any]]:
    return [r for r in store.list_runs() if r["name"] == name]


def the_cluster_workers(lab: Lab) -> set[str]:
    return set(lab.cluster.client.scheduler_info(n_workers=-1)["workers"])


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The stratified quarter of the digits the notebooks hold out ("digits-holdout")."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_test, y_test


# -- the notebooks themselves --------------------------------------------------------------------


def test_every_notebook_is_run_here_and_is_a_job_with_empty_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(ORDER)
    for name in ORDER:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "lepton-cpu", name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and tagged[0].cell_type == "code", name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        if name in DEMOS:
            assert nb.cells[-1].cell_type == "markdown", name
            assert nb.cells[-1].source.startswith("## What next"), name


# -- 1. quickstart ----------------------------------------------------------------------------


def test_01_quickstart_trains_on_the_cluster_and_registers_a_candidate(healthy):
    lab = healthy
    done = run_job(lab, "01_quickstart.ipynb", epochs=4)
    completed(done)
    assert done.job["kernel"] == "lepton-cpu"
    assert done.metrics["accuracy"] >= 0.9, done.metrics

    # the Keras run: 2 ranks on the cluster the kernel found in its environment
    (run,) = runs_named(lab.store, "quickstart: digits")
    assert run["status"] == "completed"
    assert run["params"]["framework"] == "keras" and run["params"]["workers"] == 2
    assert run["params"]["epochs"] == 4
    events = lab.store.get_run(run["id"])["events"]
    (start,) = [e for e in events if e["kind"] == "start"]
    assert set(start["data"]["workers"]) == the_cluster_workers(lab)

    # digits v1 @candidate, with the job, the run and the notebook in its lineage
    version = ll.models.get("digits@candidate")
    assert version.version == 1 and version.aliases == ["candidate"]
    assert version.framework == "keras"
    assert {"keras", "onnx"} <= set(version.formats), version.failed_formats
    assert version.job_id == done.job["id"] and version.run_id == run["id"]
    assert Path(version.notebook) == NOTEBOOKS / "01_quickstart.ipynb"
    assert version.params["epochs"] == 4  # the job's parameters
    assert version.metrics["accuracy"] == pytest.approx(done.metrics["accuracy"])
    # the output notebook kept the monitor's text and the registration
    output = Path(lab.state, "jobs", done.job["id"], "output.ipynb").read_text()
    assert "registered digits v1 as @candidate" in output


# -- 2. PyTorch DDP, a killed worker, the resume ------------------------------------------


def test_02_ddp_run_loses_a_worker_resumes_from_its_checkpoint_and_learns(healthy):
    lab = healthy
    done = run_job(lab, "02_pytorch_ddp.ipynb")  # 8 epochs, a worker killed after 3
    completed(done)
    assert done.metrics["accuracy"] >= 0.9, done.metrics
    assert done.metrics["attempts"] == 2

    (run,) = runs_named(lab.store, "pytorch ddp: digits")
    record = lab.store.get_run(run["id"])
    assert record["status"] == "completed" and record["attempts"] == 2
    events = record["events"]
    (failure,) = [e for e in events if e["kind"] == "failure"]
    assert "was lost" in failure["message"], failure
    (restart,) = [e for e in events if e["kind"] == "restart"]
    assert restart["data"]["resume_step"] >= 2  # the checkpoint of epoch 3 (step 2) or later
    starts = [e for e in events if e["kind"] == "start"]
    assert [s["data"]["attempt"] for s in starts] == [1, 2]
    # every epoch of the second attempt came after the checkpoint it resumed from
    steps = {m["step"] for m in lab.store.metrics(run["id"])["metrics"]}
    assert steps == set(range(8))
    assert "killed worker" in Path(lab.state, "jobs", done.job["id"], "output.ipynb").read_text()

    # the shared cluster is whole again for the next notebooks
    lab.cluster.client.wait_for_workers(2, timeout=90)


# -- 3. TensorFlow (absorbs the former tests/jobs/test_tensorflow_job.py) -----------------


def test_03_tensorflow_job_trains_with_mwms_and_registers_a_savedmodel(healthy, tmp_path):
    lab = healthy
    ranks_seen = 0  # TensorFlow rank processes alive at once under the cluster's workers

    def watch() -> None:
        nonlocal ranks_seen
        ranks_seen = max(ranks_seen, len(tf_children()))

    done = run_job(lab, "03_tensorflow.ipynb", watch=watch, epochs=4, register_as="tf-digits")
    completed(done)
    job = done.job
    assert job["kernel"] == "lepton-cpu"
    assert done.metrics["accuracy"] >= 0.9, done.metrics

    # the run: tf.keras on two ranks, on the cluster the kernel found in its environment
    (run,) = [r for r in lab.store.list_runs() if r["params"].get("backend") == "tensorflow"]
    assert run["status"] == "completed"
    assert run["params"]["workers"] == 2 and run["params"]["epochs"] == 4
    (start,) = [e for e in lab.store.get_run(run["id"])["events"] if e["kind"] == "start"]
    assert set(start["data"]["workers"]) == the_cluster_workers(lab)

    # the registered version: every format asked for, the job and the run in its lineage
    version = ll.models.get("tf-digits", 1)
    assert sorted(version.formats) == ["keras", "onnx", "savedmodel"], version.failed_formats
    assert version.failed_formats == {}
    assert version.framework == "keras"
    assert version.versions["keras.backend"] == "tensorflow"
    assert version.job_id == job["id"] and version.run_id == run["id"]
    assert Path(version.notebook) == NOTEBOOKS / "03_tensorflow.ipynb"
    assert version.params["register_as"] == "tf-digits" and version.params["epochs"] == 4
    assert version.metrics["val_accuracy"] >= 0.9  # the run's last reported values
    for artifact in version.artifacts:
        assert 0.0 <= artifact.max_abs_diff <= artifact.tolerance, artifact
    refs = JobService(lab.store, lab.state, tmp_path, ["lepton-cpu"], "local").get(job["id"]).models
    assert [(r.name, r.version) for r in refs] == [("tf-digits", 1)]
    output = Path(lab.state, "jobs", job["id"], "output.ipynb").read_text()
    assert "registered tf-digits v1" in output

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


# -- 4. notebook to job, schedules ------------------------------------------------------------


def test_04_runs_the_quickstart_as_a_child_job_and_leaves_no_schedule_firing(healthy):
    lab = healthy
    versions_before = len(ll.models.get("digits"))
    done = run_job(lab, "04_notebook_to_job.ipynb", epochs=4)
    completed(done)
    assert done.metrics["job_accuracy"] >= 0.9, done.metrics
    assert done.metrics["schedules_created"] == 2
    assert done.metrics["active_schedules_left"] == 0

    # the child: notebook 1 with the parameters notebook 4 gave it, completed, metered
    (child,) = [
        j
        for j in lab.store.list_jobs()
        if j["notebook"] == str(NOTEBOOKS / "01_quickstart.ipynb")
        and j["created_at"] > done.job["created_at"]
    ]
    assert child["status"] == "completed", child["error"]
    assert child["parameters"] == {"epochs": 4, "register_as": ""}
    child = lab.store.get_job(child["id"])
    child_metrics = {m["name"]: m["value"] for m in child["metrics"]}
    assert child_metrics["accuracy"] >= 0.9
    assert child_metrics["accuracy"] == pytest.approx(done.metrics["job_accuracy"])
    (usage,) = lab.store.usage_records(kind="job", subject_prefix=f"{child['id']}#")
    assert usage["wall_seconds"] > 0 and usage["peak_memory"] > 0 and usage["cpu_seconds"] > 0
    # register_as "" registered nothing
    assert len(ll.models.get("digits")) == versions_before

    # both schedules (from code and from the CLI) are gone, and none fired
    assert lab.store.list_schedules() == []
    assert [j for j in lab.store.list_jobs() if j["schedule_id"]] == []
    output = Path(lab.state, "jobs", done.job["id"], "output.ipynb").read_text()
    assert "nightly quickstart" in output and "deleted" in output


# -- 5. evaluate, promote, serve -------------------------------------------------------------


def test_05_promotes_the_candidate_and_serves_answers_that_agree(healthy):
    lab = healthy
    candidate = ll.models.get("digits@candidate").version  # notebook 1's
    done = run_job(lab, "05_evaluate_promote_serve.ipynb")
    completed(done)
    metrics = done.metrics
    assert metrics["candidate_accuracy"] >= 0.9, metrics
    # no production version before: the candidate was promoted, then served
    assert metrics["promoted"] == 1
    assert metrics["production_version"] == candidate
    assert metrics["production_accuracy"] == metrics["candidate_accuracy"]
    assert metrics["served_accuracy"] == pytest.approx(metrics["candidate_accuracy"])
    production = ll.models.get("digits@production")
    assert production.version == candidate
    assert sorted(production.aliases) == ["candidate", "production"]
    (evaluation,) = production.evaluations
    assert evaluation.dataset == "digits-holdout"
    assert evaluation.metrics["accuracy"] == pytest.approx(metrics["candidate_accuracy"])

    # the deployment it started served the version and is stopped
    (deployment,) = lab.store.list_deployments()
    assert deployment["status"] == "stopped", deployment
    assert deployment["version"] == candidate
    output = Path(lab.state, "jobs", done.job["id"], "output.ipynb").read_text()
    assert "predictions agree with the model here on 100.0%" in output


# -- 6. GPU (on CPU here) ------------------------------------------------------------------


def test_06_gpu_notebook_says_there_is_no_gpu_and_still_trains(healthy):
    lab = healthy
    done = run_job(lab, "06_gpu.ipynb", epochs=8)
    completed(done)
    assert done.metrics["accuracy"] >= 0.9, done.metrics
    assert done.metrics["gpu"] == 0
    (run,) = [r for r in lab.store.list_runs() if r["name"].startswith("gpu demo on ")]
    assert run["status"] == "completed" and run["params"]["precision"] is None
    output = Path(lab.state, "jobs", done.job["id"], "output.ipynb").read_text()
    assert "No GPU here" in output


# -- evaluate.ipynb (the former tests/unit/test_notebooks.py's check) --------------------


def test_evaluate_notebook_scores_production_on_the_holdout(healthy):
    lab = healthy
    done = run_job(lab, "evaluate.ipynb", model_name="digits", version="@production")
    completed(done)
    assert done.metrics["accuracy"] >= 0.9, done.metrics
    evaluations = ModelRegistry(lab.store).version("digits", "@production")["evaluations"]
    assert len(evaluations) == 2  # notebook 5's, then this job's
    evaluation = evaluations[-1]
    assert evaluation["dataset"] == "digits-holdout"
    assert 0.5 < evaluation["metrics"]["accuracy"] <= 1.0
    assert evaluation["metrics"]["accuracy"] == pytest.approx(done.metrics["accuracy"])
