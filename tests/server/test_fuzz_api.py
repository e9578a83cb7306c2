"""Schemathesis fuzzes every operation of the served OpenAPI document against a real
``jupyter server``: valid and invalid requests alike must never get a 5xx.

The server's root holds no notebook, so no generated job or schedule can be accepted and run;
the cluster can be scaled only up to ``max_workers`` (2 here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.labserver import LabServer

#: Examples per operation and generation mode; with 21 operations this keeps the run near a
#: minute on a 2-core machine.
MAX_EXAMPLES = 25
#: No 5xx, and every answer is one the document describes: status, content type and schema.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("fuzz")
    (base / "state").mkdir()  # a configured state_dir is not created by the server
    server = LabServer(
        base / "root",
        lepton={
            "state_dir": base / "state",
            "cluster_mode": "local",
            "n_workers": 1,
            "threads_per_worker": 1,
            "memory_limit": "512MiB",
            "max_workers": 2,
            "dashboard_address": "127.0.0.1:0",
            "job_concurrency": 1,
        },
        app="jupyter_server",
    ).start()
    server.wait_cluster()
    yield server
    assert server.stop() == 0, server.log()
    assert not list(Path(base, "state", "jobs").glob("*")), "a fuzzed request created a job"


def test_no_request_gets_a_server_error(lab: LabServer) -> None:
    """Every operation of the served document, with valid and invalid data.

    Driven with plain Hypothesis over ``APIOperation.as_strategy`` rather than schemathesis'
    pytest plugin: its lazy (fixture-loaded) schema breaks on pytest 9 (``_nodeid``), and the
    document must be the one the running server serves. Each operation's failures are
    collected so one run reports them all.
    """
    code, document = lab.request("GET", "lepton-lab/api/openapi.json")
    assert code == 200, document
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=lab.url.rstrip("/"))
    schema.config.generation.update(with_security_parameters=False)
    headers = {"Authorization": f"token {lab.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values())
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS, headers=headers, timeout=120)

            try:
                fuzz()
            except Unsatisfiable:
                pass  # no invalid input exists (no parameters, or any string is a valid id)
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
