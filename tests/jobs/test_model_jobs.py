"""Models and notebook jobs: a training notebook run with ``lepton-lab run`` registers a version
whose lineage names the job, the notebook snapshot, the parameters and the git commit with no
extra argument; ``notebooks/evaluate.ipynb``, fired by two schedules against ``@production`` and
``@candidate``, records its metrics on each version and on its job, and ``compare`` shows them.

Real papermill jobs and kernels (python3, which has the package), a real SQLite store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import lepton_lab as ll
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.models import api as models_api
from lepton_lab.services.jobs import JobService
from tests.jobs.conftest import write_notebook
from tests.jobs.test_cli import cli
from tests.support.git import git

pytestmark = pytest.mark.timeout(300)

EVALUATE = Path(__file__).parents[2] / "notebooks" / "evaluate.ipynb"

TRAIN = """\
import numpy as np, torch
from sklearn.datasets import load_digits
import lepton_lab as ll

x, y = load_digits(return_X_y=True)
x = (x / 16).astype("float32")
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
opt = torch.optim.Adam(model.parameters(), lr=lr)
for _ in range(steps):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    opt.step()
accuracy = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
version = ll.models.register(
    model, "digits", formats=["torch.export", "onnx"], example_input=x[:16],
    metrics={"accuracy": accuracy},
)
print("registered", version.version, accuracy)
"""


@pytest.fixture
def registry_here(state: Path):
    """``ll.models`` on this test's store (the process-wide registry is rebuilt)."""
    models_api._registry = None
    yield models_api.registry()
    models_api._registry = None


def test_a_version_registered_by_a_cli_job_carries_the_jobs_lineage(
    tmp_path, state, store, registry_here
):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    nb = write_notebook(repo / "train.ipynb", TRAIN, parameters="lr = 0.01\nsteps = 5")
    git(repo, "add", "train.ipynb")
    git(repo, "commit", "-q", "-m", "train")
    head = git(repo, "rev-parse", "HEAD")

    done = cli(
        "run",
        str(nb),
        "-p",
        "lr",
        "0.02",
        "-p",
        "steps",
        "60",
        "--kernel",
        "python3",
        "--wait",
        cwd=repo,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    (job,) = store.list_jobs()
    version = ll.models.get("digits", 1)
    assert version.job_id == job["id"]
    assert version.run_id is None
    assert version.notebook == job["notebook"] and Path(version.notebook) == nb.resolve()
    snapshot = JobFiles.of(store.get_job(job["id"])).input
    assert version.notebook_sha256 == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert version.params["lr"] == 0.02 and version.params["steps"] == 60
    assert version.git is not None and version.git.commit == head and version.git.dirty is False
    assert version.versions["torch"].startswith("2.13") and "python" in version.versions
    assert 0.5 < version.metrics["accuracy"] <= 1.0
    assert sorted(version.formats) == ["onnx", "torch.export"]
    # the job's view lists the version it registered
    refs = JobService(store, state, tmp_path, ["python3"], "local").get(job["id"]).models
    assert [(r.name, r.version) for r in refs] == [("digits", 1)]


def _digits_model(steps: int):
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
    return model, x


def test_the_evaluation_notebook_scores_production_and_candidate_on_schedules(
    tmp_path, state, store, registry_here
):
    weak, x = _digits_model(steps=3)
    strong, _ = _digits_model(steps=150)
    for model in (weak, strong):
        ll.models.register(model, "digits", formats=["torch.export", "onnx"], example_input=x[:8])
    ll.models.set_alias("digits", 1, "production")
    ll.models.set_alias("digits", 2, "candidate")

    jobs = {}
    for alias in ("production", "candidate"):
        nightly = ll.jobs.schedule(
            EVALUATE,
            cron="0 2 * * *",
            parameters={"model_name": "digits", "version": f"@{alias}"},
            kernel="python3",
            name=f"evaluate digits@{alias}",
        )
        jobs[alias] = nightly.run_now()
    for job in jobs.values():
        assert job.wait(timeout=240) == "completed", job.logs()[-3000:]

    for alias, number in (("production", 1), ("candidate", 2)):
        version = ll.models.get("digits", f"@{alias}")
        assert version.version == number
        (evaluation,) = version.evaluations
        assert evaluation.dataset == "digits-holdout"
        assert evaluation.job_id == jobs[alias].id
        assert 0.0 < evaluation.metrics["accuracy"] <= 1.0 and evaluation.metrics["loss"] > 0
        # ... and on the job, as ll.log_metrics would
        assert jobs[alias].metrics()["accuracy"] == pytest.approx(evaluation.metrics["accuracy"])
    production = ll.models.get("digits", 1).evaluations[0].metrics["accuracy"]
    candidate = ll.models.get("digits", 2).evaluations[0].metrics["accuracy"]
    assert candidate > production + 0.2  # 150 training steps against 3

    table = ll.models.compare("digits", metric="accuracy")
    assert table.columns[:3] == ["version", "aliases", "accuracy"]
    assert [row[0] for row in table.rows] == [2, 1]
    assert "digits-holdout" in str(table) and "<table>" in table._repr_html_()
    # the evaluation job's output notebook shows the comparison
    output = JobFiles.of(store.get_job(jobs["candidate"].id)).output.read_text()
    assert "candidate" in output and "digits-holdout" in output
    assert np.isfinite(candidate)
