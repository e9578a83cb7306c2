"""ll.fit with a per-worker torch loop on a real 2-worker cluster: DDP over gloo, streamed
metrics, checkpoints and resume, stop, failures, bad input."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

import lepton_lab as ll
from tests.support.permissions import not_private
from tests.training.loops import digits_torch, fail_on_rank_one, report_forever


def test_ddp_on_two_workers_learns_digits_and_ranks_end_with_identical_weights(fit, store):
    run = fit(digits_torch, workers=2, config={"epochs": 15}, wait=True)
    assert run.status == "completed", run.error
    assert [r["rank"] for r in run.result] == [0, 1]
    assert run.result[0]["val_accuracy"] >= 0.9
    assert run.result[0]["weights_sha"] == run.result[1]["weights_sha"]
    record = run.record()
    assert record["world_size"] == 2 and record["started_at"] <= record["ended_at"]
    assert record["driver"] == f"{socket.gethostname()}:{os.getpid()}"  # this process drove it
    # every epoch's two metrics from both ranks reached the store
    metrics = run.metrics()
    assert len(metrics) == 15 * 2 * 2
    assert {m["rank"] for m in metrics} == {0, 1}
    assert sorted({m["step"] for m in metrics}) == list(range(15))
    assert len(record["usage"]) == 2 and all(u["cpu_seconds"] > 0 for u in record["usage"])
    assert all(u["peak_memory"] > 0 for u in record["usage"])
    checkpoints = [e for e in record["events"] if e["kind"] == "checkpoint"]
    assert len(checkpoints) == 15 and os.path.exists(checkpoints[-1]["data"]["path"])
    # checkpoints are the user's alone: every folder made for them 0700, every file 0600
    artifacts = Path(checkpoints[-1]["data"]["path"]).parents[3]
    assert artifacts.name == "artifacts" and not_private(artifacts) == []


def test_two_runs_at_once_then_a_third_all_complete(fit):
    first = fit(digits_torch, workers=2, config={"epochs": 3})
    second = fit(digits_torch, workers=2, config={"epochs": 3})
    assert first.wait(180) == "completed", first.error
    assert second.wait(180) == "completed", second.error
    third = fit(digits_torch, workers=2, config={"epochs": 2}, wait=True)
    assert third.status == "completed", third.error


def test_stop_ends_a_long_run_within_seconds_and_frees_the_workers(fit, client):
    run = fit(report_forever, workers=2)
    deadline = time.monotonic() + 60
    while not run.metrics() and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    assert run.stop(timeout=30) == "stopped"
    assert time.monotonic() - started < 10
    assert run.record()["status"] == "stopped"
    for worker in client.scheduler_info(n_workers=-1)["workers"]:
        assert client.submit(lambda: 1, workers=[worker], pure=False).result(timeout=10) == 1


def test_killed_worker_restarts_the_run_from_its_last_checkpoint(fit, client):
    run = fit(digits_torch, workers=2, config={"epochs": 10, "sleep": 0.4}, max_failures=1)

    def checkpoint_steps():
        return [e["data"]["step"] for e in run.events() if e["kind"] == "checkpoint"]

    deadline = time.monotonic() + 120
    while not [s for s in checkpoint_steps() if s >= 2] and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[1]], signal.SIGKILL)
    assert run.wait(240) == "completed", run.error
    events = run.events()
    restart = next(e for e in events if e["kind"] == "restart")
    resumed_from = restart["data"]["resume_step"]
    assert resumed_from is not None and resumed_from >= 2
    assert any(e["kind"] == "failure" and "was lost" in e["message"] for e in events)
    # the loop really resumed: it started after the checkpoint, not at epoch 0
    assert [r["start_epoch"] for r in run.result] == [resumed_from + 1] * 2
    assert run.record()["attempts"] == 2


def test_a_rank_that_raises_fails_the_run_with_its_rank_and_traceback(fit):
    run = fit(fail_on_rank_one, workers=2, wait=True)
    assert run.status == "failed"
    assert run.error_rank == 1
    assert "rank 1 raised ValueError: bad batch on purpose" in run.error
    assert "fail_on_rank_one" in run.error  # the remote traceback


def test_mixed_precision_on_cpu_runs_in_bfloat16(fit):
    run = fit(digits_torch, workers=1, config={"epochs": 2}, precision="mixed", wait=True)
    assert run.status == "completed", run.error


def test_context_outside_a_run_is_a_clear_error():
    with pytest.raises(RuntimeError, match="only available inside a training loop"):
        ll.context()


@pytest.mark.parametrize(
    "fn,kwargs,message",
    [
        ("not callable", {}, "must be callable"),
        (digits_torch, {"workers": 3}, "only 2 worker"),
        (digits_torch, {"workers": 0}, "positive integer"),
        (digits_torch, {"framework": "jax"}, "not supported"),
        (digits_torch, {"precision": "fp8"}, "precision must be"),
        (digits_torch, {"config": {"lock": threading.Lock()}}, "not picklable"),
        (lambda config, lock=threading.Lock(): None, {}, "not picklable"),
    ],
)
def test_bad_input_is_refused_before_any_rank_starts_and_stores_nothing(
    fit, store, fn, kwargs, message
):
    with pytest.raises(ll.FitError, match=message):
        fit(fn, **kwargs)
    assert store.list_runs() == []


def test_a_run_is_recorded_in_postgresql_too(client, tmp_path):
    from lepton_lab.store import Store
    from tests.support.postgres import postgres_server

    with postgres_server() as url:
        store = Store(url)
        run = ll.fit(
            digits_torch,
            framework="torch",
            workers=2,
            config={"epochs": 2},
            client=client,
            store=store,
            artifact_dir=str(tmp_path),
            wait=True,
        )
        assert run.status == "completed", run.error
        record = store.get_run(run.id)
        assert record["status"] == "completed" and len(record["usage"]) == 2
        assert store.count_metrics(run.id) == 2 * 2 * 2
        store.engine.dispose()


def test_arrays_given_to_a_loop_arrive_as_equal_shards(fit):
    import numpy as np

    from tests.training.loops import shard_sizes

    x, y = np.arange(101 * 3).reshape(101, 3), np.arange(101)
    run = fit(shard_sizes, framework="torch", workers=2, data=(x, y), wait=True)
    assert run.status == "completed", run.error
    assert [r["n"] for r in run.result] == [50, 50]
    assert [r["first_label"] for r in run.result] == [0, 1]
    with pytest.raises(ll.FitError, match="101 samples but 100 labels"):
        fit(shard_sizes, framework="torch", workers=2, data=(x, y[:100]))


def test_without_retries_a_lost_worker_fails_the_run_and_never_hangs(fit, client):
    run = fit(report_forever, workers=2, max_failures=0)
    deadline = time.monotonic() + 60
    while not run.metrics() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
    assert run.wait(90) == "failed"
    assert "was lost" in run.error and run.error_rank == 0


def test_default_artifact_folders_are_private_even_when_an_earlier_release_made_them(
    client, store, tmp_path, monkeypatch
):
    """Without ``artifact_dir`` checkpoints go under the state dir's ``artifacts/runs``:
    Lepton Lab's own folders, so 0755 ones left by an earlier release become 0700."""
    data = tmp_path / "data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.delenv("LEPTON_LAB_STATE_DIR", raising=False)
    runs = data / "lepton_lab" / "artifacts" / "runs"
    runs.mkdir(parents=True, mode=0o755)
    for folder in (runs, runs.parent, runs.parents[1]):
        os.chmod(folder, 0o755)
    run = ll.fit(
        digits_torch, framework="torch", workers=1, client=client, store=store, config={"epochs": 1}
    )
    assert run.wait(120) == "completed", run.error
    assert not_private(runs.parents[1]) == []
