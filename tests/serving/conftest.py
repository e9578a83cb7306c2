"""A registry with the digits model in ONNX and torch.export, in a state dir of the module's
own (its SQLite store, artifacts and deployment folders)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.models import digits_mlp

MODEL = "digits"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """v1 of ``digits`` (onnx, torch.export), alias ``production``; the state dir is set for
    everything the module starts (``ll.models.serve`` and the CLI read it)."""
    from lepton_lab.models.registry import ModelRegistry
    from lepton_lab.store import open_store

    state = tmp_path_factory.mktemp("serving-state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEPTON_LAB_STATE_DIR", str(state))
        for name in ("LEPTON_LAB_DATABASE_URL", "LEPTON_LAB_ARTIFACT_DIR", "LEPTON_LAB_JOB_ID"):
            mp.delenv(name, raising=False)
        store = open_store(f"sqlite:///{state / 'lepton_lab.db'}")
        reg = ModelRegistry(store, str(state / "artifacts"))
        data = digits_mlp()
        version = reg.register(
            data.net, MODEL, formats=["onnx", "torch.export"], example_input=data.x[:4].numpy()
        )
        reg.add_alias(MODEL, version["version"], "production")
        yield SimpleNamespace(state=state, store=store, registry=reg, data=data)


def post(url: str, body: Any, raw: bool = False, timeout: float = 30) -> tuple[int, Any]:
    data = body if raw else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def get(url: str, timeout: float = 30) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def infer_body(x: Any, name: str = "input") -> dict:
    return {
        "inputs": [
            {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
        ]
    }


def port_is_free(port: int) -> bool:
    """A server could listen on ``port`` now (with SO_REUSEADDR, as servers bind: the
    connections the stopped server closed may linger in TIME_WAIT)."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
