"""Shared fixtures: a real in-process Jupyter server with the Lepton Lab extension
(pytest-jupyter), and helpers to wait for its real Dask cluster."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

# The whole suite runs in one process, and Keras fixes its backend at its first import,
# whichever test module that happens in: the Lepton kernels' default, before any of them.
# (Tests of other backends run them in subprocesses or in ranks' own processes.)
os.environ.setdefault("KERAS_BACKEND", "torch")

from tests.support.settings import config_sections

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def lab_config() -> dict:
    """LeptonLab settings for the test server; tests override keys by parametrizing."""
    return {
        "cluster_mode": "local",
        "n_workers": 2,
        "threads_per_worker": 1,
        "memory_limit": "1GiB",
        "max_workers": 4,
        "dashboard_address": "127.0.0.1:0",
    }


@pytest.fixture(autouse=True)
def installed_kernelspecs(jp_env_jupyter_path):
    """pytest-jupyter isolates the Jupyter paths; put back the kernelspecs that this
    environment's install of lepton-lab (the wheel's shared data) provides."""
    for name in ("lepton-cpu", "lepton-gpu"):
        source = Path(sys.prefix, "share", "jupyter", "kernels", name)
        assert source.is_dir(), f"{source} missing: is lepton-lab installed in this environment?"
        shutil.copytree(source, Path(jp_env_jupyter_path, "kernels", name))


@pytest.fixture
def jp_server_config(lab_config):
    return {
        "ServerApp": {"jpserver_extensions": {"lepton_lab": True}},
        **config_sections(lab_config),
    }


@pytest.fixture
def lab_app(jp_serverapp):
    """The running LeptonLab extension app inside the test server."""
    pkg = jp_serverapp.extension_manager.extensions["lepton_lab"]
    return pkg.extension_points["lepton_lab"].app


async def get_json(jp_fetch, *parts: str, **kwargs) -> dict:
    response = await jp_fetch(*parts, **kwargs)
    return json.loads(response.body)


@pytest.fixture
def cluster_status(jp_fetch):
    """Poll GET /lepton-lab/api/cluster until a predicate holds (default: running)."""

    async def wait(predicate=lambda s: s["status"] == "running", timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            status = await get_json(jp_fetch, "lepton-lab", "api", "cluster")
            if predicate(status):
                return status
            await asyncio.sleep(0.2)
        raise AssertionError(f"cluster status never matched; last: {status}")

    return wait
