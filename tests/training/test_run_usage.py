"""Usage of ``ll.fit`` runs, measured on a real 2-worker cluster: a loop that burns a known
amount of CPU per rank is recorded within 15 % of it, per rank and for the run, with the
caller's user, notebook and tags."""

from __future__ import annotations

import getpass
import json

from lepton_lab.config.settings import ENV_TAGS

#: CPU seconds each rank's loop burns (its own thread's time)
PER_RANK = 4.0


def burn(config):
    import time

    import lepton_lab as ll

    end = time.thread_time() + config["seconds"]
    step = 0
    while time.thread_time() < end:
        for _ in range(20_000):
            pass
        step += 1
        if step % 200 == 0:
            ll.context().report(step=step, work=float(step))
    return step


def test_each_ranks_cpu_seconds_are_within_15_percent_and_the_run_is_one_record(
    fit, store, monkeypatch, tmp_path
):
    monkeypatch.setenv(ENV_TAGS, json.dumps(["team-a", "exp-7"]))
    run = fit(burn, workers=2, config={"seconds": PER_RANK}, wait=True)
    record = store.get_run(run.id)
    assert record["status"] == "completed"
    ranks = sorted(record["usage"], key=lambda u: u["rank"])
    assert [u["rank"] for u in ranks] == [0, 1]
    for usage in ranks:
        assert abs(usage["cpu_seconds"] - PER_RANK) <= 0.15 * PER_RANK, usage
        assert usage["gpu_seconds"] == 0.0 and usage["gpu_model"] is None

    ledger = store.usage_record("run", run.id)
    assert ledger is not None
    total = sum(u["cpu_seconds"] for u in ranks)
    assert abs(ledger["cpu_seconds"] - total) < 1e-6
    assert abs(ledger["cpu_seconds"] - 2 * PER_RANK) <= 0.15 * 2 * PER_RANK
    assert ledger["user"] == getpass.getuser()
    assert ledger["tags"] == ["team-a", "exp-7"]
    assert ledger["wall_seconds"] >= PER_RANK * 0.9
    assert ledger["peak_memory"] == max(u["peak_memory"] for u in ranks) > 0
    assert ledger["detail"] == {"framework": "torch", "world_size": 2}
