"""A registered version served by a real MLServer process (``ll.models.serve``), called with
real clients: tritonclient's HTTP client (a standard Open Inference Protocol client) and plain
HTTP. Its answers must equal the ONNX artifact run directly; concurrent requests are batched;
bad input gets a 4xx in the protocol's error shape and the server keeps serving (issue #11).
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.serving.conftest import MODEL, get, infer_body, port_is_free, post

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(registry: SimpleNamespace) -> Iterator[Any]:
    import lepton_lab as ll

    handle = ll.models.serve(
        f"{MODEL}@production",
        format="onnx",
        max_batch_size=64,
        max_batch_delay_ms=20,
        max_request_bytes=1 << 20,
        store=registry.store,
    )
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def direct(registry: SimpleNamespace) -> Any:
    """The same version's ONNX artifact, run in this process."""
    from lepton_lab.models.formats import onnx_predict

    session = registry.registry.load(MODEL, "@production", "onnx")
    return lambda x: onnx_predict(session, np.asarray(x, dtype=np.float32))


def infer_url(handle: Any, model: str = MODEL) -> str:
    return f"{handle.url}/v2/models/{model}/infer"


def metric(handle: Any, name: str) -> float:
    """One sample of the Prometheus text at ``/metrics`` on the inference port."""
    code, text = get(f"{handle.url}/metrics")
    assert code == 200, text
    found = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M)
    assert found, f"{name} not in /metrics:\n{text[:2000]}"
    return float(found.group(1))


def test_health_and_metadata(served: Any, registry: SimpleNamespace) -> None:
    assert get(f"{served.url}/v2/health/live")[0] == 200
    assert get(f"{served.url}/v2/health/ready")[0] == 200
    code, meta = get(f"{served.url}/v2/models/{MODEL}")
    assert code == 200, meta
    assert meta["name"] == MODEL
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    record = registry.store.get_deployment(served.id)
    assert record["status"] == "ready" and record["ref"] == f"{MODEL}@production"
    assert record["version"] == 1 and record["format"] == "onnx" and record["owner"] == "kernel"


def test_tritonclient_predictions_equal_the_artifact_run_directly(
    served: Any, registry: SimpleNamespace, direct: Any
) -> None:
    import tritonclient.http as httpclient

    x = registry.data.x[:50].numpy()
    client = httpclient.InferenceServerClient(served.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_model_ready(MODEL)
        tensor = httpclient.InferInput("input", list(x.shape), "FP32")
        # JSON tensors: MLServer 1.7 does not take the protocol's binary data extension
        tensor.set_data_from_numpy(x, binary_data=False)
        output = httpclient.InferRequestedOutput("output", binary_data=False)
        result = client.infer(MODEL, [tensor], outputs=[output])
        got = result.as_numpy("output")
    finally:
        client.close()
    np.testing.assert_allclose(got, direct(x), rtol=1e-5, atol=1e-5)
    assert (got.argmax(1) == registry.data.y[:50].numpy()).mean() > 0.8


def test_plain_http_predictions_equal_the_artifact_run_directly(
    served: Any, registry: SimpleNamespace, direct: Any
) -> None:
    x = registry.data.x[100:103].numpy()
    code, answer = post(infer_url(served), {"id": "req-1", **infer_body(x)})
    assert code == 200, answer
    assert answer["id"] == "req-1" and answer["model_name"] == MODEL
    (out,) = answer["outputs"]
    assert out["name"] == "output" and out["datatype"] == "FP32" and out["shape"] == [3, 10]
    np.testing.assert_allclose(
        np.array(out["data"], dtype=np.float32).reshape(3, 10), direct(x), rtol=1e-5, atol=1e-5
    )


def test_64_concurrent_clients_are_batched_and_all_answered_correctly(
    served: Any, registry: SimpleNamespace, direct: Any
) -> None:
    rows = registry.data.x[:256].numpy()
    expected = direct(rows).argmax(1)
    calls_before = metric(served, "lepton_batch_size_count")
    rows_before = metric(served, "lepton_batch_size_sum")

    def one(i: int) -> int:
        code, answer = post(infer_url(served), infer_body(rows[i : i + 1]), timeout=60)
        assert code == 200, answer
        return int(np.argmax(answer["outputs"][0]["data"]))

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        got = list(pool.map(one, range(len(rows))))
    assert got == expected.tolist()
    calls = metric(served, "lepton_batch_size_count") - calls_before
    batched_rows = metric(served, "lepton_batch_size_sum") - rows_before
    assert batched_rows == len(rows)
    # 256 one-row requests from 64 clients took fewer model calls: they were batched
    assert calls < len(rows) * 0.75, (calls, batched_rows)
    assert metric(served, 'lepton_batch_size_bucket{le="1.0",model="digits"}') < calls + 2


def test_request_count_and_latency_histogram_in_metrics(served: Any) -> None:
    code, text = get(f"{served.url}/metrics")
    assert code == 200
    assert re.search(
        r'^rest_server_requests_total\{.*path="/v2/models/\{model_name\}/infer".*'
        r'status_code="200"\} [1-9]',
        text,
        re.M,
    ), text[:3000]
    assert "rest_server_request_duration_seconds_bucket" in text
    assert "lepton_batch_size_bucket" in text


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'{"inputs": [', 400, "not valid JSON"),
        (b"[1, 2]", 400, ""),
        (
            {
                "inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [1, 63], "data": [0.0] * 63}
                ]
            },
            400,
            "shape [1, 63]",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "datatype": "INT64", "shape": [1, 64], "data": [0] * 64}
                ]
            },
            400,
            "datatype INT64",
        ),
        (
            {
                "inputs": [
                    {"name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}
                ]
            },
            400,
            "unknown input 'pixels'",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [2, 64], "data": [0.0] * 64}
                ]
            },
            400,
            "holds 64 values",
        ),
        ({"inputs": []}, 400, "expected 1 input"),
    ],
)
def test_bad_input_is_a_4xx_in_the_protocol_shape_and_serving_goes_on(
    served: Any, registry: SimpleNamespace, body: Any, status: int, message: str
) -> None:
    code, answer = post(infer_url(served), body, raw=isinstance(body, bytes))
    assert code == status, answer
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    assert message in answer["error"]
    x = registry.data.x[:1].numpy()
    assert post(infer_url(served), infer_body(x))[0] == 200


def test_unknown_model_is_a_404_in_the_protocol_shape(served: Any) -> None:
    code, answer = post(infer_url(served, "no-such-model"), infer_body(np.zeros((1, 64))))
    assert code == 404 and "no-such-model" in answer["error"], answer
    assert get(f"{served.url}/v2/models/no-such-model")[0] == 404


def test_a_body_over_the_limit_is_a_413_and_serving_goes_on(
    served: Any, registry: SimpleNamespace
) -> None:
    big = np.zeros((5000, 64), dtype=np.float32)  # ~1.3 MB of JSON, over the 1 MiB limit
    code, answer = post(infer_url(served), infer_body(big))
    assert code == 413, answer
    assert "over this deployment's limit of 1048576 bytes" in answer["error"]
    # chunked (no Content-Length): refused as soon as the bytes read pass the limit
    chunks = (json.dumps(infer_body(big)).encode()[i : i + 65536] for i in range(0, 2 << 20, 65536))
    request = urllib.request.Request(
        infer_url(served),
        chunks,
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a chunked body over the limit was accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 413 and "at least" in json.loads(err.read())["error"]
    assert post(infer_url(served), infer_body(registry.data.x[:2].numpy()))[0] == 200


def test_torch_export_format_is_served_too(registry: SimpleNamespace, direct: Any) -> None:
    import lepton_lab as ll

    handle = ll.models.serve(
        MODEL, version=1, format="torch.export", max_batch_delay_ms=0, store=registry.store
    )
    try:
        code, meta = get(f"{handle.url}/v2/models/{MODEL}")
        assert meta["inputs"][0]["shape"][1:] == [64], meta
        x = registry.data.x[:5].numpy()
        code, answer = post(infer_url(handle), infer_body(x))
        assert code == 200, answer
        got = np.array(answer["outputs"][0]["data"], dtype=np.float32).reshape(5, 10)
        np.testing.assert_allclose(got, direct(x), rtol=1e-4, atol=1e-4)
        port = handle.spec["http_port"]
    finally:
        handle.stop()
    assert registry.store.get_deployment(handle.id)["status"] == "stopped"
    assert port_is_free(port)


def test_a_version_without_the_format_is_refused_before_anything_is_stored(
    registry: SimpleNamespace,
) -> None:
    import lepton_lab as ll
    from lepton_lab.contract import NotFound, RequestError

    before = len(registry.store.list_deployments())
    with pytest.raises(NotFound, match="has no 'keras' artifact"):
        ll.models.serve(MODEL, format="keras", store=registry.store)
    with pytest.raises(RequestError, match="'format' must be one of onnx"):
        ll.models.serve(MODEL, format="safetensors", store=registry.store)
    with pytest.raises(NotFound):
        ll.models.serve("no-such-model@production", store=registry.store)
    assert len(registry.store.list_deployments()) == before


def test_a_lone_request_waits_for_company_at_most_the_batch_delay(
    registry: SimpleNamespace,
) -> None:
    """With a long delay (so that its overhead does not hide the bound): one request alone is
    answered after the batcher's window, and not much later."""
    import time

    import lepton_lab as ll

    delay_ms = 400
    handle = ll.models.serve(
        MODEL, version=1, max_batch_size=8, max_batch_delay_ms=delay_ms, store=registry.store
    )
    try:
        x = registry.data.x[:1].numpy()
        took = []
        for _ in range(3):
            started = time.perf_counter()
            assert post(infer_url(handle), infer_body(x))[0] == 200
            took.append(time.perf_counter() - started)
    finally:
        handle.stop()
    assert min(took) >= delay_ms / 1000 * 0.9, took  # it did wait for others
    assert max(took) < delay_ms / 1000 + 0.5, took  # and then went alone


def test_parallel_inference_workers_serve_and_check_the_same(
    registry: SimpleNamespace, direct: Any
) -> None:
    """``workers=1``: the model runs in MLServer's inference worker process, behind the same
    checks, batching and metrics."""
    import lepton_lab as ll

    handle = ll.models.serve(MODEL, version=1, workers=1, store=registry.store)
    try:
        code, meta = get(f"{handle.url}/v2/models/{MODEL}")
        assert code == 200 and meta["inputs"][0]["shape"] == [-1, 64], meta
        x = registry.data.x[:4].numpy()
        code, answer = post(infer_url(handle), infer_body(x))
        assert code == 200, answer
        got = np.array(answer["outputs"][0]["data"], dtype=np.float32).reshape(4, 10)
        np.testing.assert_allclose(got, direct(x), rtol=1e-5, atol=1e-5)
        bad = {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [0.0] * 3}]
        }
        code, answer = post(infer_url(handle), bad)
        assert code == 400 and answer["error"].startswith("input 'input' has shape [1, 3]"), answer
        assert metric(handle, "lepton_batch_size_count") >= 1
    finally:
        handle.stop()


def test_a_model_that_fails_to_load_ends_failed_with_the_reason_at_once(
    registry: SimpleNamespace, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model server cannot load the artifact (here its runtime, onnxruntime, is broken in
    the process's environment): the deployment fails with that reason, without restarts."""
    import lepton_lab as ll

    broken = tmp_path / "broken" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('onnxruntime is broken here')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    with pytest.raises(RuntimeError, match="failed") as raised:
        ll.models.serve(MODEL, version=1, format="onnx", max_restarts=3, store=registry.store)
    assert "could not be loaded: FormatError: needs the 'onnxruntime' package" in str(raised.value)
    (failed,) = [
        d for d in registry.store.list_deployments(status="failed") if d["format"] == "onnx"
    ][:1]
    assert failed["restarts"] == 0 and "could not be loaded" in failed["error"]
    assert failed["pid"] is None and failed["ended_at"] is not None


def test_every_deployment_folder_and_file_is_private(registry: SimpleNamespace) -> None:
    """What the supervisor and the model server processes wrote (logs, specs, MLServer's
    metrics folder of the parallel workers, a load failure's reason) is 0700/0600."""
    from tests.support.permissions import not_private

    assert list((registry.state / "deployments").iterdir())
    assert not_private(registry.state / "deployments") == []


def test_a_deployments_usage_is_its_uptime_and_the_inference_requests_it_served(
    registry: SimpleNamespace,
) -> None:
    """Usage (#15): one record per deployment, from ``ready_at`` to ``ended_at``, with the
    inference requests its ``/metrics`` counted (metadata and health calls are not served
    requests)."""
    import lepton_lab as ll
    from lepton_lab.serving.supervisor import requests_served

    handle = ll.models.serve(MODEL, version=1, store=registry.store)
    try:
        record = registry.store.usage_record("deployment", handle.id)
        assert record is not None and record["ended_at"] is None  # written once it is ready
        x = registry.data.x[:2].numpy()
        for _ in range(5):
            code, answer = post(infer_url(handle), infer_body(x))
            assert code == 200, answer
        assert get(f"{handle.url}/v2/models/{MODEL}")[0] == 200  # metadata: not counted
        assert requests_served(handle.url) == 5
    finally:
        handle.stop()
    row = registry.store.get_deployment(handle.id)
    record = registry.store.usage_record("deployment", handle.id)
    assert record["requests"] == 5
    assert record["started_at"] == row["ready_at"] and record["ended_at"] == row["ended_at"]
    assert record["ended_at"] > record["started_at"]
    assert record["tags"] == [f"model:{MODEL}"] and record["detail"]["version"] == 1
