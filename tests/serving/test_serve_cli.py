"""``lepton-lab serve`` in the foreground and ``lepton-lab deployments ...`` from another
process, as a user runs them (the installed console script, the state dir in the
environment): the endpoint answers, the deployment is listed, ``deployments stop`` from
elsewhere ends the ``serve`` process with status 0 and frees the port; mistakes are one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.serving.conftest import MODEL, infer_body, port_is_free, post

pytestmark = pytest.mark.timeout(240)


def cli() -> list[str]:
    found = shutil.which("lepton-lab", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "lepton_lab.cli.main"]


def run(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cli(), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def env(registry: SimpleNamespace) -> dict:
    return dict(os.environ, LEPTON_LAB_STATE_DIR=str(registry.state))


def wait_listed(env: dict, status: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = run("deployments", "list", "--json", env=env)
        assert done.returncode == 0, done.stderr
        found = [d for d in json.loads(done.stdout) if d["status"] == status]
        if found:
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"no {status} deployment listed")


def test_serve_in_the_foreground_until_stopped_from_another_process(
    registry: SimpleNamespace, env: dict
):
    serve = subprocess.Popen(
        [*cli(), "serve", f"{MODEL}@production", "--max-batch-delay-ms", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listed = wait_listed(env, "ready")
        assert listed["owner"] == "cli" and listed["ref"] == f"{MODEL}@production"
        x = registry.data.x[:2].numpy()
        code, answer = post(f"{listed['url']}/v2/models/{MODEL}/infer", infer_body(x))
        assert code == 200 and answer["outputs"][0]["shape"] == [2, 10], answer

        table = run("deployments", "list", env=env)
        assert listed["id"] in table.stdout and "ready" in table.stdout
        show = run("deployments", "show", listed["id"], env=env)
        assert show.returncode == 0 and f"{MODEL}@production" in show.stdout
        logs = run("deployments", "logs", listed["id"], env=env)
        assert f"serving {MODEL} v1 (onnx)" in logs.stdout

        stop = run("deployments", "stop", listed["id"], env=env)
        assert stop.returncode == 0, stop.stderr
        assert f"deployment {listed['id']}: stopped" in stop.stdout
        assert serve.wait(30) == 0
        err = serve.stderr.read()
        assert f"serving {MODEL} v1 (onnx) at {listed['url']}/v2/models/{MODEL}" in err
        assert port_is_free(listed["port"])
        again = run("deployments", "stop", listed["id"], env=env)
        assert again.returncode == 2 and "already ended (stopped)" in again.stderr
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_ctrl_c_stops_the_model_server_with_the_cli(registry: SimpleNamespace, env: dict):
    serve = subprocess.Popen(
        [*cli(), "serve", MODEL, "--format", "onnx"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listed = wait_listed(env, "ready")
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0
        assert registry.store.get_deployment(listed["id"])["status"] == "stopped"
        assert port_is_free(listed["port"])
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


@pytest.mark.parametrize(
    "args, message",
    [
        (("serve", "no-such-model"), "no model named 'no-such-model'"),
        (("serve", MODEL, "--format", "keras"), "has no 'keras' artifact"),
        (("serve", MODEL, "--max-batch-size", "0"), "'max_batch_size'"),
        (("deployments", "show", "nope"), "no deployment 'nope'"),
        (("deployments", "stop", "nope"), "no deployment 'nope'"),
    ],
)
def test_mistakes_are_one_line_and_status_2(env: dict, args: tuple, message: str):
    done = run(*args, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_killed_serve_takes_its_model_server_along_and_is_listed_failed(
    registry: SimpleNamespace, env: dict
):
    serve = subprocess.Popen(
        [*cli(), "serve", MODEL], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        listed = wait_listed(env, "ready")
    finally:
        serve.kill()
        serve.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not port_is_free(listed["port"]):
        time.sleep(0.1)
    assert port_is_free(listed["port"]), "the model server outlived `lepton-lab serve`"
    show = run("deployments", "show", listed["id"], "--json", env=env)
    record = json.loads(show.stdout)
    assert record["status"] == "failed" and "ended without stopping it" in record["error"]
    assert record["url"] is None
