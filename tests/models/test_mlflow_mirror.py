"""The MLflow mirror of the model registry, against a real local MLflow store (SQLite), checked
through MLflow's own client."""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from pathlib import Path

import mlflow  # the [mlflow] extra is part of [dev]: a missing one fails, it is not skipped
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from lepton_lab.models import mirror


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """One SQLite store per module (MLflow runs its migrations when it creates one), with its
    experiment's artifacts in the same temporary folder."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    artifacts = root / "artifacts"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment(mirror.EXPERIMENT_NAME, artifact_location=artifacts.as_uri())
    return {"uri": uri, "client": client, "root": root, "artifacts": artifacts}


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path, monkeypatch):
    """Each test runs in an empty folder that must stay empty: MLflow's defaults (a
    ``mlflow.db`` or ``mlruns/`` in the current directory) must not be what the mirror uses."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    assert sorted(p.name for p in cwd.iterdir()) == []


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(tmp_path: Path) -> dict[str, Path]:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(bytes(range(256)) * 40)
    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"\x08\x01pb-bytes")
    (saved / "variables" / "variables.data-00000-of-00001").write_bytes(b"\x00\xff" * 100)
    return {"onnx": onnx, "savedmodel": saved}


def _version(name: str, number: int, files: dict[str, Path], **extra) -> dict:
    version = {
        "name": name,
        "version": number,
        "framework": "torch",
        "created_at": 1_800_000_000.5,
        "aliases": [],
        "tags": {"team": "vision", "mlflow.user": "not-mlflow's"},
        "metrics": {"val_loss": 0.125, "accuracy": 0.875, "epochs": 3},
        "params": {"lr": 0.001, "batch_size": 64, "optimizer": {"name": "adam", "betas": [0.9, 1]}},
        "run_id": "run-7f3a",
        "job_id": "job-0042",
        "notebook": "experiments/train.ipynb",
        "notebook_sha256": "ab" * 32,
        "git": {
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "dirty": True,
            "branch": "main",
        },
        "versions": {"python": "3.11.7", "torch": "2.13.0"},
        "artifacts": [
            {
                "format": "onnx",
                "file": "model.onnx",
                "sha256": _sha256(files["onnx"]) if "onnx" in files else "ef" * 32,
                "size": files["onnx"].stat().st_size if "onnx" in files else 10,
                "max_abs_diff": 2.5e-7,
                "tolerance": 1e-5,
                "details": {},
            },
            {
                "format": "savedmodel",
                "file": "saved_model",
                "sha256": "cd" * 32,
                "size": 210,
                "max_abs_diff": None,
                "tolerance": None,
                "details": {"signature": "serving_default"},
            },
        ],
    }
    version.update(extra)
    return version


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}


def test_version_run_and_artifacts(store, tmp_path):
    files = _files(tmp_path)
    version = _version("resnet-mini", 3, files)
    client: MlflowClient = store["client"]

    number = mirror.mirror_version(store["uri"], version, files)

    model = client.get_registered_model("resnet-mini")
    assert model.name == "resnet-mini"
    mv = client.get_model_version("resnet-mini", number)
    assert mv.status == "READY"
    tags = mv.tags
    assert tags["lepton_lab.version"] == "3"
    assert tags["lepton_lab.name"] == "resnet-mini"
    assert tags["lepton_lab.framework"] == "torch"
    assert tags["lepton_lab.run_id"] == "run-7f3a"
    assert tags["lepton_lab.job_id"] == "job-0042"
    assert tags["lepton_lab.notebook"] == "experiments/train.ipynb"
    assert tags["lepton_lab.notebook_sha256"] == "ab" * 32
    assert tags["lepton_lab.git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["lepton_lab.git.dirty"] == "true"
    assert tags["lepton_lab.git.branch"] == "main"
    assert tags["lepton_lab.versions.python"] == "3.11.7"
    assert tags["lepton_lab.versions.torch"] == "2.13.0"
    assert tags["lepton_lab.artifact.onnx.sha256"] == _sha256(files["onnx"])
    assert float(tags["lepton_lab.artifact.onnx.max_abs_diff"]) == 2.5e-7
    assert float(tags["lepton_lab.artifact.onnx.tolerance"]) == 1e-5
    assert "lepton_lab.artifact.savedmodel.max_abs_diff" not in tags
    assert tags["lepton_lab.artifact.savedmodel.details"] == '{"signature": "serving_default"}'
    # The version's own tags are kept; a name in MLflow's namespace moves under ours.
    assert tags["team"] == "vision"
    assert "mlflow.user" not in tags
    assert tags["lepton_lab.tag.mlflow.user"] == "not-mlflow's"

    # The run: named after the version, finished, with params, metrics and lineage.
    run = client.get_run(mv.run_id)
    assert run.info.run_name == "resnet-mini v3"
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == mirror.EXPERIMENT_NAME
    assert run.data.params == {
        "lr": "0.001",
        "batch_size": "64",
        "optimizer.name": "adam",
        "optimizer.betas": "[0.9, 1]",
    }
    assert run.data.metrics == {"val_loss": 0.125, "accuracy": 0.875, "epochs": 3.0}
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.value, m.timestamp) for m in history] == [(0.125, 1_800_000_000_500)]
    assert run.data.tags["lepton_lab.version"] == "3"
    assert run.data.tags["lepton_lab.git.commit"] == version["git"]["commit"]
    assert run.data.tags["mlflow.source.git.commit"] == version["git"]["commit"]
    assert run.data.tags["mlflow.source.name"] == "experiments/train.ipynb"

    # The artifacts: in the experiment's artifact location, downloadable and byte-identical,
    # through the run and through the registry's models:/ URI.
    assert mv.source == f"{run.info.artifact_uri}/model"
    assert run.info.artifact_uri.startswith(store["artifacts"].as_uri())
    listed = {a.path: a.is_dir for a in client.list_artifacts(run.info.run_id, "model")}
    assert listed == {"model/onnx": True, "model/savedmodel": True}
    got = Path(client.download_artifacts(run.info.run_id, "model", str(tmp_path / "from_run")))
    assert (got / "onnx" / "model.onnx").read_bytes() == files["onnx"].read_bytes()
    saved = files["savedmodel"]
    for relative in ("saved_model.pb", "variables/variables.data-00000-of-00001"):
        downloaded = got / "savedmodel" / "saved_model" / relative
        assert downloaded.read_bytes() == (saved / relative).read_bytes()
    download_uri = client.get_model_version_download_uri("resnet-mini", number)
    assert download_uri == mv.source
    via_registry = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=download_uri, dst_path=str(tmp_path / "from_registry")
        )
    )
    onnx = via_registry / "onnx" / "model.onnx"
    assert _sha256(onnx) == tags["lepton_lab.artifact.onnx.sha256"]


def test_versions_aliases_and_reregistration(store, tmp_path):
    files = _files(tmp_path)
    client: MlflowClient = store["client"]
    uri = store["uri"]

    first = mirror.mirror_version(uri, _version("classifier", 1, files, aliases=["prod"]), files)
    second = mirror.mirror_version(
        uri, _version("classifier", 2, files, aliases=["staging", "v2"]), files
    )
    assert (first, second) == ("1", "2")
    # Mirroring a version again (a retry) makes no second MLflow version.
    assert mirror.mirror_version(uri, _version("classifier", 2, files), files) == "2"
    assert len(client.search_model_versions("name = 'classifier'")) == 2
    assert mirror.find_version(uri, "classifier", 1) == "1"
    assert mirror.find_version(uri, "classifier", 9) is None
    assert mirror.find_version(uri, "never-registered", 1) is None

    # (MLflow 3.17's SQL store answers an alias lookup with an int version, others with str.)
    assert str(client.get_model_version_by_alias("classifier", "prod").version) == "1"
    assert str(client.get_model_version_by_alias("classifier", "staging").version) == "2"
    # MLflow keeps v<digits> for itself: that alias is skipped, the version still mirrored.
    assert _aliases(client, "classifier") == {"prod": "1", "staging": "2"}

    # An alias moves; another is removed; removing it again is no error.
    mirror.mirror_alias(uri, "classifier", "prod", second)
    assert str(client.get_model_version_by_alias("classifier", "prod").version) == "2"
    mirror.mirror_alias_delete(uri, "classifier", "staging")
    mirror.mirror_alias_delete(uri, "classifier", "staging")
    assert _aliases(client, "classifier") == {"prod": "2"}
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("classifier", "staging")
    mirror.mirror_alias_delete(uri, "never-registered", "prod")
    with pytest.raises(ValueError, match="version-like"):
        mirror.mirror_alias(uri, "classifier", "V7", first)
    with pytest.raises(ValueError, match="does not accept"):
        mirror.mirror_alias(uri, "classifier", "latest", first)

    # Deleting a version removes it and marks its run deleted; deleting it again is no error.
    run_id = client.get_model_version("classifier", first).run_id
    mirror.mirror_delete(uri, "classifier", first)
    mirror.mirror_delete(uri, "classifier", first)
    mirror.mirror_delete(uri, "never-registered", "1")
    assert [str(mv.version) for mv in client.search_model_versions("name = 'classifier'")] == ["2"]
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mirror.find_version(uri, "classifier", 1) is None

    # The same number registered again (the name deleted while the mirror was off) is a new
    # MLflow version, and the one find_version gives.
    again = _version("classifier", 2, files, created_at=1_900_000_000.0)
    assert mirror.mirror_version(uri, again, files) == "3"
    assert mirror.mirror_version(uri, again, files) == "3"
    assert mirror.find_version(uri, "classifier", 2) == "3"


def test_mlflow_limits_and_odd_values(store, tmp_path):
    """Values MLflow would refuse as they are are made acceptable, not dropped."""
    files = {"onnx": _files(tmp_path)["onnx"]}
    version = _version(
        "limits",
        1,
        files,
        params={"notes": "x" * 7000, "weird key/../?": 1, "none": None, "flag": False},
        metrics={"loss": math.inf, "ok": 0.5, "bad": "n/a"},
        versions={"python": "3.11.7", "cuda?": "12.4"},
        git=None,
        job_id=None,
    )
    number = mirror.mirror_version(store["uri"], version, files)
    client: MlflowClient = store["client"]
    mv = client.get_model_version("limits", number)
    run = client.get_run(mv.run_id)
    params = run.data.params
    assert len(params["notes"]) == 6000 and params["notes"].endswith("...")
    assert params["weird key_..__"] == "1"
    assert params["none"] == "None"
    assert params["flag"] == "false"
    # A non-number is left out; MLflow's SQL store keeps an infinite value as the largest float.
    assert run.data.metrics == {"loss": sys.float_info.max, "ok": 0.5}
    assert mv.tags["lepton_lab.versions.cuda_"] == "12.4"
    # No git and no job: no such tags, rather than "None".
    assert not any(key.startswith("lepton_lab.git.") for key in mv.tags)
    assert "lepton_lab.job_id" not in mv.tags
    assert "mlflow.source.git.commit" not in run.data.tags


def test_nothing_is_created_for_a_missing_artifact(store, tmp_path):
    files = {"onnx": tmp_path / "absent.onnx"}
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        mirror.mirror_version(store["uri"], _version("ghost", 1, files), files)
    with pytest.raises(ValueError, match="format"):
        mirror.mirror_version(store["uri"], _version("ghost", 1, {}), {"../up": tmp_path})
    with pytest.raises(MlflowException):
        store["client"].get_registered_model("ghost")


def test_failed_mirror_marks_its_run_failed(store, tmp_path, monkeypatch):
    files = {"onnx": _files(tmp_path)["onnx"]}

    def refuse(self, *args, **kwargs):
        raise MlflowException("registry unavailable")

    monkeypatch.setattr(MlflowClient, "create_model_version", refuse)
    with pytest.raises(MlflowException, match="registry unavailable"):
        mirror.mirror_version(store["uri"], _version("flaky", 1, files), files)
    client: MlflowClient = store["client"]
    experiment = client.get_experiment_by_name(mirror.EXPERIMENT_NAME)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`lepton_lab.name` = 'flaky'"
    )
    assert [r.info.status for r in runs] == ["FAILED"]


def test_fresh_store_quietly_with_artifacts_next_to_the_database(tmp_path, caplog):
    """A store that does not exist yet: creating it logs "Creating initial MLflow database
    tables..." at INFO, kept out of the logs while the mirror runs (the mlflow logger's level
    left as it was); with no experiment yet, a SQLite store's artifacts go next to the database
    file, not into the current directory (MLflow's default, which differs between kernels; the
    ``empty_cwd`` fixture checks that nothing landed there)."""
    level = logging.getLogger("mlflow").level
    uri = f"sqlite:///{tmp_path}/fresh.db"
    files = {"onnx": _files(tmp_path)["onnx"]}
    with caplog.at_level(logging.INFO):
        number = mirror.mirror_version(uri, _version("fresh", 1, files), files)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("mlflow")] == []
    assert [r.getMessage() for r in caplog.records if r.name == "lepton_lab.models"] == [
        f"mirrored fresh v1 to MLflow ({uri}) as version 1"
    ]
    assert logging.getLogger("mlflow").level == level

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("fresh", number).run_id)
    assert run.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())
    assert (tmp_path / "mlartifacts").is_dir()


def test_tracking_uri_and_redaction(monkeypatch):
    monkeypatch.delenv(mirror.ENV_MLFLOW_TRACKING_URI, raising=False)
    assert mirror.tracking_uri() is None
    monkeypatch.setenv(mirror.ENV_MLFLOW_TRACKING_URI, "  ")
    assert mirror.tracking_uri() is None
    monkeypatch.setenv(mirror.ENV_MLFLOW_TRACKING_URI, "http://mlflow:5000")
    assert mirror.tracking_uri() == "http://mlflow:5000"
    assert (
        mirror.redact_uri("postgresql://user:s3cret@db.example:5432/mlflow")
        == "postgresql://***@db.example:5432/mlflow"
    )
    assert mirror.redact_uri("https://tok@mlflow.example/") == "https://***@mlflow.example/"
    assert mirror.redact_uri("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_missing_mlflow_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'lepton-lab\[mlflow\]'"):
        mirror.mirror_version("sqlite:///x.db", _version("x", 1, {}), {})


def test_registering_mirrors_the_version_and_its_aliases_and_deletion_follows(
    store, tmp_path, monkeypatch
):
    """The registry itself, with the tracking URI set: a torch model registered in the lab is
    a version in MLflow's registry with its artifacts; aliases move there too; a deleted
    version is deleted there."""
    import torch

    from lepton_lab.models.registry import ModelRegistry
    from lepton_lab.store import open_store

    monkeypatch.setenv(mirror.ENV_MLFLOW_TRACKING_URI, store["uri"])
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(tmp_path / "state"))
    registry = ModelRegistry(
        open_store(f"sqlite:///{tmp_path}/lab.db"), artifact_dir=str(tmp_path / "artifacts")
    )
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3))
    example = torch.rand(5, 4).numpy()
    first = registry.register(
        module, "mirrored", formats=["safetensors"], example_input=example, metrics={"acc": 0.5}
    )
    second = registry.register(module, "mirrored", formats=["safetensors"], example_input=example)
    client = store["client"]
    for record in (first, second):
        assert record["mlflow_version"]
        found = client.get_model_version("mirrored", record["mlflow_version"])
        assert found.tags["lepton_lab.version"] == str(record["version"])
        assert (
            found.tags["lepton_lab.artifact.safetensors.sha256"] == record["artifacts"][0]["sha256"]
        )
    registry.add_alias("mirrored", 1, "production")
    assert (
        str(client.get_model_version_by_alias("mirrored", "production").version)
        == first["mlflow_version"]
    )
    registry.add_alias("mirrored", 2, "production")  # moves here and there
    assert (
        str(client.get_model_version_by_alias("mirrored", "production").version)
        == second["mlflow_version"]
    )
    registry.remove_alias("mirrored", "production")
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("mirrored", "production")
    registry.delete("mirrored", 1)
    remaining = {str(v.version) for v in client.search_model_versions("name='mirrored'")}
    assert remaining == {second["mlflow_version"]}
