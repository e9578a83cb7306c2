"""Every demo notebook in notebooks/ runs top to bottom on the CPU kernel."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from lepton_lab.models.registry import ModelRegistry
from lepton_lab.store import open_store
from tests.support.models import digits_mlp

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_demo_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(tmp_path / "state"))  # runs stored here
    monkeypatch.delenv("LEPTON_LAB_DATABASE_URL", raising=False)
    if path.name == "evaluate.ipynb":
        register_digits(tmp_path / "state")  # what it evaluates: digits@production
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=240,
        kernel_name=nb.metadata["kernelspec"]["name"],
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
    assert os.environ.get("LEPTON_LAB_SCHEDULER_ADDRESS") is None
    if "ll.fit(" in path.read_text():
        assert (tmp_path / "state" / "lepton_lab.db").exists()
    if path.name == "evaluate.ipynb":
        (evaluation,) = ModelRegistry(open_store()).version("digits", "@production")["evaluations"]
        assert evaluation["dataset"] == "digits-holdout"
        assert 0.5 < evaluation["metrics"]["accuracy"] <= 1.0


def register_digits(state: Path) -> None:
    """A trained digits MLP as ``digits`` v1, alias ``production``, in ``state``'s store."""
    registry = ModelRegistry(open_store())
    model = digits_mlp()
    registry.register(model.net, "digits", formats=["torch.export"], example_input=model.x[:8])
    registry.add_alias("digits", 1, "production")
    assert state.is_dir()
