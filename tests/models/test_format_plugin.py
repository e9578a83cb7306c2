"""A model format installed by another package (entry-point group ``lepton_lab.model_formats``,
``tests/fixtures/format_plugin/``) registers, verifies and loads like the built-in ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lepton_lab.contract import RequestError
from lepton_lab.models import formats
from lepton_lab.models.registry import ModelRegistry
from lepton_lab.store import open_store

PLUGIN = Path(__file__).parents[1] / "fixtures" / "format_plugin"


@pytest.fixture
def plugin_installed(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    formats._plugins.cache_clear()
    yield
    formats._plugins.cache_clear()


def test_a_plugin_format_registers_verifies_and_loads(plugin_installed, tmp_path):
    assert "state-npz" in formats.known_formats()
    registry = ModelRegistry(open_store(f"sqlite:///{tmp_path}/db"), str(tmp_path / "artifacts"))
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    version = registry.register(
        module, "plugged", formats=["state-npz", "safetensors"], example_input=x
    )
    (npz,) = [a for a in version["artifacts"] if a["format"] == "state-npz"]
    assert npz["file"] == "weights.npz" and npz["max_abs_diff"] == 0.0
    weights = registry.load("plugged", 1, format="state-npz")
    assert set(weights) == set(module.state_dict())
    filled = registry.load(
        "plugged",
        1,
        format="state-npz",
        module=torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)),
    )
    with torch.no_grad():
        assert torch.equal(filled(torch.from_numpy(x)), module(torch.from_numpy(x)))
    # a Keras model cannot use it, and says which formats it can
    with pytest.raises(RequestError, match="'state-npz' does not apply to a keras model"):
        formats.format_for("state-npz", "keras")


def test_without_the_plugin_the_format_is_unknown(tmp_path):
    formats._plugins.cache_clear()
    with pytest.raises(RequestError, match="unknown format 'state-npz'; known formats: "):
        formats.format_for("state-npz", "torch")
