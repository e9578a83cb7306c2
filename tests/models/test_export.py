"""Every export format, for real: a Keras and a torch digits model are exported, each artifact
is reloaded in its own runtime and checked against the original on held-out rows."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from tests.models.digits import (
    TRAIN_ROWS,
    accuracy,
    digits,
    files_under,
    row_counts,
    torch_mlp,
    torch_out,
    trained_keras,
    trained_torch,
    use_state_dir,
)
from tests.support.permissions import not_private

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

import lepton_lab as ll  # noqa: E402
from lepton_lab.contract import RequestError  # noqa: E402

TORCH_FORMATS = ["safetensors", "torch.export", "torchscript", "onnx", "onnx-int8"]
KERAS_FORMATS = ["keras", "onnx", "onnx-int8"]
CASES = [("digits-torch", f) for f in TORCH_FORMATS] + [("digits-keras", f) for f in KERAS_FORMATS]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One state dir (store + artifacts) for the module, and both models registered in it."""
    state = tmp_path_factory.mktemp("state")
    _, _, xh, yh = digits()
    with pytest.MonkeyPatch.context() as mp:
        reg = use_state_dir(mp, state)
        x_train = digits()[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            versions = {
                "digits-torch": ll.models.register(
                    trained_torch(),
                    "digits-torch",
                    formats=TORCH_FORMATS,
                    example_input=x_train[:32],
                    metrics={"accuracy": 0.9},
                    eval_data=(xh, yh),
                ),
                "digits-keras": ll.models.register(
                    trained_keras(),
                    "digits-keras",
                    formats=KERAS_FORMATS,
                    example_input=x_train[:32],
                    eval_data=(xh, yh),
                ),
            }
        not_registered = [str(w.message) for w in caught if "was not registered" in str(w.message)]
        assert not_registered == []
        yield {"state": state, "registry": reg, "versions": versions}


def folder(version) -> Path:
    """The version's folder in the artifact directory (where its artifacts are)."""
    (parent,) = {Path(a.uri).parent for a in version.artifacts}
    return parent


def original(name: str, x: np.ndarray) -> np.ndarray:
    if name == "digits-torch":
        return torch_out(trained_torch(), x)
    return keras.ops.convert_to_numpy(trained_keras()(x, training=False))


def run_loaded(loaded, x: np.ndarray) -> np.ndarray:
    """Outputs of a reloaded artifact, through the runtime's own API (not the registry's)."""
    if isinstance(loaded, onnxruntime.InferenceSession):
        return loaded.run(None, {loaded.get_inputs()[0].name: x})[0]
    if isinstance(loaded, keras.Model):
        return keras.ops.convert_to_numpy(loaded(x, training=False))
    if isinstance(loaded, torch.export.ExportedProgram):
        return torch_out(loaded.module(), x)
    return torch_out(loaded, x)


def test_every_format_is_registered(lab):
    assert lab["versions"]["digits-torch"].formats == TORCH_FORMATS
    assert lab["versions"]["digits-keras"].formats == KERAS_FORMATS
    for version in lab["versions"].values():
        assert version.version == 1
        assert version.failed_formats == {}


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_artifact_digest_size_and_tolerance_are_recorded(lab, name, fmt):
    artifact = lab["versions"][name].artifact(fmt)
    path = Path(artifact.uri)
    assert path.is_file()
    assert path.parent.parent == lab["state"] / "artifacts" / "models" / name
    assert artifact.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert artifact.size == path.stat().st_size > 0
    assert artifact.max_abs_diff is not None and artifact.tolerance is not None
    assert 0.0 <= artifact.max_abs_diff <= artifact.tolerance
    if fmt == "safetensors":  # the same weights: bit-identical outputs, and nothing less counts
        assert artifact.max_abs_diff == artifact.tolerance == 0.0
    elif fmt != "onnx-int8":
        assert artifact.max_abs_diff < 1e-4
    # the stored row says the same as the ModelVersion
    stored = {a["format"]: a for a in lab["registry"].store.model_version(name, 1)["artifacts"]}
    assert stored[fmt]["sha256"] == artifact.sha256


def test_artifact_files_are_private(lab):
    root = lab["state"] / "artifacts"
    assert sorted(files_under(root / "models")) == sorted(
        [
            "digits-keras",
            "digits-torch",
            *[
                f"{name}/{folder(v).name}{suffix}"
                for name, v in lab["versions"].items()
                for suffix in ["", *(f"/{a.file}" for a in v.artifacts)]
            ],
        ]
    )
    assert not_private(root) == []


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_reloaded_artifact_matches_the_original_on_held_out_rows(lab, name, fmt):
    _, _, xh, _ = digits()
    artifact = lab["versions"][name].artifact(fmt)
    expected = original(name, xh)
    if fmt == "safetensors":
        state = ll.models.load(name, format=fmt)
        assert isinstance(state, dict)
        reference = trained_torch().state_dict()
        assert sorted(state) == sorted(reference)
        for key, tensor in reference.items():
            assert torch.equal(state[key], tensor), key
        fresh = torch_mlp(seed=123)  # other weights until filled
        assert not np.allclose(torch_out(fresh, xh), expected)
        filled = ll.models.load(name, format=fmt, module=fresh)
        assert filled is fresh
        np.testing.assert_array_equal(torch_out(filled, xh), expected)
        return
    loaded = lab["registry"].load(name, format=fmt)
    wanted = {
        "keras": keras.Model,
        "torch.export": torch.export.ExportedProgram,
        "torchscript": torch.jit.ScriptModule,
        "onnx": onnxruntime.InferenceSession,
        "onnx-int8": onnxruntime.InferenceSession,
    }[fmt]
    assert isinstance(loaded, wanted), type(loaded)
    got = run_loaded(loaded, xh)
    assert got.shape == expected.shape == (len(xh), 10)
    assert float(np.max(np.abs(got - expected))) <= artifact.tolerance
    if fmt != "onnx-int8":
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    else:  # int8 weights answer differently, but not much: the classes mostly agree
        assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.95


@pytest.mark.parametrize(("name", "fmt"), [(n, f) for n, f in CASES if f.startswith("onnx")])
def test_onnx_sessions_take_any_batch_size(lab, name, fmt):
    session = ll.models.load(name, format=fmt)
    assert isinstance(session, onnxruntime.InferenceSession)
    x_train = digits()[0]
    tolerance = lab["versions"][name].artifact(fmt).tolerance
    for rows in (1, 256):  # the check batch had 32 rows: the batch dimension is dynamic
        x = np.ascontiguousarray(x_train[:rows])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert got.shape == (rows, 10)
        assert float(np.max(np.abs(got - original(name, x)))) <= tolerance


@pytest.mark.parametrize("name", ["digits-torch", "digits-keras"])
def test_int8_accuracy_change_is_recorded(lab, name):
    _, _, xh, yh = digits()
    details = lab["versions"][name].artifact("onnx-int8").details
    session = ll.models.load(name, format="onnx-int8")
    quantized = accuracy(run_loaded(session, xh), yh)
    reference = accuracy(original(name, xh), yh)
    assert reference > 0.8  # the model learned something, so the comparison means something
    assert details["eval_rows"] == len(yh)
    assert details["accuracy"] == pytest.approx(quantized)
    assert details["reference_accuracy"] == pytest.approx(reference)
    assert details["accuracy_change"] == pytest.approx(quantized - reference)


def test_int8_alone_exports_onnx_for_it_but_keeps_only_int8(lab):
    x_train = digits()[0]
    version = ll.models.register(
        trained_keras(), "digits-keras-int8", formats=["onnx-int8"], example_input=x_train[:16]
    )
    assert version.formats == ["onnx-int8"]
    assert sorted(p.name for p in folder(version).iterdir()) == ["model.int8.onnx"]
    details = version.artifact("onnx-int8").details
    assert details["accuracy_change"] is None
    assert "no evaluation data" in details["note"]
    assert "accuracy" not in details


def test_keras_defaults_need_no_example(lab):
    """On the torch backend a Keras model exports to keras and onnx by default, checked on
    rows made from its input shape."""
    version = ll.models.register(trained_keras(), "digits-keras-defaults")
    assert version.formats == ["keras", "onnx"]
    assert version.artifact("onnx").details["check_rows"] == 8
    _, _, xh, _ = digits()
    session = ll.models.load("digits-keras-defaults", format="onnx")
    np.testing.assert_allclose(
        run_loaded(session, xh), original("digits-keras", xh), atol=1e-4, rtol=1e-4
    )


def test_load_without_format_picks_the_framework_default(lab):
    assert isinstance(ll.models.load("digits-torch"), torch.export.ExportedProgram)
    assert isinstance(ll.models.load("digits-keras"), keras.Model)
    # "name@N" is the same version as (name, N)
    assert isinstance(ll.models.load("digits-torch@1", format="onnx"), onnxruntime.InferenceSession)


def test_savedmodel_is_refused_on_the_torch_backend_before_anything_is_written(lab):
    store = lab["registry"].store
    rows, files = row_counts(store), files_under(lab["state"])
    with pytest.raises(RequestError, match="savedmodel") as raised:
        ll.models.register(trained_keras(), "digits-savedmodel", formats=["keras", "savedmodel"])
    assert "'torch'" in str(raised.value)
    assert "TensorFlow" in str(raised.value)
    assert row_counts(store) == rows
    assert files_under(lab["state"]) == files


def run_script(
    script: str, backend: str, state: Path, cwd: Path, *args: str
) -> subprocess.CompletedProcess:
    """``script`` in a fresh Python on a Keras backend and store of its own; it must succeed."""
    env = dict(os.environ, KERAS_BACKEND=backend, LEPTON_LAB_STATE_DIR=str(state))
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


SAVEDMODEL_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import keras
    from sklearn.datasets import load_digits
    import lepton_lab as ll

    assert keras.backend.backend() == "tensorflow", keras.backend.backend()
    keras.utils.set_random_seed(0)
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x, y, xh = x[:{rows}], data.target[:{rows}], x[{rows}:]
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=128, verbose=0)
    version = ll.models.register(
        model, "digits-tf", formats=["keras", "savedmodel"], example_input=x[:16]
    )
    np.save(sys.argv[1], keras.ops.convert_to_numpy(model(xh, training=False)))
    print(json.dumps(version.model_dump()))
    """
).replace("{rows}", str(TRAIN_ROWS))


def folder_digest(folder: Path) -> str:
    """The registry's digest of a folder, computed here from hashlib: sha256 over the sorted
    relative paths, each with its file's own sha256."""
    h = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file()):
        own = hashlib.sha256(item.read_bytes()).hexdigest()
        h.update(f"{item.relative_to(folder).as_posix()}\0{own}\n".encode())
    return h.hexdigest()


def test_savedmodel_from_the_tensorflow_backend(lab, tmp_path):
    pytest.importorskip("tensorflow")
    reference_file = tmp_path / "reference.npy"
    done = run_script(SAVEDMODEL_SCRIPT, "tensorflow", lab["state"], tmp_path, str(reference_file))
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert [a["format"] for a in printed["artifacts"]] == ["keras", "savedmodel"]
    assert printed["versions"]["keras.backend"] == "tensorflow"

    version = ll.models.get("digits-tf", 1)
    artifact = version.artifact("savedmodel")
    saved = Path(artifact.uri)
    assert saved.is_dir() and (saved / "saved_model.pb").is_file()
    assert artifact.sha256 == folder_digest(saved)
    assert artifact.size == sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
    assert 0.0 <= artifact.max_abs_diff <= artifact.tolerance
    assert not_private(folder(version)) == []

    _, _, xh, _ = digits()
    expected = np.load(reference_file)
    loaded = ll.models.load("digits-tf", format="savedmodel")
    assert "serving_default" in loaded.signatures  # what tf.saved_model.load gives back
    np.testing.assert_allclose(loaded.serve(xh).numpy(), expected, atol=1e-5, rtol=1e-5)
    # the .keras file of the same version reloads on this process' torch backend too
    again = ll.models.load("digits-tf", format="keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(xh, training=False)), expected, atol=1e-5, rtol=1e-5
    )


NO_TENSORFLOW_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import lepton_lab as ll

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    version = ll.models.register(model, "no-tf", formats=["keras"])
    loaded = ll.models.load("no-tf", format="keras")
    out = loaded.predict(np.zeros((2, 64), "float32"), verbose=0)
    assert out.shape == (2, 10), out.shape
    assert version.formats == ["keras"], version.formats
    print("tensorflow imported:", "tensorflow" in sys.modules)
    from keras.src.utils import module_utils
    print("probe reset:", module_utils.tensorflow._available is None)
    """
)


def test_a_torch_backend_keras_file_is_saved_and_loaded_without_importing_tensorflow(tmp_path):
    """Keras' serializer imports TensorFlow (about 450 MB) just to ask whether it is there;
    registering and loading a .keras file from a torch-backend process must not pay that."""
    pytest.importorskip("tensorflow")  # the probe only costs anything where TF is installed
    done = run_script(NO_TENSORFLOW_SCRIPT, "torch", tmp_path / "state", tmp_path)
    assert "tensorflow imported: False" in done.stdout, done.stdout
    assert "probe reset: True" in done.stdout, done.stdout
