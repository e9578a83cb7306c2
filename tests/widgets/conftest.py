"""Widget tests run real kernels on real embedded clusters; each kernel gets its own store."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "tests" / "fixtures" / "notebooks" / "widgets_demo.ipynb"


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Kernels started by the test inherit this: no lab, a private store."""
    for name in (
        "LEPTON_LAB_SCHEDULER_ADDRESS",
        "LEPTON_LAB_CLUSTER_FILE",
        "DASK_SCHEDULER_ADDRESS",
        "LEPTON_LAB_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(state))
    return state


def widget_models(nb: Any) -> dict[str, dict[str, Any]]:
    """model id -> state (with its binary ``buffers``), as nbclient saved it in the notebook."""
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return {mid: dict(m["state"], buffers=m.get("buffers", [])) for mid, m in saved.items()}


def array_length(value: Any) -> int:
    """Length of a bqplot array trait as saved (a dict with a shape; data in buffers)."""
    if isinstance(value, dict):
        return int(value["shape"][0])
    return len(value)


def decode_float_array(model: dict[str, Any], key: str) -> list[float]:
    import numpy as np

    for buffer in model.get("buffers", []):
        if buffer["path"] == [key, "value"]:
            return np.frombuffer(base64.b64decode(buffer["data"]), dtype="float64").tolist()
    raise KeyError(key)
