"""``lepton-lab models deploy-manifest NAME@alias --target kserve``: the InferenceService it
writes for a registered version validates against KServe's own CRD schema (the v1beta1
``openAPIV3Schema`` in tests/fixtures/kserve, unknown fields refused as ``kubectl apply
--validate=strict`` does), and its mistakes are one line. No Kubernetes cluster is involved:
what a cluster would do with the manifest is outside these tests."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml

from lepton_lab.serving import kserve
from tests.support.models import digits_mlp

SCHEMA = Path(__file__).parents[1] / "fixtures" / "kserve" / "inferenceservice-v1beta1.schema.json"
CLI = str(Path(sys.executable).parent / "lepton-lab")
MODEL = "digits-mlp"
#: KServe's webhook rule for names (IsvcNameFmt) and Kubernetes' for label values
ISVC_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists the known ones (the API
    server's strict field validation), except where it preserves unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(_strict(schema))


def problems(validator: jsonschema.Draft4Validator, manifest: dict) -> list[str]:
    """What the API server would refuse: schema errors, and the name and label rules that
    live outside the schema."""
    found = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]
    meta = manifest.get("metadata", {})
    if not ISVC_NAME.fullmatch(meta.get("name", "")) or len(meta["name"]) > 47:
        found.append(f"metadata.name {meta.get('name')!r}")
    found += [
        f"label {k}={v!r}"
        for k, v in meta.get("labels", {}).items()
        if not LABEL_VALUE.fullmatch(v)
    ]
    return found


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEPTON_LAB_")}
    env["LEPTON_LAB_STATE_DIR"] = str(state)
    env["LEPTON_LAB_DATABASE_URL"] = f"sqlite:///{state / 'lab.db'}"
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A state dir with ``digits-mlp`` v1 (onnx + safetensors, alias ``production``) and
    ``weights-only`` v1 (safetensors: nothing KServe serves), registered once."""
    from lepton_lab.models.registry import ModelRegistry
    from lepton_lab.store import open_store

    state = tmp_path_factory.mktemp("kserve") / "state"
    state.mkdir()
    store = open_store(f"sqlite:///{state / 'lab.db'}")
    registry = ModelRegistry(store, str(state / "artifacts"))
    data = digits_mlp()
    with pytest.MonkeyPatch.context() as mp:
        for key in ("LEPTON_LAB_JOB_ID", "JPY_SESSION_NAME", "LEPTON_LAB_MLFLOW_TRACKING_URI"):
            mp.delenv(key, raising=False)
        v1 = registry.register(
            data.net,
            MODEL,
            formats=["onnx", "safetensors"],
            example_input=data.x[:8],
            aliases=["production"],
        )
        registry.register(
            data.net, "weights-only", formats=["safetensors"], example_input=data.x[:8]
        )
    onnx = next(a for a in v1["artifacts"] if a["format"] == "onnx")
    yield SimpleNamespace(state=state, registry=registry, v1=v1, onnx=onnx)
    store.engine.dispose()


@pytest.fixture
def cli(lab, monkeypatch, capsys):
    """``lepton-lab models deploy-manifest ARGS`` in this process, on the module's state dir:
    (status, stdout, stderr)."""
    from lepton_lab.cli.main import main

    for key, value in _env(lab.state).items():
        if key.startswith("LEPTON_LAB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("LEPTON_LAB_ARTIFACT_DIR", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main(["models", "deploy-manifest", *args])
        except SystemExit as exc:  # argparse's own usage errors
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


# -- the manifest ------------------------------------------------------------------------------
def test_registered_version_gives_a_valid_inference_service(lab, validator):
    manifest = kserve.inference_service(lab.registry.version(MODEL, "@production"))
    body = manifest.body
    assert problems(validator, body) == []
    assert (body["apiVersion"], body["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert body["metadata"]["name"] == "digits-mlp"
    assert "namespace" not in body["metadata"]  # kubectl's current namespace
    model = body["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "onnx", "version": "1"}
    assert model["protocolVersion"] == "v2"  # else KServe finds no runtime for onnx
    assert "runtime" not in model  # Triton is auto-selected for onnx
    assert model["storageUri"] == lab.onnx["uri"]
    assert "resources" not in model  # KServe's configured defaults apply
    labels, notes = body["metadata"]["labels"], body["metadata"]["annotations"]
    assert labels == {
        "lepton-lab.io/model": MODEL,
        "lepton-lab.io/version": "1",
        "lepton-lab.io/format": "onnx",
    }
    assert notes["lepton-lab.io/sha256"] == lab.onnx["sha256"]
    assert notes["lepton-lab.io/artifact-uri"] == lab.onnx["uri"]
    assert notes["lepton-lab.io/version"] == "1"
    # the registered file, on this machine: both problems are said
    assert any("model repository" in n for n in manifest.notes)
    assert any("cannot read this machine's disk" in n for n in manifest.notes)
    text = manifest.yaml()
    assert text.startswith("# KServe InferenceService for digits-mlp v1 (onnx, sha256 ")
    assert yaml.safe_load(text) == body


def test_every_option_still_validates(lab, validator):
    manifest = kserve.inference_service(
        lab.registry.version(MODEL, 1),
        format="onnx",
        name="digits-prod",
        namespace="ml-serving",
        storage_uri="gcs://bucket/kserve/digits",
        resources={
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "1"},
        },
        min_replicas=0,
        max_replicas=3,
        runtime="kserve-tritonserver",
    )
    body = manifest.body
    assert problems(validator, body) == []
    assert body["metadata"]["name"] == "digits-prod"
    assert body["metadata"]["namespace"] == "ml-serving"
    predictor = body["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)
    assert predictor["model"]["runtime"] == "kserve-tritonserver"
    assert predictor["model"]["storageUri"] == "gs://bucket/kserve/digits"  # KServe's spelling
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert manifest.notes == []  # object storage, a repository: nothing to warn about


def test_the_validator_checks_what_it_should(lab, validator):
    """A manifest with a wrong type, a misspelt field, a missing required field or a bad
    quantity is refused: a passing manifest means something."""
    good = kserve.inference_service(lab.registry.version(MODEL, 1)).body
    assert problems(validator, good) == []

    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["predictor"]["minReplicas"] = "1"
    assert any("minReplicas" in p and "integer" in p for p in problems(validator, wrong_type))

    misspelt = copy.deepcopy(good)
    model = misspelt["spec"]["predictor"]["model"]
    model["storageURI"] = model.pop("storageUri")
    assert any("storageURI" in p for p in problems(validator, misspelt))

    no_format_name = copy.deepcopy(good)
    no_format_name["spec"]["predictor"]["model"]["modelFormat"] = {"version": "1"}
    assert any("'name' is a required property" in p for p in problems(validator, no_format_name))

    bad_quantity = copy.deepcopy(good)
    bad_quantity["spec"]["predictor"]["model"]["resources"] = {"limits": {"cpu": "lots"}}
    assert any("resources.limits.cpu" in p for p in problems(validator, bad_quantity))

    bad_name = copy.deepcopy(good)
    bad_name["metadata"]["name"] = "Digits_MLP"
    assert problems(validator, bad_name) == ["metadata.name 'Digits_MLP'"]


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("digits-mlp", "digits-mlp"),
        ("Digits_MLP.v2", "digits-mlp-v2"),
        ("3d-unet", "m-3d-unet"),
        ("_x_", "x"),
        ("a" * 80, "a" * 47),
        ("ab-" * 20, ("ab-" * 16)[:47].rstrip("-")),
    ],
)
def test_names_from_model_names_are_valid(model_name, expected):
    name = kserve.isvc_name(model_name)
    assert name == expected
    assert ISVC_NAME.fullmatch(name) and len(name) <= 47
    assert kserve.check_isvc_name(name) == name


def test_format_mapping_follows_kserve_runtimes():
    """The KServe names the Triton runtime lists in its supportedModelFormats."""
    mapped = {k: (v.model_format, v.runtime) for k, v in kserve.KSERVE_FORMATS.items()}
    assert mapped == {
        "onnx": ("onnx", None),
        "onnx-int8": ("onnx", None),
        "savedmodel": ("tensorflow", None),
        "torchscript": ("pytorch", "kserve-tritonserver"),  # not TorchServe's .mar
    }


# -- staging a Triton model repository ---------------------------------------------------------
def test_stage_lays_out_a_triton_repository(lab, cli, tmp_path, validator):
    repo = tmp_path / "repo"
    status, out, err = cli(f"{MODEL}@production", "--target", "kserve", "--stage", str(repo))
    assert status == 0, err
    copied = repo / MODEL / "1" / "model.onnx"
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == lab.onnx["sha256"]
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == [
        MODEL,
        f"{MODEL}/1",
        f"{MODEL}/1/model.onnx",
    ]
    body = yaml.safe_load(out)
    assert problems(validator, body) == []
    assert body["spec"]["predictor"]["model"]["storageUri"] == str(repo)
    assert f"staged {MODEL} v1 onnx at {copied}" in err
    assert "model repository (<storageUri>" not in err  # it is one now
    assert "cannot read this machine's disk" in err  # still a local folder

    # never merged into: Triton would serve whichever version folder is highest
    status, out, err = cli(f"{MODEL}@production", "--target", "kserve", "--stage", str(repo))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "exists; stage into a new URI" in err


def test_stage_to_an_fsspec_url(lab, cli):
    import fsspec

    repo = f"memory://kserve-{uuid.uuid4().hex[:8]}"
    status, out, err = cli(MODEL, "--target", "kserve", "--stage", repo)
    assert status == 0, err
    fs = fsspec.filesystem("memory")
    data = fs.cat_file(f"{repo.removeprefix('memory://')}/{MODEL}/1/model.onnx")
    assert hashlib.sha256(data).hexdigest() == lab.onnx["sha256"]
    assert yaml.safe_load(out)["spec"]["predictor"]["model"]["storageUri"] == repo
    assert "does not read memory:// URIs" in err


def test_stage_copies_a_folder_format(tmp_path):
    """A SavedModel (a folder) lands as <model>/<version>/model.savedmodel/ with its files."""
    source = tmp_path / "savedmodel"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"ix")
    record = {"name": "tf-digits", "version": 4}

    class Registry:
        def artifact(self, name, version, format):
            assert (name, version, format) == ("tf-digits", 4, "savedmodel")
            return {"format": "savedmodel"}, source

    target = kserve.stage_repository(Registry(), record, "savedmodel", str(tmp_path / "repo"))
    assert target == f"{tmp_path}/repo/tf-digits/4/model.savedmodel"
    assert sorted(p.relative_to(target).as_posix() for p in Path(target).rglob("*")) == [
        "saved_model.pb",
        "variables",
        "variables/variables.index",
    ]


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_writes_the_manifest_to_a_file(lab, tmp_path, validator):
    """The real console script, in its own process: -o FILE holds what stdout would."""
    target = tmp_path / "digits.yaml"
    args = [CLI, "models", "deploy-manifest", f"{MODEL}@production", "--target", "kserve"]
    env = _env(lab.state)
    written = subprocess.run(
        [*args, "--namespace", "ml", "--requests", "cpu=500m,memory=1Gi", "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert f"wrote {target}" in written.stderr
    assert "lepton-lab: note: " in written.stderr and "LEPTON_LAB_ARTIFACT_DIR" in written.stderr
    printed = subprocess.run(
        [*args, "--namespace", "ml", "--requests", "cpu=500m,memory=1Gi"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert printed.returncode == 0, printed.stderr
    assert target.read_text() == printed.stdout
    body = yaml.safe_load(target.read_text())
    assert problems(validator, body) == []
    assert body["metadata"]["namespace"] == "ml"
    assert body["spec"]["predictor"]["model"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"}
    }
    expected = kserve.inference_service(
        lab.registry.version(MODEL, "@production"),
        namespace="ml",
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}},
    )
    assert body == expected.body


def test_cli_options(lab, cli, validator):
    status, out, err = cli(
        f"{MODEL}@1",
        "--target",
        "kserve",
        "--name",
        "digits",
        "--storage-uri",
        "s3://models/kserve/digits",
        "--limits",
        "cpu=2",
        "--limits",
        "memory=2Gi",
        "--gpus",
        "1",
        "--min-replicas",
        "1",
        "--max-replicas",
        "2",
    )
    assert status == 0, err
    body = yaml.safe_load(out)
    assert problems(validator, body) == []
    assert body["metadata"]["name"] == "digits"
    predictor = body["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert predictor["model"]["storageUri"] == "s3://models/kserve/digits"
    assert predictor["model"]["resources"] == {
        "limits": {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "1"}
    }
    assert err == ""  # object storage, a repository: no notes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [f"{MODEL}@production", "--format", "keras"],
            "KServe has no runtime for the 'keras' format; it serves onnx (as onnx), "
            "onnx-int8 (as onnx), savedmodel (as tensorflow), torchscript (as pytorch)",
        ),
        (
            [f"{MODEL}@production", "--format", "savedmodel"],
            "digits-mlp v1 has no 'savedmodel' artifact (it has onnx, safetensors)",
        ),
        (["no-such-model@production"], "no model named 'no-such-model'"),
        ([f"{MODEL}@staging"], "model 'digits-mlp' has no alias 'staging'"),
        ([f"{MODEL}@-bad"], "invalid alias '-bad'"),
        ([f"{MODEL}@7"], "model 'digits-mlp' has no version 7"),
        (["weights-only"], "weights-only v1 has no format KServe can serve (it has safetensors)"),
        ([MODEL, "--name", "Digits_MLP"], "invalid InferenceService name 'Digits_MLP'"),
        ([MODEL, "--name", "d" * 48], "at most 47"),
        ([MODEL, "--requests", "cpu=lots"], "requests cpu='lots' is not a Kubernetes quantity"),
        ([MODEL, "--limits", "cpu"], "--limits takes NAME=QUANTITY"),
        ([MODEL, "--min-replicas", "3", "--max-replicas", "1"], "below minReplicas"),
    ],
)
def test_cli_mistakes_are_one_line(lab, cli, args, message):
    status, out, err = cli(*args, "--target", "kserve")
    assert status == 2, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("lepton-lab: error: ") and message in err, err


def test_cli_refuses_other_targets_and_two_storage_options(cli):
    status, _, err = cli(MODEL, "--target", "sagemaker")
    assert status == 2 and "invalid choice: 'sagemaker'" in err
    status, _, err = cli(MODEL, "--target", "kserve", "--stage", "/x", "--storage-uri", "s3://b")
    assert status == 2 and "not allowed with argument" in err


def test_importing_kserve_needs_no_serving_runtime():
    code = (
        "import sys, lepton_lab.serving.kserve; "
        "print([m for m in ('mlserver', 'kserve', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
