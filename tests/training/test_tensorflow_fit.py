"""TensorFlow runs on a real 2-worker cluster: each rank a real TensorFlow process under
MultiWorkerMirroredStrategy, for tf.keras ``model.fit`` and for a custom tf.function loop."""

from __future__ import annotations

import functools
import os
import signal
import time

import pytest

import lepton_lab as ll
from tests.support.tf_processes import tf_children, wait_no_children
from tests.training.loops import digits_arrays, digits_model, epoch_marker_callback
from tests.training.tf_loops import (
    collective_forever,
    digits_tf_loop,
    file_data_fn,
    global_dataset_fn,
    meet_and_return,
    write_digit_files,
)


def wait_for(run, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(run.events()):
            return
        assert run.status not in ("completed", "failed", "stopped"), run.error
        time.sleep(0.1)
    raise AssertionError(f"timed out; events: {[e['kind'] for e in run.events()]}")


@pytest.fixture(scope="module")
def digits():
    return digits_arrays()


def test_tf_keras_fit_on_two_workers_learns_digits(fit, digits, tmp_path):
    x, y, xv, yv = digits
    marks = tmp_path / "marks"
    marks.mkdir()
    run = fit(
        digits_model,  # the same model_fn as torch-backend runs: `keras` is tf.keras in the ranks
        data=(x, y),
        validation_data=(xv, yv),
        backend="tensorflow",
        epochs=10,
        batch_size=32,
        workers=2,
        # the user's own callback, made in each rank (a factory: tf.keras there)
        callbacks=[functools.partial(epoch_marker_callback, str(marks))],
        wait=True,
    )
    assert run.status == "completed", run.error
    first, second = run.result
    assert first["weights_sha"] == second["weights_sha"]
    assert first["history"]["val_accuracy"][-1] >= 0.9
    assert len(list(marks.iterdir())) == 10 * 2
    # rank 0's weights come back into the kernel's own Keras, and score there too
    _, accuracy = run.model.evaluate(xv, yv, verbose=0)
    assert accuracy >= 0.9
    record = run.record()
    assert record["framework"] == "keras"
    assert record["params"]["backend"] == "tensorflow"
    names = {m["name"] for m in run.metrics()}
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= names
    # usage per rank, measured on the ranks' TensorFlow processes
    usage = record["usage"]
    assert sorted(u["rank"] for u in usage) == [0, 1]
    assert all(u["cpu_seconds"] > 1 and u["peak_memory"] > 100e6 for u in usage), usage
    assert wait_no_children() == []


def test_custom_tf_function_loop_learns_digits_with_identical_weights(fit, store, client):
    from lepton_lab.services.runs import RunService
    from lepton_lab.widgets.monitor import RunMonitor

    run = fit(digits_tf_loop, framework="tensorflow", workers=2, config={"epochs": 8})
    monitor = RunMonitor(run)  # the live monitor, drawn from the same events as torch runs
    assert run.wait(300) == "completed", run.error
    first, second = run.result
    assert first["weights_sha"] == second["weights_sha"]
    assert first["holdout_accuracy"] >= 0.9
    losses = [m["value"] for m in run.metrics() if m["name"] == "loss" and m["rank"] == 0]
    assert len(losses) == 8 and losses[-1] < losses[0]
    # what REST answers for it (the service behind GET /runs/{id})
    view = RunService(store, lambda: client).get(run.id)
    assert view.framework == "tensorflow" and view.status == "completed"
    assert view.world_size == 2 and len(view.usage) == 2
    monitor.wait(30)
    assert "completed" in monitor.header.value
    assert monitor.epoch_bar.value == monitor.epoch_bar.max == 8
    monitor.close()


def test_tf_runs_follow_each_other_and_a_torch_run_on_the_same_workers(fit, client):
    from tests.training.loops import digits_torch

    before = sorted(client.scheduler_info()["workers"])
    pids = set()
    for _ in range(3):
        run = fit(meet_and_return, framework="tensorflow", workers=2, wait=True)
        assert run.status == "completed", run.error
        assert sorted(r["rank"] for r in run.result) == [0, 1]
        assert '"index": 1' in run.result[1]["tf_config"]
        pids |= {r["pid"] for r in run.result}
    assert len(pids) == 6  # a fresh TensorFlow process per rank and run
    torch_run = fit(digits_torch, workers=2, config={"epochs": 1}, wait=True)
    assert torch_run.status == "completed", torch_run.error
    run = fit(meet_and_return, framework="tensorflow", workers=2, wait=True)
    assert run.status == "completed", run.error
    # nobody restarted a worker to make that possible
    assert sorted(client.scheduler_info()["workers"]) == before
    assert wait_no_children() == []


def test_keras_run_resumes_from_its_checkpoint_after_a_worker_dies(fit, client, digits, tmp_path):
    x, y, xv, yv = digits
    marks = tmp_path / "marks"
    marks.mkdir()
    run = fit(
        digits_model,
        data=(x, y),
        validation_data=(xv, yv),
        backend="tensorflow",
        epochs=8,
        workers=2,
        callbacks=[functools.partial(epoch_marker_callback, str(marks), seconds=0.5)],
        max_failures=1,
    )
    wait_for(run, lambda ev: any(e["kind"] == "checkpoint" and e["data"]["step"] >= 2 for e in ev))
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[1]], signal.SIGKILL)
    assert run.wait(240) == "completed", run.error
    restart = next(e for e in run.events() if e["kind"] == "restart")
    resumed = restart["data"]["resume_step"]
    assert resumed >= 2
    assert [r["initial_epoch"] for r in run.result] == [resumed + 1] * 2
    assert run.result[0]["weights_sha"] == run.result[1]["weights_sha"]
    assert wait_no_children() == []


def test_a_killed_tensorflow_process_is_survived_without_restarting_workers(fit, client):
    before = sorted(client.scheduler_info()["workers"])
    run = fit(
        digits_tf_loop,
        framework="tensorflow",
        workers=2,
        config={"epochs": 6, "pause": 0.5},
        max_failures=1,
    )
    wait_for(run, lambda ev: any(e["kind"] == "checkpoint" and e["data"]["step"] >= 1 for e in ev))
    victim = tf_children()[0]
    victim.kill()
    assert run.wait(240) == "completed", run.error
    failure = next(e for e in run.events() if e["kind"] == "failure")
    assert "TensorFlow process" in failure["message"] and "signal 9" in failure["message"]
    assert all(r["start_epoch"] >= 2 for r in run.result)
    assert run.result[0]["weights_sha"] == run.result[1]["weights_sha"]
    assert sorted(client.scheduler_info()["workers"]) == before
    assert wait_no_children() == []


def test_stop_ends_a_tensorflow_run_within_seconds_and_leaves_no_process(fit, store, client):
    run = fit(collective_forever, framework="tensorflow", workers=2)
    wait_for(run, lambda ev: any(e["kind"] == "start" for e in ev))
    deadline = time.monotonic() + 120
    while not run.metrics() and time.monotonic() < deadline:
        time.sleep(0.1)
    from lepton_lab.services.runs import RunService

    started = time.monotonic()
    RunService(store, lambda: client).stop(run.id)  # what POST /runs/{id}/stop does
    assert run.wait(30) == "stopped"
    assert time.monotonic() - started < 10
    assert wait_no_children(5) == []


def test_rendezvous_timeout_is_a_clear_error(fit):
    run = fit(meet_and_return, framework="tensorflow", workers=2, rendezvous_timeout=0.01)
    assert run.wait(120) == "failed"
    assert "ranks met" in run.error and "within 0 s" in run.error
    assert wait_no_children() == []


@pytest.mark.parametrize("shape", ["global dataset", "files at an fsspec URL"])
def test_tf_data_datasets_from_data_fn_are_sharded(fit, tmp_path, shape):
    if shape == "global dataset":  # TensorFlow shards it (policy AUTO: DATA here)
        data_fn = global_dataset_fn
    else:  # each rank reads its own files through fsspec (policy OFF, ctx.shard_files)
        write_digit_files(tmp_path, files=4)
        data_fn = file_data_fn(f"file://{tmp_path}/digits-*.npz")
    run = fit(digits_model, data=data_fn, backend="tensorflow", epochs=4, workers=2, wait=True)
    assert run.status == "completed", run.error
    assert run.result[0]["weights_sha"] == run.result[1]["weights_sha"]
    assert run.result[0]["history"]["accuracy"][-1] > 0.85


def test_mixed_precision_picks_the_policy_this_machine_supports(fit, digits):
    from lepton_lab.training.tf_keras_loop import _cpu_has_bf16

    x, y, *_ = digits
    run = fit(
        digits_model,
        data=(x, y),
        backend="tensorflow",
        epochs=1,
        workers=1,
        precision="mixed",
        wait=True,
    )
    assert run.status == "completed", run.error
    if _cpu_has_bf16():
        assert run.result[0]["precision_policy"] == "mixed_bfloat16"
    else:
        assert run.result[0]["precision_policy"] == "float32"
        assert any(e["kind"] == "warning" for e in run.events())


def torch_model_fn():
    import torch

    return torch.nn.Linear(64, 10)


@pytest.mark.parametrize(
    "call,message",
    [
        (dict(fn=torch_model_fn, data="digits", backend="tensorflow"), "compiled Keras model"),
        (dict(fn=digits_model, data="digits", backend="tensorflow", workers=3), "only 2 worker"),
        (dict(fn=meet_and_return, framework="tensorflow", workers=3), "only 2 worker"),
        (dict(fn=digits_model, data="dataset", backend="tensorflow"), "cannot be sent"),
        (dict(fn=meet_and_return, framework="tensorflow", data="dataset"), "cannot be sent"),
        (dict(fn=digits_model, data="digits", backend="jax"), "backend must be one of"),
        (dict(fn=meet_and_return, framework="tensorflow", backend="tensorflow"), "backend="),
        (
            dict(
                fn=digits_model,
                data="digits",
                backend="tensorflow",
                callbacks="keras3",
            ),
            "Keras 3 callback",
        ),
        (
            dict(fn=digits_model, data="digits", backend="tensorflow", callbacks="unpicklable"),
            "cannot be sent to the workers",
        ),
    ],
)
def test_bad_tensorflow_input_is_refused_before_any_rank_starts(fit, store, digits, call, message):
    import tensorflow as tf

    x, y, *_ = digits
    call = dict(call)
    fn = call.pop("fn")
    data = call.pop("data", None)
    if data == "digits":
        call["data"] = (x, y)
    elif data == "dataset":
        call["data"] = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    if call.get("callbacks") == "keras3":
        import keras

        call["callbacks"] = [keras.callbacks.EarlyStopping(patience=2)]
    elif call.get("callbacks") == "unpicklable":
        import threading

        lock = threading.Lock()
        call["callbacks"] = [lambda: lock]  # a factory holding what cannot be pickled
    call.setdefault("framework", None)
    with pytest.raises(ll.FitError, match=message):
        fit(fn, **call)
    assert store.list_runs() == []


def test_missing_tensorflow_is_one_line_saying_what_to_install(fit, store, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tf_keras" else real(name, *a)
    )
    with pytest.raises(ll.FitError, match=r"pip install 'lepton-lab\[tensorflow\]'"):
        fit(meet_and_return, framework="tensorflow", workers=2)
    assert store.list_runs() == []
