"""Managed deployments through a real ``jupyter lab`` server (issue #11): ``POST /deployments``
starts a supervised MLServer process that reaches ready, is listed with its URL, answers
through the Jupyter server's own URL (jupyter-server-proxy, with Jupyter's token only), is
stopped with ``DELETE`` (its port free again), restarts after crashes up to its limit and then
fails with the reason; a broken artifact fails with its reason; bad requests store nothing.
The server stops the deployments it supervises when it stops, and a server that was killed has
its deployments marked failed at the next start.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.serving.conftest import MODEL, infer_body, port_is_free
from tests.support.labserver import LabServer
from tests.support.models import digits_mlp

pytestmark = pytest.mark.timeout(300)

DEPLOYMENTS = "lepton-lab/api/deployments"
BASE = "/user/alice/"  # a JupyterHub-style base URL: the proxied endpoint lives under it


def lepton(state: Path) -> dict[str, Any]:
    return {"state_dir": str(state), "n_workers": 0, "run_jobs": False}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``digits`` v1 (onnx; ``@production``) and ``broken`` v1, whose ONNX file is damaged
    after registration (its digest no longer matches), in the lab's store."""
    from lepton_lab.models.registry import ModelRegistry
    from lepton_lab.store import open_store

    base = tmp_path_factory.mktemp("deployments")
    state = base / "state"
    state.mkdir()
    store = open_store(f"sqlite:///{state / 'lepton_lab.db'}")
    registry = ModelRegistry(store, str(state / "artifacts"))
    data = digits_mlp()
    example = data.x[:4].numpy()
    registry.register(data.net, MODEL, formats=["onnx"], example_input=example)
    registry.add_alias(MODEL, 1, "production")
    broken = registry.register(data.net, "broken", formats=["onnx"], example_input=example)
    Path(broken["artifacts"][0]["uri"]).write_bytes(b"not an onnx model")
    return SimpleNamespace(base=base, state=state, store=store, data=data)


@pytest.fixture(scope="module")
def lab(seeded: SimpleNamespace) -> Iterator[LabServer]:
    server = LabServer(seeded.base / "root", lepton=lepton(seeded.state), base_url=BASE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_status(lab: LabServer, deployment_id: str, wanted: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    record: Any = None
    while time.monotonic() < deadline:
        code, record = lab.request("GET", f"{DEPLOYMENTS}/{deployment_id}")
        assert code == 200, record
        if record["status"] in wanted:
            return record
        time.sleep(0.1)
    raise TimeoutError(f"deployment never reached {wanted}; last: {record}\n{lab.log()}")


def proxied(lab: LabServer, record: dict, path: str, body: Any = None, token: bool = True):
    """A request to the deployment through the Jupyter server's URL."""
    url = f"{lab.url}{record['proxy_path']}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"token {lab.token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def count(lab: LabServer) -> int:
    code, listing = lab.request("GET", DEPLOYMENTS)
    assert code == 200, listing
    return len(listing["deployments"])


@pytest.fixture(scope="module")
def ready(lab: LabServer) -> dict:
    code, record = lab.request(
        "POST", DEPLOYMENTS, {"model": f"{MODEL}@production", "max_batch_delay_ms": 2}
    )
    assert code == 201, record
    assert record["status"] == "starting" and record["owner"] == "server"
    return wait_status(lab, record["id"], {"ready", "failed"})


def test_a_deployment_reaches_ready_and_is_listed_with_its_urls(lab: LabServer, ready: dict):
    assert ready["status"] == "ready", ready
    assert ready["model"] == MODEL and ready["version"] == 1 and ready["format"] == "onnx"
    assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
    assert ready["proxy_path"] == f"proxy/{ready['port']}/"
    assert ready["pid"] and ready["ready_at"] >= ready["created_at"]
    code, listing = lab.request("GET", DEPLOYMENTS)
    assert code == 200
    assert [d["id"] for d in listing["deployments"]].count(ready["id"]) == 1
    code, only_ready = lab.request("GET", f"{DEPLOYMENTS}?status=ready")
    assert {d["status"] for d in only_ready["deployments"]} == {"ready"}


def test_the_endpoint_answers_through_the_jupyter_url_with_the_token_only(
    lab: LabServer, ready: dict, seeded: SimpleNamespace
):
    code, meta = proxied(lab, ready, f"v2/models/{MODEL}")
    assert code == 200, meta
    assert json.loads(meta)["inputs"][0]["shape"] == [-1, 64]
    x = seeded.data.x[:4].numpy()
    code, raw = proxied(lab, ready, f"v2/models/{MODEL}/infer", infer_body(x))
    assert code == 200, raw
    got = np.array(json.loads(raw)["outputs"][0]["data"]).reshape(4, 10)
    expected = seeded.data.net(seeded.data.x[:4]).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    code, text = proxied(lab, ready, "metrics")
    assert code == 200 and b"lepton_batch_size_count" in text
    code, _ = proxied(lab, ready, f"v2/models/{MODEL}/infer", infer_body(x), token=False)
    assert code in (302, 403)


def test_bad_input_through_the_proxy_is_the_protocols_4xx(lab: LabServer, ready: dict):
    code, raw = proxied(lab, ready, f"v2/models/{MODEL}/infer", {"inputs": [{"name": "input"}]})
    assert code == 400 and set(json.loads(raw)) == {"error"}, raw


def test_the_log_is_readable(lab: LabServer, ready: dict):
    code, logs = lab.request("GET", f"{DEPLOYMENTS}/{ready['id']}/logs")
    assert code == 200, logs
    assert f"serving {MODEL} v1 (onnx)" in logs["text"] and not logs["complete"]
    assert logs["next"] == len(logs["text"].encode())
    code, later = lab.request("GET", f"{DEPLOYMENTS}/{ready['id']}/logs?offset={logs['next']}")
    assert code == 200 and later["offset"] == logs["next"]
    mode = os.stat(Path(lab.root_dir).parent / "state" / "deployments" / ready["id"] / "server.log")
    assert mode.st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"model": "no-such-model"}, 404, "no model named 'no-such-model'"),
        ({"model": f"{MODEL}@staging"}, 404, "staging"),
        ({"model": MODEL, "format": "safetensors"}, 400, "'format' must be one of"),
        ({"model": MODEL, "format": "keras"}, 404, "has no 'keras' artifact"),
        ({"model": MODEL, "workers": -1}, 400, "'workers'"),
        ({"model": MODEL, "max_batch_size": "8"}, 400, "'max_batch_size'"),
        ({"model": MODEL, "replicas": 2}, 400, "unknown field(s) replicas"),
        ({"model": MODEL, "host": "10.0.0.1"}, 400, "'host'"),
        ({}, 400, "'model'"),
    ],
)
def test_bad_requests_are_4xx_and_store_nothing(
    lab: LabServer, ready: dict, body: dict, status: int, message: str
):
    before = count(lab)
    code, answer = lab.request("POST", DEPLOYMENTS, body)
    assert code == status, answer
    assert message in answer["message"], answer
    assert count(lab) == before


def test_a_port_in_use_is_a_409(lab: LabServer, ready: dict):
    before = count(lab)
    code, answer = lab.request("POST", DEPLOYMENTS, {"model": MODEL, "port": ready["port"]})
    assert code == 409 and f"port {ready['port']} is in use" in answer["message"], answer
    assert count(lab) == before


def test_an_artifact_that_fails_its_digest_check_fails_with_the_reason(lab: LabServer):
    code, record = lab.request("POST", DEPLOYMENTS, {"model": "broken"})
    assert code == 201, record
    ended = wait_status(lab, record["id"], {"ready", "failed", "stopped"}, timeout=60)
    assert ended["status"] == "failed", ended
    assert "sha256" in ended["error"] or "digest" in ended["error"], ended["error"]
    assert ended["url"] is None and ended["pid"] is None


def test_a_crash_looping_model_server_is_restarted_then_fails_with_its_error(lab: LabServer):
    code, record = lab.request("POST", DEPLOYMENTS, {"model": MODEL, "max_restarts": 1})
    assert code == 201, record
    first = wait_status(lab, record["id"], {"ready"})
    os.kill(first["pid"], signal.SIGKILL)
    # restarted once: ready again, in a new process
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        again = wait_status(lab, record["id"], {"ready", "failed"})
        if again["status"] == "failed" or (again["pid"] and again["pid"] != first["pid"]):
            break
        time.sleep(0.1)
    assert again["status"] == "ready" and again["restarts"] == 1, again
    os.kill(again["pid"], signal.SIGKILL)
    failed = wait_status(lab, record["id"], {"failed"})
    assert "was killed by SIGKILL" in failed["error"], failed["error"]
    assert "restarted 1 time(s), the limit" in failed["error"]
    assert port_is_free(failed["port"])
    code, logs = lab.request("GET", f"{DEPLOYMENTS}/{record['id']}/logs")
    assert "restart 1 of 1" in logs["text"] and logs["complete"]


def test_delete_stops_it_and_frees_its_port(lab: LabServer):
    code, record = lab.request("POST", DEPLOYMENTS, {"model": MODEL})
    assert code == 201, record
    record = wait_status(lab, record["id"], {"ready"})
    code, accepted = lab.request("DELETE", f"{DEPLOYMENTS}/{record['id']}")
    assert code == 202 and accepted["stop_requested"], accepted
    stopped = wait_status(lab, record["id"], {"stopped"}, timeout=30)
    assert stopped["url"] is None and stopped["proxy_path"] is None
    assert port_is_free(record["port"])
    code, answer = lab.request("DELETE", f"{DEPLOYMENTS}/{record['id']}")
    assert code == 409 and "already ended (stopped)" in answer["message"]
    assert lab.request("DELETE", f"{DEPLOYMENTS}/nope")[0] == 404
    assert lab.request("GET", f"{DEPLOYMENTS}/nope")[0] == 404


def test_a_killed_server_leaves_no_deployment_ready(lab: LabServer, seeded: SimpleNamespace):
    """Last in the module: the lab is killed (SIGKILL, no shutdown). Its model servers die
    with it, and the next server on the same state marks their deployments failed."""
    code, record = lab.request("POST", DEPLOYMENTS, {"model": MODEL})
    assert code == 201, record
    record = wait_status(lab, record["id"], {"ready"})
    lab.proc.kill()
    lab.proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not port_is_free(record["port"]):
        time.sleep(0.1)
    assert port_is_free(record["port"]), "the model server outlived its supervisor"
    again = LabServer(seeded.base / "root", lepton=lepton(seeded.state), base_url=BASE)
    again.start()
    try:
        after = wait_status(again, record["id"], {"failed"}, timeout=30)
        assert "ended without stopping it" in after["error"], after
        code, listing = again.request("GET", f"{DEPLOYMENTS}?status=ready")
        assert listing["deployments"] == []
    finally:
        again.stop()


def test_a_server_that_stops_stops_its_deployments(seeded: SimpleNamespace):
    server = LabServer(seeded.base / "root2", lepton=lepton(seeded.state), base_url=BASE)
    server.start()
    try:
        code, record = server.request("POST", DEPLOYMENTS, {"model": MODEL})
        assert code == 201, record
        record = wait_status(server, record["id"], {"ready"})
    finally:
        assert server.stop() == 0
    after = seeded.store.get_deployment(record["id"])
    assert after["status"] == "stopped", after
    assert port_is_free(record["port"])
