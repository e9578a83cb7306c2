"""The /lepton-lab/api/models routes through a real in-process Jupyter server, on a registry
seeded through the lab's own :class:`ModelRegistry` (its store and artifact directory): a torch
MLP trained on the digits, registered twice (safetensors and onnx, each verified)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.httpclient import HTTPClientError

from tests.conftest import get_json
from tests.support.models import FakeRun, digits_mlp

MODEL = "digits-mlp"
API = ("lepton-lab", "api")


@pytest.fixture
def lab_config(lab_config: dict) -> dict:
    """The registry needs no workers and no job queue (a job row here must stay queued)."""
    return {**lab_config, "n_workers": 0, "run_jobs": False}


@pytest.fixture
def seeded(lab_app, monkeypatch) -> SimpleNamespace:
    """v1 (accuracy 0.95, alias ``production``) registered from run ``run-m1`` inside job
    ``job-m1``; v2 (accuracy 0.9) from the model object, newer but worse."""
    store, registry = lab_app.store, lab_app.services.models.registry
    data = digits_mlp()
    store.create_run("run-m1", framework="torch", params={"lr": 0.01}, world_size=1)
    store.create_job(
        "job-m1",
        notebook="train.ipynb",
        input_path="/nowhere/train.ipynb",
        cwd=str(Path.cwd()),
        output_dir="/nowhere/job-m1",
        kernel="python3",
    )
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("LEPTON_LAB_JOB_ID", "job-m1")
    v1 = registry.register(
        FakeRun(store, "run-m1", data.net, data.x[:8]),
        MODEL,
        formats=["safetensors", "onnx"],
        metrics={"accuracy": 0.95},
        aliases=["production"],
    )
    monkeypatch.delenv("LEPTON_LAB_JOB_ID")
    v2 = registry.register(
        data.net,
        MODEL,
        formats=["safetensors", "onnx"],
        example_input=data.x[:8],
        metrics={"accuracy": 0.9},
    )
    return SimpleNamespace(registry=registry, store=store, v1=v1, v2=v2)


async def fetch_json(jp_fetch, *parts: str, **kwargs) -> dict:
    return await get_json(jp_fetch, *API, *parts, **kwargs)


async def patch(jp_fetch, version: str, body: dict) -> dict:
    return await fetch_json(
        jp_fetch, "models", MODEL, "versions", version, method="PATCH", body=json.dumps(body)
    )


async def error(jp_fetch, *parts: str, **kwargs) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*API, *parts, **kwargs)
    response = info.value.response
    assert response.headers["Content-Type"].startswith("application/json"), parts
    return info.value.code, json.loads(response.body)["message"]


async def test_list_get_and_each_kind_of_version_reference(jp_fetch, seeded):
    listing = await fetch_json(jp_fetch, "models")
    (summary,) = listing["models"]
    assert summary["name"] == MODEL and summary["framework"] == "torch"
    assert summary["latest_version"] == 2 and summary["versions"] == 2
    assert summary["aliases"] == {"production": 1}
    assert summary["metrics"] == {"accuracy": 0.9}  # the newest version's

    model = await fetch_json(jp_fetch, "models", MODEL)
    assert model["name"] == MODEL and model["aliases"] == {"production": 1}
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert [a["format"] for a in model["versions"][0]["artifacts"]] == ["safetensors", "onnx"]

    for reference, number in [
        ("1", 1),
        ("2", 2),
        ("latest", 2),
        ("@production", 1),  # sent as %40production
        ("best:accuracy", 1),  # sent as best%3Aaccuracy
        ("best:min:accuracy", 2),
    ]:
        version = await fetch_json(jp_fetch, "models", MODEL, "versions", reference)
        assert version["version"] == number, reference
    v1 = await fetch_json(jp_fetch, "models", MODEL, "versions", "1")
    assert v1["run_id"] == "run-m1" and v1["job_id"] == "job-m1"
    assert v1["notebook"] == "train.ipynb" and v1["params"] == {"lr": 0.01}
    assert v1["aliases"] == ["production"]
    assert [a["sha256"] for a in v1["artifacts"]] == [a["sha256"] for a in seeded.v1["artifacts"]]


async def test_patch_moves_an_alias_and_merges_tags(jp_fetch, seeded):
    moved = await patch(jp_fetch, "2", {"aliases": ["production", "candidate"]})
    assert moved["version"] == 2 and moved["aliases"] == ["candidate", "production"]
    assert (await fetch_json(jp_fetch, "models", MODEL, "versions", "1"))["aliases"] == []
    by_alias = await fetch_json(jp_fetch, "models", MODEL, "versions", "@production")
    assert by_alias["version"] == 2
    (summary,) = (await fetch_json(jp_fetch, "models"))["models"]
    assert summary["aliases"] == {"candidate": 2, "production": 2}

    tagged = await patch(jp_fetch, "@production", {"tags": {"owner": "ana", "stage": "qa"}})
    assert tagged["version"] == 2 and tagged["tags"] == {"owner": "ana", "stage": "qa"}
    merged = await patch(jp_fetch, "2", {"tags": {"stage": None, "ticket": "ML-7"}})
    assert merged["tags"] == {"owner": "ana", "ticket": "ML-7"}
    assert merged["aliases"] == ["candidate", "production"]  # no aliases in the body: kept
    got = await fetch_json(jp_fetch, "models", MODEL, "versions", "2")
    assert got["tags"] == {"owner": "ana", "ticket": "ML-7"}

    back = await patch(jp_fetch, "1", {"aliases": ["production"]})
    assert back["aliases"] == ["production"]
    assert (await fetch_json(jp_fetch, "models", MODEL))["aliases"] == {
        "candidate": 2,
        "production": 1,
    }
    cleared = await patch(jp_fetch, "2", {"aliases": []})
    assert cleared["aliases"] == []
    assert (await fetch_json(jp_fetch, "models", MODEL))["aliases"] == {"production": 1}


async def test_delete_removes_the_version_and_its_files(jp_fetch, seeded):
    folder = Path(seeded.v1["location"])
    assert folder.is_dir()
    response = await jp_fetch(*API, "models", MODEL, "versions", "@production", method="DELETE")
    assert response.code == 204
    code, message = await error(jp_fetch, "models", MODEL, "versions", "1")
    assert code == 404 and message == f"model {MODEL!r} has no version 1"
    code, message = await error(jp_fetch, "models", MODEL, "versions", "@production")
    assert code == 404 and message == f"model {MODEL!r} has no alias 'production'"
    assert not folder.exists()
    assert not list(folder.parent.glob("*.deleting"))
    model = await fetch_json(jp_fetch, "models", MODEL)
    assert [v["version"] for v in model["versions"]] == [2] and model["aliases"] == {}
    code, _ = await error(jp_fetch, "models", MODEL, "versions", "1", method="DELETE")
    assert code == 404

    await jp_fetch(*API, "models", MODEL, "versions", "2", method="DELETE")
    assert (await fetch_json(jp_fetch, "models"))["models"] == []
    code, message = await error(jp_fetch, "models", MODEL)
    assert code == 404 and message == f"no model named {MODEL!r}"


async def test_download_sends_the_exact_bytes_and_refuses_a_corrupted_artifact(jp_fetch, seeded):
    for row in seeded.v1["artifacts"]:
        for reference in ("1", "@production", "best:accuracy"):
            response = await jp_fetch(
                *API, "models", MODEL, "versions", reference, "artifacts", row["format"]
            )
            stored = Path(row["uri"]).read_bytes()
            assert response.body == stored
            assert hashlib.sha256(response.body).hexdigest() == row["sha256"]
            assert response.headers["X-Lepton-SHA256"] == row["sha256"]
            assert response.headers["Content-Disposition"] == (
                f'attachment; filename="{MODEL}-v1-{row["file"]}"'
            )
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert int(response.headers["Content-Length"]) == row["size"] == len(stored)

    (onnx,) = [a for a in seeded.v2["artifacts"] if a["format"] == "onnx"]
    path = Path(onnx["uri"])
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    code, message = await error(jp_fetch, "models", MODEL, "versions", "2", "artifacts", "onnx")
    assert code == 409
    assert message.startswith(f"the artifact {onnx['uri']} is corrupted: its sha256 is")
    path.unlink()
    code, message = await error(jp_fetch, "models", MODEL, "versions", "2", "artifacts", "onnx")
    assert code == 409 and message == f"the artifact {onnx['uri']} is missing"
    # the other format of the same version is intact
    response = await jp_fetch(*API, "models", MODEL, "versions", "2", "artifacts", "safetensors")
    assert response.code == 200

    # usage (#15): each download is data moved, for this server's user; each version's
    # artifacts are storage, measured from the files
    import getpass

    from lepton_lab.metering.ledger import folder_bytes

    store = seeded.registry.store
    # recorded once the last bytes are written: the client may have them a moment before
    expected = 3 * len(seeded.v1["artifacts"]) + 1
    for _ in range(100):  # this loop is the server's: wait without blocking it
        if len(store.usage_records("transfer")) == expected:
            break
        await asyncio.sleep(0.05)
    moved = store.usage_records("transfer")
    sizes = {row["format"]: row["size"] for row in seeded.v1["artifacts"]}
    assert len(moved) == 3 * len(sizes) + 1
    assert sum(r["bytes"] for r in moved[:-1]) == 3 * sum(sizes.values())
    assert moved[-1]["subject"] == f"model:{MODEL}/v2/safetensors"
    assert {r["user"] for r in moved} == {getpass.getuser()}
    for version in (seeded.v1, seeded.v2):
        stored = store.usage_record("storage", f"model:{MODEL}/v{version['version']}")
        assert stored["started_at"] == version["created_at"] and stored["deleted_at"] is None
    # v2's onnx file was removed above; v1's files are as registered
    stored = store.usage_record("storage", f"model:{MODEL}/v1")
    assert stored["bytes"] == folder_bytes(seeded.v1["location"]) > 0
    seeded.registry.delete(MODEL, 2)
    assert store.usage_record("storage", f"model:{MODEL}/v2")["deleted_at"] is not None


async def test_compare_orders_rows_by_the_metric(jp_fetch, seeded):
    seeded.registry.log_evaluation(MODEL, 2, dataset="holdout", accuracy=0.97)
    newest = await fetch_json(jp_fetch, "models", MODEL, "compare")
    assert newest["metric"] is None and [r["version"] for r in newest["rows"]] == [2, 1]
    best = await fetch_json(jp_fetch, "models", MODEL, "compare", params={"metric": "accuracy"})
    assert best["metric"] == "accuracy"
    assert best["columns"][:3] == ["version", "aliases", "accuracy"]
    assert [(r["version"], r["accuracy"]) for r in best["rows"]] == [(2, 0.97), (1, 0.95)]
    assert best["rows"][0]["evaluated_on"] == "holdout"
    assert best["rows"][1]["aliases"] == "production"
    seeded.registry.log_evaluation(MODEL, 2, dataset="holdout", accuracy=0.5)
    again = await fetch_json(jp_fetch, "models", MODEL, "compare", params={"metric": "accuracy"})
    assert [r["version"] for r in again["rows"]] == [1, 2]  # the newest evaluation counts


async def test_runs_and_jobs_list_the_versions_they_registered(jp_fetch, seeded, lab_app):
    lab_app.store.create_run("run-none", framework="torch", params={}, world_size=1)
    ref = [{"name": MODEL, "version": 1}]
    assert (await fetch_json(jp_fetch, "runs", "run-m1"))["models"] == ref
    assert (await fetch_json(jp_fetch, "runs", "run-none"))["models"] == []
    runs = {r["id"]: r["models"] for r in (await fetch_json(jp_fetch, "runs"))["runs"]}
    assert runs == {"run-m1": ref, "run-none": []}
    assert (await fetch_json(jp_fetch, "jobs", "job-m1"))["models"] == ref
    jobs = {j["id"]: j["models"] for j in (await fetch_json(jp_fetch, "jobs"))["jobs"]}
    assert jobs == {"job-m1": ref}
    await jp_fetch(*API, "models", MODEL, "versions", "1", method="DELETE")
    assert (await fetch_json(jp_fetch, "runs", "run-m1"))["models"] == []
    assert (await fetch_json(jp_fetch, "jobs", "job-m1"))["models"] == []


LONG = "m" * 201
VERSIONS = ("models", MODEL, "versions")


#: (path parts, fetch options, status, part of the message)
MISTAKES = [
    (("models", ".hidden"), {}, 400, "invalid model name '.hidden'"),
    (("models", LONG), {}, 400, "a model name has at most 200 characters, got 201"),
    (("models", "a b"), {}, 400, "invalid model name 'a b'"),
    (("models", "nope"), {}, 404, "no model named 'nope'"),
    (("models", "nope", "compare"), {}, 404, "no model named 'nope'"),
    (("models", ".hidden", "compare"), {}, 400, "invalid model name"),
    (
        ("models", MODEL, "compare"),
        {"params": {"metric": "f1"}},
        400,
        f"no version of {MODEL!r} has the metric 'f1' (metrics: accuracy)",
    ),
    (("models", "nope", "versions", "1"), {}, 404, "no model named 'nope'"),
    (("models", LONG, "versions", "1"), {}, 400, "at most 200 characters"),
    ((*VERSIONS, "9"), {}, 404, f"model {MODEL!r} has no version 9"),
    ((*VERSIONS, "0"), {}, 400, "versions count from 1, got 0"),
    ((*VERSIONS, "@nope"), {}, 404, f"model {MODEL!r} has no alias 'nope'"),
    ((*VERSIONS, "@1abc"), {}, 400, "invalid alias '1abc'"),
    ((*VERSIONS, "best:f1"), {}, 404, f"no version of {MODEL!r} has the metric 'f1'"),
    ((*VERSIONS, "best:sideways:f1"), {}, 400, "invalid 'best:sideways:f1'"),
    ((*VERSIONS, "production"), {}, 400, "invalid version 'production'"),
    # digits that int() refuses, and numbers past the column's range: once 500s
    ((*VERSIONS, "²"), {}, 400, "invalid version '²'"),
    ((*VERSIONS, "2147483648"), {}, 404, f"model {MODEL!r} has no version 2147483648"),
    ((*VERSIONS, "9" * 30), {}, 404, f"model {MODEL!r} has no version {'9' * 30}"),
    (("models", "nope", "versions", "9" * 30), {}, 404, "no model named 'nope'"),
    ((*VERSIONS, "9" * 30, "artifacts", "onnx"), {}, 404, "has no version"),
    ((*VERSIONS, "9" * 30), {"method": "DELETE"}, 404, "has no version"),
    (
        (*VERSIONS, "9" * 30),
        {"method": "PATCH", "body": json.dumps({"tags": {"k": "v"}})},
        404,
        "has no version",
    ),
    ((*VERSIONS, "1", "artifacts", "xyz"), {}, 404, "has no 'xyz' artifact"),
    (
        (*VERSIONS, "1", "artifacts", "torchscript"),
        {},
        404,
        f"{MODEL} v1 has no 'torchscript' artifact (it has safetensors, onnx)",
    ),
    (("models", "nope", "versions", "1", "artifacts", "onnx"), {}, 404, "no model named"),
    ((*VERSIONS, "9", "artifacts", "onnx"), {}, 404, "has no version 9"),
    (("models", "nope", "versions", "1"), {"method": "DELETE"}, 404, "no model named"),
    (("models", ".hidden", "versions", "1"), {"method": "DELETE"}, 400, "invalid model"),
    ((*VERSIONS, "@nope"), {"method": "DELETE"}, 404, "has no alias 'nope'"),
    (
        (*VERSIONS, "1"),
        {"method": "PATCH", "body": json.dumps({"aliases": ["1abc"]})},
        400,
        "invalid alias '1abc'",
    ),
    (
        (*VERSIONS, "1"),
        {"method": "PATCH", "body": json.dumps({"aliases": ["latest"]})},
        400,
        "'latest' is reserved for version references",
    ),
    (
        (*VERSIONS, "1"),
        {"method": "PATCH", "body": json.dumps({"color": "red"})},
        400,
        "color",
    ),
    (
        (*VERSIONS, "1"),
        {"method": "PATCH", "body": json.dumps({"tags": {"k": 3}})},
        400,
        "tags",
    ),
    (
        (*VERSIONS, "1"),
        {"method": "PATCH", "body": "[]"},
        400,
        "the request body must be a JSON object",
    ),
    (
        ("models", "nope", "versions", "1"),
        {"method": "PATCH", "body": json.dumps({"tags": {"k": "v"}})},
        404,
        "no model named 'nope'",
    ),
    (
        (*VERSIONS, "9"),
        {"method": "PATCH", "body": json.dumps({"aliases": ["production"]})},
        404,
        "has no version 9",
    ),
]


async def test_mistakes_are_4xx_json_and_change_nothing(jp_fetch, seeded):
    """One registry for all the cases (seeding it is the slow part); every mismatch is
    reported together."""
    wrong = []
    for parts, kwargs, code, message in MISTAKES:
        got, text = await error(jp_fetch, *parts, **kwargs)
        if got != code or message not in text:
            wrong.append(f"{kwargs.get('method', 'GET')} {'/'.join(parts)}: {got} {text!r}")
    assert wrong == []
    model = await fetch_json(jp_fetch, "models", MODEL)
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert model["aliases"] == {"production": 1}
    assert all(v["tags"] == {} for v in model["versions"])
