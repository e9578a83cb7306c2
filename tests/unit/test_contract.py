"""The contract declared once: the served document's schemas and the validators agree, and
every 4xx message names the field the way the request spelled it."""

from __future__ import annotations

import jsonschema
import pytest

from lepton_lab.contract import RequestError, cluster, jobs, parse
from lepton_lab.server.openapi import openapi_document
from tests.support.examples import INVALID, VALID

MODELS = {
    "JobRequest": jobs.JobRequest,
    "ScheduleRequest": jobs.ScheduleRequest,
    "SchedulePatch": jobs.SchedulePatch,
    "ScaleRequest": cluster.ScaleRequest,
}


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi_document()


def schema_for(document: dict, name: str) -> dict:
    """The component schema, resolvable on its own (refs point into the document)."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def examples(table):
    return [(name, body) for name, bodies in table.items() for body in bodies]


@pytest.mark.parametrize("name,body", examples(VALID))
def test_valid_examples_pass_the_document_and_the_model(document, name, body):
    jsonschema.validate(body, schema_for(document, name), cls=jsonschema.Draft202012Validator)
    parse(MODELS[name], body, {"max_workers": 4})


@pytest.mark.parametrize("name,body", examples(INVALID))
def test_invalid_examples_fail_the_document_and_the_model(document, name, body):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema_for(document, name), cls=jsonschema.Draft202012Validator)
    with pytest.raises(RequestError):
        parse(MODELS[name], body, {"max_workers": 4})


def test_every_body_model_is_declared_once_in_the_document(document):
    schemas = document["components"]["schemas"]
    for name, model in MODELS.items():
        assert set(schemas[name]["properties"]) == set(model.model_fields), name
    executor = schemas["JobRequest"]["properties"]["executor"]
    assert executor["enum"][0] == "local" and "dask" in executor["enum"]
    # one limit, one place: the document says what the validator enforces
    formats = schemas["JobRequest"]["properties"]["output_formats"]
    assert formats["maxItems"] == 2
    assert schemas["SchedulePatch"]["properties"]["timeout"]["anyOf"][0]["maximum"] == 604800


@pytest.mark.parametrize(
    "model,body,message",
    [
        (jobs.JobRequest, {}, "missing field 'path' (the notebook, relative to the server's"),
        (
            jobs.JobRequest,
            {"path": "a", "retries": "3"},
            "'retries' must be an integer, got string",
        ),
        (
            jobs.JobRequest,
            {"path": "a", "retries": 101},
            "'retries' must be between 0 and 100, got 101",
        ),
        (
            jobs.JobRequest,
            {"path": "a", "timeout": 10**400},
            "'timeout' must be between 0.1 and 604800, got a 401-digit number",
        ),
        (jobs.JobRequest, {"path": ""}, "'path' must be a non-empty string, got string"),
        (
            jobs.JobRequest,
            {"path": "a", "x": 1, "b": 2},
            "unknown field(s) b, x; accepted: allow_unknown, cwd,",
        ),
        (
            jobs.JobRequest,
            {"path": "a", "output_formats": ["pdf"]},
            "'output_formats' may hold only ipynb, html, got 'pdf'",
        ),
        (
            jobs.JobRequest,
            {"path": "a", "parameters": []},
            "'parameters' must be a JSON object of name: value, got array",
        ),
        (
            jobs.JobRequest,
            {"path": "a", "tags": ["x" * 101]},
            "'tags' takes strings of at most 100 characters",
        ),
        (jobs.ScheduleRequest, {"path": "a"}, "missing field 'cron' (cron expression"),
        (
            jobs.SchedulePatch,
            {"overlap": "maybe"},
            "'overlap' must be one of skip, queue, got 'maybe'",
        ),
        (jobs.SchedulePatch, {"active": 1}, "'active' must be a boolean, got integer"),
        (cluster.ScaleRequest, {"workers": 9}, "'workers' must be between 0 and 4, got 9"),
        (cluster.ScaleRequest, {"workers": None}, "'workers' must be an integer, got null"),
        (
            cluster.ScaleRequest,
            {"adapt": {"minimum": 3, "maximum": 1}},
            "'adapt' minimum (3) is more than its maximum (1)",
        ),
        (
            cluster.ScaleRequest,
            {"adapt": {"minimum": 0, "maximum": 9}},
            "'adapt' maximum must be at most 4, got 9",
        ),
        (cluster.ScaleRequest, {"adapt": {"maximum": "2"}}, "'adapt.maximum' must be an integer"),
        (cluster.ScaleRequest, {"adapt": {"maximum": 2, "x": 1}}, "unknown field 'adapt.x'"),
        (cluster.ScaleRequest, {"workers": 1, "adapt": {"maximum": 2}}, "send either 'workers'"),
    ],
)
def test_messages_name_the_field(model, body, message):
    with pytest.raises(RequestError) as info:
        parse(model, body, {"max_workers": 4})
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.status == 400


def test_a_non_object_body_is_refused():
    with pytest.raises(RequestError, match="must be a JSON object, not array"):
        parse(jobs.JobRequest, [1])
