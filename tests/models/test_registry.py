"""The registry's bookkeeping on a real SQLite store and artifact folder: numbering, references
(latest, N, @alias, best:<metric>), aliases, tags, lineage, partial and total export failures,
deletion and its failure paths, bad input, corruption, comparison; one round on PostgreSQL."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import tempfile
import warnings
from pathlib import Path

import pytest

from tests.models.digits import (
    digits,
    files_under,
    row_counts,
    torch_mlp,
    use_state_dir,
)
from tests.support.git import git
from tests.support.permissions import not_private

os.environ["KERAS_BACKEND"] = "torch"

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lepton_lab as ll  # noqa: E402
from lepton_lab.contract import NotFound, RequestError  # noqa: E402
from lepton_lab.models import CorruptArtifact, ModelExportError  # noqa: E402
from lepton_lab.models import artifacts as store_files  # noqa: E402
from lepton_lab.models.formats import Safetensors  # noqa: E402
from lepton_lab.models.registry import ModelRegistry  # noqa: E402


@pytest.fixture
def reg(tmp_path, monkeypatch):
    """``ll.models`` on a fresh state dir; tests run in an empty folder outside any git tree."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return use_state_dir(monkeypatch, tmp_path / "state")


def models_dir(reg) -> Path:
    return Path(reg.models_root)


def add(name: str, seed: int = 0, **options):
    """Register a fresh 64-32-10 MLP (weights from ``seed``) as safetensors: fast, exact."""
    options.setdefault("formats", ["safetensors"])
    return ll.models.register(torch_mlp(seed), name, example_input=digits()[0][:8], **options)


def seed_of(state: dict) -> int:
    """Which ``torch_mlp(seed)`` a loaded state dict came from (seeds 0-9)."""
    for seed in range(10):
        reference = torch_mlp(seed).state_dict()
        if all(torch.equal(state[k], v) for k, v in reference.items()):
            return seed
    raise AssertionError("the weights match no seed")


def folder_of(version) -> Path:
    (parent,) = {Path(a.uri).parent for a in version.artifacts}
    return parent


def orphans(reg) -> list[str]:
    """Folders under models/<name>/ that no stored version owns (and set-aside leftovers)."""
    owned = {
        Path(a["uri"]).parent
        for m in reg.list()
        for v in reg.store.model_versions(m["name"])
        for a in v["artifacts"]
    }
    root = models_dir(reg)
    found = [p for p in root.glob("*/*")] if root.exists() else []
    return sorted(str(p.relative_to(root)) for p in found if p not in owned)


def snapshot(reg) -> tuple[dict, list[str]]:
    """The registry's rows, and every file in its state dir (store, artifacts)."""
    return row_counts(reg.store), files_under(Path(reg.models_root).parents[1])


# -- numbering and references -----------------------------------------------------------------
def test_versions_are_numbered_per_name(reg):
    assert [add("alpha", seed=s).version for s in (1, 2, 3)] == [1, 2, 3]
    assert add("beta", seed=4).version == 1
    assert [v.version for v in ll.models.get("alpha")] == [3, 2, 1]
    assert ll.models.get("alpha", 2).version == 2
    summaries = {m["name"]: m for m in reg.list()}
    assert (summaries["alpha"]["latest_version"], summaries["alpha"]["versions"]) == (3, 3)
    assert (summaries["beta"]["latest_version"], summaries["beta"]["versions"]) == (1, 1)
    table = str(ll.models.list())
    assert "alpha" in table and "beta" in table
    # each version has its own folder with its own weights
    assert len({folder_of(v) for v in ll.models.get("alpha")}) == 3
    for v in ll.models.get("alpha"):
        assert seed_of(v.load(format="safetensors")) == v.version


def test_registrations_at_once_get_distinct_numbers(reg):
    from concurrent.futures import ThreadPoolExecutor

    models = [torch_mlp(seed) for seed in range(8)]  # torch's seed is global: made here
    x = digits()[0][:8]

    def register(model):
        return ll.models.register(model, "digits", formats=["safetensors"], example_input=x)

    with ThreadPoolExecutor(4) as pool:
        numbers = [v.version for v in pool.map(register, models)]
    assert sorted(numbers) == list(range(1, 9))
    versions = ll.models.get("digits")
    assert len({folder_of(v) for v in versions}) == 8
    for v in versions:  # each number holds the weights its registration sent
        assert seed_of(v.load(format="safetensors")) == numbers.index(v.version)
    assert orphans(reg) == []


def test_load_by_latest_number_alias_and_best(reg):
    add("digits", seed=1, metrics={"accuracy": 0.80, "loss": 0.50, "score": 3.0})
    add("digits", seed=2, metrics={"accuracy": 0.90, "loss": 0.70, "score": 1.0})
    add("digits", seed=3, metrics={"accuracy": 0.85, "loss": 0.30, "score": 2.0})
    ll.models.set_alias("digits", 1, "production")
    assert seed_of(ll.models.load("digits")) == 3
    assert seed_of(ll.models.load("digits", "latest")) == 3
    assert seed_of(ll.models.load("digits", 2)) == 2
    assert seed_of(ll.models.load("digits", "2")) == 2
    assert seed_of(ll.models.load("digits", "@production")) == 1
    assert seed_of(ll.models.load("digits@production")) == 1
    assert seed_of(ll.models.load("digits", "best:accuracy")) == 2
    assert seed_of(ll.models.load("digits@best:loss")) == 3  # loss: lowest is best
    assert reg.resolve("digits", "best:min:accuracy") == 1
    assert reg.resolve("digits", "best:max:loss") == 2
    assert reg.resolve("digits", "best:score") == 1  # unknown kinds: higher is better
    assert reg.resolve("digits", "best:min:score") == 2
    with pytest.raises(NotFound, match="metric 'f1'"):
        reg.resolve("digits", "best:f1")
    with pytest.raises(RequestError, match="best:sideways:accuracy"):
        reg.resolve("digits", "best:sideways:accuracy")
    for bad in (0, -1, True, "newest", 1.5):
        with pytest.raises(RequestError):
            reg.resolve("digits", bad)


def test_an_alias_points_at_one_version_and_moves_atomically(reg):
    add("digits", seed=1, aliases=["production", "candidate"])
    add("digits", seed=2)
    assert ll.models.get("digits", 1).aliases == ["candidate", "production"]
    moved = ll.models.set_alias("digits", 2, "production")
    assert moved.version == 2 and moved.aliases == ["production"]
    assert ll.models.get("digits", 1).aliases == ["candidate"]
    assert reg.store.model_aliases("digits") == {"candidate": 1, "production": 2}
    assert row_counts(reg.store)["model_aliases"] == 2
    assert seed_of(ll.models.load("digits@production")) == 2
    ll.models.set_alias("digits", 2, "production")  # again: nothing changes
    assert reg.store.model_aliases("digits") == {"candidate": 1, "production": 2}
    # set_aliases makes exactly these point here: candidate moves, production stays
    assert reg.set_aliases("digits", 2, ["candidate"])["aliases"] == ["candidate"]
    assert reg.store.model_aliases("digits") == {"candidate": 2}
    ll.models.remove_alias("digits", "candidate")
    assert reg.store.model_aliases("digits") == {}
    with pytest.raises(NotFound, match="no alias 'candidate'"):
        ll.models.load("digits@candidate")
    with pytest.raises(NotFound, match="no alias 'candidate'"):
        ll.models.remove_alias("digits", "candidate")
    for bad in ("latest", "best", "3", "-x", "a b", "x" * 65):
        with pytest.raises(RequestError, match="alias"):
            ll.models.set_alias("digits", 1, bad)
    assert row_counts(reg.store)["model_aliases"] == 0


def test_tags_merge_and_none_removes_one(reg):
    add("digits", tags={"team": "vision", "stage": "dev"})
    version = ll.models.set_tags("digits", 1, stage=None, owner="ana")
    assert version.tags == {"team": "vision", "owner": "ana"}
    assert ll.models.get("digits", 1).tags == {"team": "vision", "owner": "ana"}
    ll.models.set_tags("digits", 1, owner="bo", missing=None)
    assert ll.models.get("digits", 1).tags == {"team": "vision", "owner": "bo"}
    with pytest.raises(RequestError, match="tag 'n' must be a string"):
        ll.models.set_tags("digits", 1, n=3)
    with pytest.raises(RequestError, match="tag 'stage' must be a string"):
        add("digits", tags={"stage": None})
    assert ll.models.get("digits", 1).tags == {"team": "vision", "owner": "bo"}
    assert [v.version for v in ll.models.get("digits")] == [1]


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_records_git_state_and_library_versions(reg, tmp_path, monkeypatch):
    outside = add("digits")
    assert outside.git is None  # the test's folder is in no git work tree

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('train')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    clean = add("digits")
    assert clean.git is not None
    assert clean.git.commit == git(repo, "rev-parse", "HEAD")
    assert clean.git.dirty is False
    assert clean.git.branch == "main"

    (repo / "train.py").write_text("print('changed')\n")
    dirty = add("digits")
    assert dirty.git.commit == clean.git.commit
    assert dirty.git.dirty is True

    versions = dirty.versions
    assert versions["python"] == platform.python_version()
    assert versions["torch"] == importlib.metadata.version("torch") == torch.__version__
    assert versions["numpy"] == np.__version__
    assert versions["lepton-lab"] == importlib.metadata.version("lepton-lab")
    # stored, not only returned
    assert reg.store.model_version("digits", 3)["git"]["dirty"] is True


# -- export failures --------------------------------------------------------------------------
class ErfinvHead(torch.nn.Module):
    """Runs everywhere but in ONNX: torch.onnx has no translation of ``erfinv``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        return torch.erfinv(torch.tanh(self.linear(x)) * 0.5)


def test_a_failing_format_leaves_the_others_registered_and_says_why(reg):
    x = digits()[0][:8]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        version = ll.models.register(
            ErfinvHead(), "erfinv", formats=["safetensors", "onnx", "onnx-int8"], example_input=x
        )
    said = sorted(str(w.message) for w in caught if "was not registered" in str(w.message))
    assert len(said) == 2
    assert said[0].startswith("erfinv v1: format 'onnx' was not registered: ")
    assert said[1].startswith("erfinv v1: format 'onnx-int8' was not registered: needs the")
    assert version.formats == ["safetensors"]
    assert sorted(version.failed_formats) == ["onnx", "onnx-int8"]
    assert "ConversionError" in version.failed_formats["onnx"]
    assert "needs the 'onnx' artifact" in version.failed_formats["onnx-int8"]
    assert sorted(p.name for p in folder_of(version).iterdir()) == ["model.safetensors"]
    assert reg.store.model_version("erfinv", 1)["failed_formats"] == version.failed_formats
    with pytest.raises(NotFound, match="no 'onnx' artifact"):
        ll.models.load("erfinv", format="onnx")
    module = ll.models.load("erfinv", format="safetensors", module=ErfinvHead())
    expected = ErfinvHead()
    expected.load_state_dict(ll.models.load("erfinv", format="safetensors"))
    assert torch.equal(module.linear.weight, expected.linear.weight)


def test_a_tolerance_the_output_misses_fails_that_format(reg):
    with pytest.warns(UserWarning, match="'onnx-int8' was not registered"):
        version = add(
            "strict",
            formats=["safetensors", "onnx-int8"],
            tolerance={"onnx-int8": 0.0},  # int8 weights are never exact
        )
    assert version.formats == ["safetensors"]
    assert "over the tolerance 0" in version.failed_formats["onnx-int8"]
    with pytest.raises(RequestError, match="tolerance for 'onnx-int8' must be a number >= 0"):
        add("strict", formats=["onnx-int8"], tolerance={"onnx-int8": -1.0})
    assert [v.version for v in ll.models.get("strict")] == [1]


def test_when_every_format_fails_nothing_is_recorded(reg, tmp_path, monkeypatch):
    add("digits")
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    before = snapshot(reg)

    def broken(self, model, path, example, staged):
        path.write_bytes(b"half a file")
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(Safetensors, "export", broken)
    with pytest.raises(ModelExportError, match="disk quota exceeded") as raised:
        add("digits", seed=1)
    assert isinstance(raised.value, RequestError)
    with pytest.raises(ModelExportError, match="safetensors: OSError"):
        add("fresh-name", seed=1)
    assert snapshot(reg) == before
    assert list(staging.iterdir()) == []  # the staging folders went too
    assert [v.version for v in ll.models.get("digits")] == [1]
    with pytest.raises(NotFound):
        ll.models.get("fresh-name")


def test_a_failure_after_the_files_are_published_leaves_neither_rows_nor_files(reg, monkeypatch):
    add("digits")
    before = snapshot(reg)

    def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(reg.store, "add_model_alias", broken)
        with pytest.raises(ConnectionError):
            add("digits", seed=1, aliases=["production"])
    assert snapshot(reg) == before
    assert orphans(reg) == []


# -- deletion ---------------------------------------------------------------------------------
def test_delete_removes_the_rows_and_the_folder(reg):
    first = add("digits", seed=1, aliases=["production"])
    second = add("digits", seed=2)
    ll.models.log_evaluation("digits", 1, dataset="holdout", accuracy=0.9)
    assert row_counts(reg.store) == {
        "model_versions": 2,
        "model_artifacts": 2,
        "model_aliases": 1,
        "model_evaluations": 1,
    }
    ll.models.delete("digits", 1)
    assert not folder_of(first).exists()
    assert folder_of(second).is_dir()
    assert row_counts(reg.store) == {
        "model_versions": 1,
        "model_artifacts": 1,
        "model_aliases": 0,
        "model_evaluations": 0,
    }
    assert [v.version for v in ll.models.get("digits")] == [2]
    with pytest.raises(NotFound, match="no version 1"):
        ll.models.load("digits", 1)
    assert orphans(reg) == []
    ll.models.delete("digits", "latest")
    assert not folder_of(second).exists()
    assert reg.list() == []
    assert sum(row_counts(reg.store).values()) == 0
    assert orphans(reg) == []
    with pytest.raises(NotFound, match="no model named 'digits'"):
        ll.models.delete("digits", 2)


def test_a_failed_row_deletion_puts_the_files_back(reg, monkeypatch):
    version = add("digits", seed=1, aliases=["production"])
    before = snapshot(reg)

    def broken(name, number):
        raise ConnectionError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(reg.store, "delete_model_version", broken)
        with pytest.raises(ConnectionError):
            ll.models.delete("digits", 1)
    assert snapshot(reg) == before
    assert folder_of(version).is_dir()
    assert seed_of(ll.models.load("digits@production")) == 1  # the digest still matches
    assert orphans(reg) == []


def test_a_folder_that_could_not_be_removed_is_swept_by_the_next_delete(reg, monkeypatch, caplog):
    first = add("digits", seed=1)
    add("digits", seed=2)
    add("digits", seed=3)
    real_remove = store_files.remove

    def refuse_set_aside(location):
        if location.endswith(store_files.DELETING):
            raise PermissionError(f"{location} is busy")
        real_remove(location)

    monkeypatch.setattr(store_files, "remove", refuse_set_aside)
    with caplog.at_level(logging.WARNING, logger="lepton_lab.models"):
        ll.models.delete("digits", 1)  # the rows go; the folder stays, set aside
    assert "the next delete sweeps it" in caplog.text
    leftover = folder_of(first).with_name(folder_of(first).name + store_files.DELETING)
    assert leftover.is_dir()
    assert orphans(reg) == [f"digits/{leftover.name}"]
    assert [v.version for v in ll.models.get("digits")] == [3, 2]

    monkeypatch.setattr(store_files, "remove", real_remove)
    ll.models.delete("digits", 2)
    assert not leftover.exists()
    assert orphans(reg) == []
    assert [v.version for v in ll.models.get("digits")] == [3]
    assert seed_of(ll.models.load("digits")) == 3


# -- bad input --------------------------------------------------------------------------------
def _sklearn_estimator():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


BAD_REGISTRATIONS = {
    "a string": (lambda: "hello", {}, "cannot register a builtins.str"),
    "a sklearn estimator": (
        _sklearn_estimator,
        {},
        "cannot register a sklearn.linear_model._logistic.LogisticRegression",
    ),
    "an unknown format": (torch_mlp, {"formats": ["pmml"]}, "unknown format 'pmml'"),
    "a format of another framework": (
        torch_mlp,
        {"formats": ["safetensors", "keras"]},
        "format 'keras' does not apply to a torch model",
    ),
    "no formats": (torch_mlp, {"formats": []}, None),
    "a metric that is no number": (torch_mlp, {"metrics": {"accuracy": "high"}}, "accuracy"),
    "a metric that is not finite": (torch_mlp, {"metrics": {"loss": float("nan")}}, "finite"),
    "a reserved alias": (torch_mlp, {"aliases": ["latest"]}, "reserved"),
    "eval_data of different lengths": (
        torch_mlp,
        {"eval_data": (np.zeros((4, 64), np.float32), [1, 2])},
        "4 inputs but 2 labels",
    ),
    "an example of no batch": (torch_mlp, {"example_input": 1.0}, "batch"),
    "no example for a torch module": (torch_mlp, {"example_input": None}, "example_input is"),
}


@pytest.mark.parametrize("case", BAD_REGISTRATIONS)
def test_bad_registrations_are_refused_before_anything_is_written(reg, case):
    add("digits")
    before = snapshot(reg)
    make, options, message = BAD_REGISTRATIONS[case]
    options = {"example_input": digits()[0][:8], **options}
    with pytest.raises(RequestError, match=message) as raised:
        ll.models.register(make(), "digits", **options)
    assert str(raised.value)
    assert snapshot(reg) == before
    assert [v.version for v in ll.models.get("digits")] == [1]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../x", "invalid model name '../x'"),
        ("/etc", "invalid model name '/etc'"),
        ("a/b", "invalid model name 'a/b'"),
        (".hidden", "invalid model name"),
        ("", "non-empty"),
        ("a" * 201, "at most 200 characters, got 201"),
        (None, "non-empty string"),
    ],
)
def test_bad_names_are_refused_before_anything_is_written(reg, tmp_path, name, message):
    add("digits")
    before, everything = snapshot(reg), files_under(tmp_path)
    with pytest.raises(RequestError, match=message):
        add(name)
    assert snapshot(reg) == before
    assert files_under(tmp_path) == everything
    # the same check on every other entry point
    for call in (
        lambda: ll.models.load(name),
        lambda: ll.models.set_alias(name, 1, "production"),
        lambda: ll.models.delete(name, 1),
    ):
        with pytest.raises(RequestError, match=message):
            call()
    assert snapshot(reg) == before
    assert add("a" * 200).version == 1  # the longest name that is allowed


def test_a_missing_version_or_alias_is_not_found(reg):
    add("digits", aliases=["production"])
    before = snapshot(reg)
    with pytest.raises(NotFound, match="model 'digits' has no version 99"):
        ll.models.load("digits", 99)
    with pytest.raises(NotFound, match="model 'digits' has no alias 'staging'"):
        ll.models.load("digits", "@staging")
    with pytest.raises(NotFound, match="no model named 'other'"):
        ll.models.load("other")
    with pytest.raises(NotFound, match="no model named 'other'"):
        ll.models.load("other@production")
    with pytest.raises(NotFound, match="no version 99"):
        ll.models.set_alias("digits", 99, "staging")
    with pytest.raises(NotFound, match="no version 99"):
        ll.models.set_tags("digits", 99, a="b")
    with pytest.raises(NotFound, match="no version 99"):
        ll.models.log_evaluation("digits", 99, accuracy=0.5)
    with pytest.raises(NotFound, match="no version 99"):
        ll.models.delete("digits", 99)
    with pytest.raises(NotFound, match="has no 'onnx' artifact .it has safetensors."):
        ll.models.load("digits", format="onnx")
    with pytest.raises(RequestError, match="does not apply to a torch model"):
        ll.models.load("digits", format="keras")
    with pytest.raises(RequestError, match="unknown format 'pmml'"):
        ll.models.load("digits", format="pmml")
    assert snapshot(reg) == before


def test_a_corrupted_artifact_is_refused_on_load(reg):
    version = add("digits", formats=["safetensors", "torchscript"])
    path = Path(version.artifact("safetensors").uri)
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # the last weights' bytes, flipped
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifact, match="corrupted") as raised:
        ll.models.load("digits", format="safetensors")
    assert str(path) in str(raised.value)
    # the other artifact of the version is intact and still loads
    assert isinstance(ll.models.load("digits", format="torchscript"), torch.jit.ScriptModule)
    Path(version.artifact("torchscript").uri).unlink()
    with pytest.raises(CorruptArtifact, match="missing"):
        ll.models.load("digits", format="torchscript")


# -- evaluation and comparison ----------------------------------------------------------------
def test_compare_orders_best_first_and_includes_evaluations(reg):
    add("digits", seed=1, metrics={"accuracy": 0.80, "loss": 0.50})
    add("digits", seed=2, metrics={"accuracy": 0.90, "loss": 0.70}, aliases=["production"])
    add("digits", seed=3, metrics={"accuracy": 0.85, "loss": 0.30})
    add("digits", seed=4)  # no metrics at all: last, whatever the order
    assert [r["version"] for r in reg.compare("digits", "accuracy")["rows"]] == [2, 3, 1, 4]
    assert [r["version"] for r in reg.compare("digits", "loss")["rows"]] == [3, 1, 2, 4]

    # outside a job: recorded on the version, no job
    evaluation = ll.models.log_evaluation("digits", 1, dataset="holdout-2024", accuracy=0.95)
    assert evaluation["job_id"] is None
    assert evaluation["metrics"] == {"accuracy": 0.95}
    stored = ll.models.get("digits", 1)
    assert [(e.dataset, e.metrics) for e in stored.evaluations] == [
        ("holdout-2024", {"accuracy": 0.95})
    ]
    assert stored.metrics == {"accuracy": 0.80, "loss": 0.50}  # registered metrics stay
    comparison = reg.compare("digits", "accuracy")
    assert [r["version"] for r in comparison["rows"]] == [1, 2, 3, 4]
    assert comparison["rows"][0]["accuracy"] == 0.95
    assert comparison["rows"][0]["evaluated_on"] == "holdout-2024"
    assert comparison["columns"][:3] == ["version", "aliases", "accuracy"]
    assert reg.resolve("digits", "best:accuracy") == 1

    table = ll.models.compare("digits", metric="accuracy")
    assert table.columns == comparison["columns"]
    assert [row[0] for row in table.rows] == [1, 2, 3, 4]
    assert table.rows[1][1] == "production"
    assert "0.95" in str(table) and "<table>" in table._repr_html_()

    with pytest.raises(RequestError, match="no version of 'digits' has the metric 'f1'"):
        ll.models.compare("digits", metric="f1")
    with pytest.raises(RequestError, match="at least one metric"):
        ll.models.log_evaluation("digits", 1)
    with pytest.raises(RequestError, match="must be a number"):
        ll.models.log_evaluation("digits", 1, accuracy="high")
    assert len(ll.models.get("digits", 1).evaluations) == 1


def test_versions_display_in_a_notebook(reg):
    version = add("digits", aliases=["production"], formats=["safetensors", "torchscript"])
    assert repr(version) == "<ModelVersion digits v1 @production [safetensors, torchscript]>"
    page = version._repr_html_()
    assert "digits v1" in page and "torchscript" in page and "@production" in page
    assert version.artifact("torchscript").sha256[:12] in page


def test_privacy_of_the_artifact_directory(reg):
    add("digits", formats=["safetensors", "torchscript"])
    assert not_private(Path(reg.models_root).parent) == []


# -- an fsspec artifact directory ------------------------------------------------------------
def test_an_fsspec_artifact_dir_with_a_local_cache(tmp_path, monkeypatch):
    """Artifacts in fsspec's in-memory filesystem: published with fsspec, fetched into the
    state dir's cache and checked there, set aside and removed with fsspec."""
    import fsspec

    use_state_dir(monkeypatch, tmp_path / "state")
    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    root = f"/lepton-test-{os.getpid()}-{id(tmp_path)}"
    reg = ModelRegistry(ll.models.registry().store, artifact_dir=f"memory://{root}")
    try:
        x = digits()[0][:8]
        first = reg.register(
            torch_mlp(1), "digits", formats=["safetensors", "torchscript"], example_input=x
        )
        uris = {a["format"]: a["uri"] for a in first["artifacts"]}
        assert all(u.startswith(f"memory://{root}/models/digits/") for u in uris.values())
        assert sorted(fs.find(root)) == sorted(u.removeprefix("memory://") for u in uris.values())
        assert not (tmp_path / "state" / "artifacts" / "models").exists()

        script = reg.load("digits", format="torchscript")
        assert isinstance(script, torch.jit.ScriptModule)
        sha = {a["format"]: a["sha256"] for a in first["artifacts"]}
        cached = tmp_path / "state" / "cache" / "models" / sha["torchscript"][:32]
        copy = cached / "model.torchscript.pt"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha["torchscript"]
        assert not_private(tmp_path / "state" / "cache") == []

        # a copy cut short (a download interrupted) is fetched again, not blamed on the store
        copy.write_bytes(copy.read_bytes()[:100])
        assert isinstance(reg.load("digits", format="torchscript"), torch.jit.ScriptModule)
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha["torchscript"]

        # bytes changed in the store itself are refused
        remote = uris["safetensors"].removeprefix("memory://")
        data = bytearray(fs.cat(remote))
        data[-4:] = bytes(b ^ 0xFF for b in data[-4:])
        fs.pipe(remote, bytes(data))
        with pytest.raises(CorruptArtifact, match="corrupted"):
            reg.load("digits", format="safetensors")

        reg.register(torch_mlp(2), "digits", formats=["safetensors"], example_input=x)
        reg.delete("digits", 1)
        left = fs.find(root)
        assert len(left) == 1 and left[0].endswith("/model.safetensors")
        assert not any(store_files.DELETING in p for p in left)
        assert seed_of(reg.load("digits")) == 2
    finally:
        if fs.exists(root):
            fs.rm(root, recursive=True)


# -- PostgreSQL -------------------------------------------------------------------------------
def test_register_alias_and_delete_on_postgresql(tmp_path, monkeypatch):
    from lepton_lab.store import Store
    from tests.support.postgres import postgres_server

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEPTON_LAB_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("LEPTON_LAB_JOB_ID", raising=False)
    with postgres_server() as url:
        store = Store(url)
        pg = ModelRegistry(store, artifact_dir=str(tmp_path / "artifacts"))
        x = digits()[0][:8]
        for seed in (1, 2):
            pg.register(
                torch_mlp(seed),
                "digits",
                formats=["safetensors"],
                example_input=x,
                metrics={"accuracy": 0.8 + seed / 100},
                aliases=["production"],
            )
        assert [v["version"] for v in pg.versions("digits")] == [2, 1]
        assert store.model_aliases("digits") == {"production": 2}
        pg.add_alias("digits", 1, "production")
        assert store.model_aliases("digits") == {"production": 1}
        assert seed_of(pg.load("digits", "@production")) == 1
        assert pg.resolve("digits", "best:accuracy") == 2
        pg.set_tags("digits", 1, {"stage": "prod"})
        pg.log_evaluation("digits", 1, accuracy=0.99)
        assert pg.resolve("digits", "best:accuracy") == 1
        pg.delete("digits", 1)
        assert [v["version"] for v in pg.versions("digits")] == [2]
        assert row_counts(store) == {
            "model_versions": 1,
            "model_artifacts": 1,
            "model_aliases": 0,
            "model_evaluations": 0,
        }
        assert orphans(pg) == []
        store.engine.dispose()


def test_a_deleted_number_is_never_given_again(reg):
    add("digits", seed=1)
    add("digits", seed=2)
    ll.models.delete("digits", 2)
    third = add("digits", seed=3)
    assert third.version == 3  # v2 named other weights once; it stays retired
    ll.models.delete("digits", 1)
    ll.models.delete("digits", 3)
    assert add("digits", seed=4).version == 4


def test_a_sweep_spares_a_folder_set_aside_by_a_deletion_in_progress(reg):
    first = add("digits", seed=1)
    add("digits", seed=2)
    # another process has set v1 aside and not yet deleted its rows
    location = str(folder_of(first))
    aside = store_files.set_aside(location)
    ll.models.delete("digits", 2)  # sweeps the name's leftovers
    assert Path(aside).is_dir()
    store_files.put_back(aside, location)  # its deletion failed
    assert seed_of(ll.models.load("digits", 1)) == 1


def test_a_tolerance_for_a_format_not_exported_is_refused(reg):
    with pytest.raises(RequestError, match="tolerance names 'onnx', which is not being exported"):
        add("digits", seed=1, tolerance={"onnx": 1e-3})
    assert reg.list() == []


class SignFlip(torch.nn.Module):
    """Data-dependent control flow: a trace records one branch, which other inputs leave."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        y = self.linear(x)
        if float(y.sum()) > 0:
            return y
        return -y


def test_a_trace_that_may_not_generalise_is_not_registered(reg):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="'torchscript' was not registered"):
        version = ll.models.register(
            SignFlip(),
            "flip",
            formats=["safetensors", "torchscript"],
            example_input=digits()[0][:8],
        )
    assert version.formats == ["safetensors"]
    assert "torch.jit.trace warned" in version.failed_formats["torchscript"]


def test_one_name_holds_one_framework(reg):
    import keras

    add("digits")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    with pytest.raises(RequestError, match="model 'digits' holds torch versions; register this"):
        ll.models.register(model, "digits", formats=["keras"])
    assert [v.version for v in ll.models.get("digits")] == [1]


def test_an_example_input_the_model_cannot_take_is_said_to_be_the_input(reg):
    with pytest.raises(RequestError, match=r"cannot run on example_input \(shape \(4, 10\)"):
        ll.models.register(
            torch_mlp(0), "digits", formats=["safetensors"], example_input=np.ones((4, 10))
        )
    assert reg.list() == []
