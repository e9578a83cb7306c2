"""``lepton-lab models ...`` as a user types it: the real console script, in a real process, on a
state dir whose registry this test filled in-process (a torch MLP trained on the digits,
registered through :class:`ModelRegistry` with the same database and artifact directory)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.git import git as _git
from tests.support.models import FakeRun, digits_mlp

CLI = str(Path(sys.executable).parent / "lepton-lab")
MODEL = "digits-mlp"


def _env(state: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LEPTON_LAB_", "DASK_SCHEDULER"))
    }
    env["LEPTON_LAB_STATE_DIR"] = str(state)
    env["LEPTON_LAB_DATABASE_URL"] = f"sqlite:///{state / 'lab.db'}"
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """v1: registered from a run inside a job (run, job, notebook snapshot, git in the job's
    folder); v2: from a notebook in JupyterLab (``JPY_SESSION_NAME``), with onnx-int8 too, an
    evaluation, and the alias ``production`` on v1."""
    from lepton_lab.models.registry import ModelRegistry
    from lepton_lab.store import open_store

    base = tmp_path_factory.mktemp("models-cli")
    state = base / "state"
    state.mkdir()
    project = base / "project"
    project.mkdir()
    notebook = project / "train.ipynb"
    notebook.write_text('{"cells": []}')
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "first")
    commit = _git(project, "rev-parse", "HEAD")

    store = open_store(f"sqlite:///{state / 'lab.db'}")
    registry = ModelRegistry(store, str(state / "artifacts"))
    data = digits_mlp()
    store.create_run("run-digits1", framework="torch", params={"lr": 0.01}, world_size=1)
    job_dir = state / "jobs" / "job-digits1"
    job_dir.mkdir(parents=True)
    (job_dir / "input.ipynb").write_text('{"cells": ["snapshot"]}')
    store.create_job(
        "job-digits1",
        notebook="train.ipynb",
        input_path=str(notebook),
        cwd=str(project),
        output_dir=str(job_dir),
        kernel="python3",
        parameters={"epochs": 30},
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("JPY_SESSION_NAME", raising=False)
        mp.setenv("LEPTON_LAB_JOB_ID", "job-digits1")
        run = FakeRun(store, "run-digits1", data.net, data.x[:8])
        v1 = registry.register(
            run,
            MODEL,
            formats=["safetensors", "onnx"],
            metrics={"accuracy": 0.97, "loss": 0.30},
            tags={"team": "vision"},
            aliases=["production"],
        )
        mp.delenv("LEPTON_LAB_JOB_ID")
        mp.setenv("JPY_SESSION_NAME", str(notebook))
        v2 = registry.register(
            data.net,
            MODEL,
            formats=["safetensors", "onnx", "onnx-int8"],
            example_input=data.x[:8],
            metrics={"accuracy": 0.95, "loss": 0.20},
            params={"lr": 0.02},
            eval_data=(data.x[:300], data.y[:300]),
        )
    registry.log_evaluation(MODEL, 2, dataset="holdout", accuracy=0.96)
    yield SimpleNamespace(
        state=state,
        store=store,
        registry=registry,
        data=data,
        v1=v1,
        v2=v2,
        commit=commit,
        notebook=notebook,
        snapshot=job_dir / "input.ipynb",
    )
    store.engine.dispose()


def cli(lab: SimpleNamespace, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "models", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(lab.state),
        stdin=kwargs.pop("stdin", subprocess.DEVNULL),
        **kwargs,
    )


def ok(lab: SimpleNamespace, *args: str) -> str:
    done = cli(lab, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty folder to export to (``tmp_path`` holds the Jupyter fixtures' folders)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scratch(lab: SimpleNamespace) -> str:
    """A model of this test's own, two versions (safetensors only), to change or delete."""
    name = f"scratch-{uuid.uuid4().hex[:8]}"
    for accuracy in (0.5, 0.6):
        lab.registry.register(
            lab.data.net,
            name,
            formats=["safetensors"],
            example_input=lab.data.x[:4],
            metrics={"accuracy": accuracy},
            aliases=["production"] if accuracy == 0.5 else [],
        )
    return name


# -- list / show / compare ---------------------------------------------------------------------


def test_list_shows_each_name_with_its_latest_version_and_aliases(lab):
    out = ok(lab, "list")
    header, *rows = out.splitlines()
    assert header.split() == [
        "name",
        "framework",
        "latest",
        "versions",
        "aliases",
        "metrics",
        "updated",
    ]
    (row,) = [r for r in rows if r.startswith(MODEL + " ")]
    assert row.split()[:5] == [MODEL, "torch", "2", "2", "production->v1"]
    assert "accuracy=0.95" in row and "loss=0.2" in row

    listed = json.loads(ok(lab, "list", "--json"))
    (model,) = [m for m in listed["models"] if m["name"] == MODEL]
    assert model["latest_version"] == 2 and model["versions"] == 2
    assert model["aliases"] == {"production": 1}


def test_show_prints_lineage_artifacts_and_evaluations(lab):
    out = ok(lab, "show", f"{MODEL}@1")
    lines = out.splitlines()
    assert lines[0] == f"{MODEL} v1 (torch)  @production"
    assert "  run:      run-digits1" in lines
    assert "  job:      job-digits1" in lines
    assert f"  notebook: train.ipynb (sha256 {sha256(lab.snapshot)[:12]})" in lines
    assert f"  git:      {lab.commit[:12]} (clean) on " in out
    params = json.loads(next(x for x in lines if x.startswith("params:")).split(":", 1)[1])
    assert params == {"epochs": 30, "lr": 0.01}  # the job's parameters and the run's
    assert "metrics:    accuracy=0.97, loss=0.3" in lines
    assert "tags:       team=vision" in lines
    libraries = next(x for x in lines if x.startswith("libraries:"))
    assert "python " in libraries and "torch " in libraries and "onnxruntime " in libraries
    for artifact in lab.v1["artifacts"]:
        (row,) = [x for x in lines if x.startswith(f"  {artifact['format']} ")]
        cells = row.split()
        assert cells[1] == artifact["file"]
        assert artifact["sha256"][:12] in cells
        assert f"{artifact['max_abs_diff']:.2e}" in cells
        assert f"{artifact['tolerance']:.1e}" in cells
    assert lines[lines.index("evaluations:") + 1] == "  none"


def test_show_of_a_notebook_version_with_int8_and_an_evaluation(lab):
    out = ok(lab, "show", MODEL)  # latest
    lines = out.splitlines()
    assert lines[0] == f"{MODEL} v2 (torch)"
    assert f"  notebook: {lab.notebook} (sha256 {sha256(lab.notebook)[:12]})" in lines
    assert "  run:      -" in lines and "  job:      -" in lines
    change = next(a for a in lab.v2["artifacts"] if a["format"] == "onnx-int8")["details"]
    (int8,) = [x for x in lines if x.startswith("  onnx-int8 ")]
    assert int8.split()[-1] == f"{change['accuracy_change']:+.4f}"
    (evaluation,) = [x for x in lines if "holdout" in x]
    assert evaluation.split()[-2:] == ["-", "accuracy=0.96"]


@pytest.mark.parametrize(
    "ref, version",
    [
        (f"{MODEL}@1", 1),
        (f"{MODEL}@2", 2),
        (f"{MODEL}@latest", 2),
        (f"{MODEL}@production", 1),
        (f"{MODEL}@best:accuracy", 1),  # v2's evaluation (0.96) is below v1's 0.97
        (f"{MODEL}@best:loss", 2),  # lower is better
        (f"{MODEL}@best:max:loss", 1),
    ],
)
def test_show_json_resolves_each_kind_of_reference(lab, ref, version):
    shown = json.loads(ok(lab, "show", ref, "--json"))
    assert shown["name"] == MODEL and shown["version"] == version
    record = lab.v1 if version == 1 else lab.v2
    assert [a["sha256"] for a in shown["artifacts"]] == [a["sha256"] for a in record["artifacts"]]


def test_compare_orders_rows_by_the_metric(lab):
    def versions(out: str) -> list[str]:
        return [line.split()[0] for line in out.splitlines()[1:]]

    newest_first = ok(lab, "compare", MODEL)
    assert newest_first.splitlines()[0].split() == [
        "version",
        "aliases",
        "accuracy",
        "loss",
        "formats",
        "evaluated_on",
        "created_at",
    ]
    assert versions(newest_first) == ["2", "1"]
    assert versions(ok(lab, "compare", MODEL, "--metric", "accuracy")) == ["1", "2"]
    by_loss = ok(lab, "compare", MODEL, "--metric", "loss")
    assert by_loss.splitlines()[0].split()[:3] == ["version", "aliases", "loss"]
    assert versions(by_loss) == ["2", "1"]
    (v2,) = [line for line in by_loss.splitlines() if line.startswith("2 ")]
    assert "safetensors,onnx,onnx-int8" in v2 and "holdout" in v2

    compared = json.loads(ok(lab, "compare", MODEL, "--metric", "accuracy", "--json"))
    assert compared["metric"] == "accuracy"
    assert [r["version"] for r in compared["rows"]] == [1, 2]
    assert [r["accuracy"] for r in compared["rows"]] == [0.97, 0.96]


# -- export ------------------------------------------------------------------------------------


def test_export_writes_the_artifact_byte_for_byte_and_does_not_overwrite(lab, out):
    (onnx,) = [a for a in lab.v1["artifacts"] if a["format"] == "onnx"]
    target = out / "model.onnx"
    printed = ok(lab, "export", MODEL, "production", "--format", "onnx", "--to", str(target))
    assert printed.strip() == (
        f"exported {MODEL} v1 onnx ({_size(onnx['size'])}, sha256 {onnx['sha256'][:12]}) "
        f"to {target}"
    )
    assert sha256(target) == onnx["sha256"]
    assert target.read_bytes() == Path(onnx["uri"]).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]  # no scratch left

    again = cli(lab, "export", MODEL, "2", "--format", "onnx", "--to", str(target))
    assert again.returncode == 2
    assert (
        again.stderr.strip() == f"lepton-lab: error: {target} exists; pass --force to overwrite it"
    )
    assert sha256(target) == onnx["sha256"]  # untouched

    ok(lab, "export", MODEL, "2", "--format", "onnx", "--to", str(target), "--force")
    (v2_onnx,) = [a for a in lab.v2["artifacts"] if a["format"] == "onnx"]
    assert sha256(target) == v2_onnx["sha256"]

    safetensors = out / "weights.safetensors"
    ok(lab, "export", MODEL, "@production", "--format", "safetensors", "--to", str(safetensors))
    (row,) = [a for a in lab.v1["artifacts"] if a["format"] == "safetensors"]
    assert sha256(safetensors) == row["sha256"]


def _size(n: int) -> str:
    from lepton_lab.cli.common import _human_bytes

    return _human_bytes(n)


def test_export_into_a_folder_names_the_file_like_cp(lab, out):
    """An existing folder, or a path ending in /, receives NAME-vN-FILE (never a file named
    after the folder)."""
    (onnx,) = [a for a in lab.v1["artifacts"] if a["format"] == "onnx"]
    ok(lab, "export", MODEL, "1", "--format", "onnx", "--to", str(out))
    ok(lab, "export", MODEL, "2", "--format", "onnx", "--to", f"{out}/")
    assert sorted(p.name for p in out.iterdir()) == [
        f"{MODEL}-v1-model.onnx",
        f"{MODEL}-v2-model.onnx",
    ]
    assert sha256(out / f"{MODEL}-v1-model.onnx") == onnx["sha256"]
    again = cli(lab, "export", MODEL, "1", "--format", "onnx", "--to", str(out))
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_export_refuses_a_corrupted_artifact(lab, out, scratch):
    record = lab.registry.version(scratch, 1)
    (row,) = record["artifacts"]
    Path(row["uri"]).write_bytes(b"not the weights")
    done = cli(lab, "export", scratch, "1", "--format", "safetensors", "--to", str(out / "w"))
    assert done.returncode == 2
    assert "is corrupted: its sha256 is" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


# -- alias / delete ----------------------------------------------------------------------------


def test_alias_moves_an_alias_and_removes_it(lab, scratch):
    assert ok(lab, "alias", scratch, "2", "production").strip() == (
        f"{scratch}@production -> v2 (moved from v1)"
    )
    assert lab.registry.resolve(scratch, "@production") == 2
    assert ok(lab, "alias", scratch, "latest", "staging").strip() == f"{scratch}@staging -> v2"
    assert lab.registry.version(scratch, 2)["aliases"] == ["production", "staging"]

    wrong = cli(lab, "alias", scratch, "1", "staging", "--remove")
    assert wrong.returncode == 2
    assert f"{scratch}@staging points at v2, not v1; nothing was removed" in wrong.stderr
    removed = ok(lab, "alias", scratch, "production", "staging", "--remove")
    assert removed.strip() == f"{scratch}@staging removed (it pointed at v2)"
    assert lab.registry.version(scratch, 2)["aliases"] == ["production"]


def test_delete_asks_first_and_removes_rows_and_files(lab, scratch):
    folder, folder2 = (Path(lab.registry.version(scratch, v)["location"]) for v in (1, 2))
    assert folder.is_dir() and folder2.is_dir()

    refused = cli(lab, "delete", scratch, "1")  # stdin is not a terminal
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "lepton-lab: error: refusing to delete without confirmation: stdin is not a terminal; "
        "pass --yes"
    )

    def answer(text: bytes) -> subprocess.CompletedProcess:
        """The command in a terminal (a pseudo-terminal as stdin) where ``text`` is typed."""
        primary, secondary = os.openpty()
        try:
            os.write(primary, text)
            return cli(lab, "delete", scratch, "production", stdin=secondary)
        finally:
            os.close(secondary)
            os.close(primary)

    kept = answer(b"n\n")
    assert kept.returncode == 1 and "nothing deleted" in kept.stderr
    assert f"delete {scratch} v1 (safetensors; aliases @production) and its files? [y/N]" in (
        kept.stdout
    )
    assert folder.is_dir() and lab.registry.version(scratch, 1)["version"] == 1

    gone = answer(b"y\n")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.endswith(f"deleted {scratch} v1\n")
    assert not folder.exists()
    assert [v["version"] for v in lab.registry.versions(scratch)] == [2]

    assert ok(lab, "delete", scratch, "2", "--yes").strip() == f"deleted {scratch} v2"
    assert not folder2.exists()
    assert scratch not in ok(lab, "list")
    missing = cli(lab, "show", scratch)
    assert missing.returncode == 2 and f"no model named {scratch!r}" in missing.stderr


# -- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "../x"], "invalid model name '../x'"),
        (["show", ".hidden"], "invalid model name '.hidden'"),
        (["show", "nope"], "no model named 'nope'"),
        (["show", f"{MODEL}@9"], f"model '{MODEL}' has no version 9"),
        (["show", f"{MODEL}@{'9' * 30}"], f"model '{MODEL}' has no version {'9' * 30}"),
        (["show", f"{MODEL}@²"], "invalid alias '²'"),
        (["delete", MODEL, "2147483648", "--yes"], f"model '{MODEL}' has no version 2147483648"),
        (["show", f"{MODEL}@staging"], f"model '{MODEL}' has no alias 'staging'"),
        (["show", f"{MODEL}@best:f1"], f"no version of '{MODEL}' has the metric 'f1'"),
        (["show", f"{MODEL}@1abc"], "invalid alias '1abc'"),
        (["compare", "nope"], "no model named 'nope'"),
        (["compare", MODEL, "--metric", "f1"], f"no version of '{MODEL}' has the metric 'f1'"),
        (["alias", MODEL, "1", "latest"], "'latest' is reserved for version references"),
        (["alias", MODEL, "1", "1abc"], "invalid alias '1abc'"),
        (["alias", MODEL, "7", "prod"], f"model '{MODEL}' has no version 7"),
        (["alias", MODEL, "1", "canary", "--remove"], f"model '{MODEL}' has no alias 'canary'"),
        (["delete", "nope", "1", "--yes"], "no model named 'nope'"),
        (["delete", MODEL, "0", "--yes"], "versions count from 1, got 0"),
        (["export", MODEL, "1", "--format", "xyz", "--to", "{dir}/x"], "unknown format 'xyz'"),
        (
            ["export", MODEL, "1", "--format", "torchscript", "--to", "{dir}/x"],
            f"{MODEL} v1 has no 'torchscript' artifact (it has safetensors, onnx)",
        ),
        (
            ["export", MODEL, "1", "--format", "onnx", "--to", "{dir}/no/such/x"],
            "the folder {dir}/no/such does not exist",
        ),
        (
            ["export", MODEL, "1", "--format", "onnx", "--to", "{dir}/none/"],
            "the folder {dir}/none",
        ),
        (["export", "../x", "1", "--format", "onnx", "--to", "{dir}/x"], "invalid model name"),
    ],
)
def test_mistakes_are_one_readable_line_and_exit_2(lab, out, args, message):
    done = cli(lab, *[a.format(dir=out) for a in args])
    assert done.returncode == 2, done
    assert message.format(dir=out) in done.stderr
    assert done.stderr.startswith("lepton-lab: error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(out.iterdir()) == []  # nothing exported
    assert lab.registry.resolve(MODEL, "@production") == 1  # nothing changed
    assert [v["version"] for v in lab.registry.versions(MODEL)] == [2, 1]
