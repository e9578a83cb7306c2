"""``data=(x, y)`` reaches each rank as its own shard: mapped from this host's shared memory,
or sent to a worker that cannot see it, the same rows either way, and nothing left behind."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lepton_lab.training import staging
from tests.training.loops import shard_details


def _data(n: int = 11):
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n)


def test_a_rank_maps_its_rows_from_a_private_folder_that_goes_when_the_run_ends(fit):
    x, y = _data()
    run = fit(shard_details, framework="torch", workers=2, data=(x, y), wait=True)
    assert run.status == "completed", run.error
    by_rank = sorted(run.result, key=lambda r: r["rank"])
    assert [r["labels"] for r in by_rank] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert by_rank[1]["inputs"][0] == [2.0, 3.0]
    for r in by_rank:
        assert r["mapped"] and r["mode"] == 0o600 and r["folder_mode"] == 0o700
        assert r["reread"] == r["labels"]  # copy-on-write: the rank's += stayed its own
    assert not os.path.exists(by_rank[0]["folder"])


def test_named_inputs_are_staged_per_name(fit):
    x, y = _data(6)
    run = fit(
        shard_details, framework="torch", workers=2, data=({"a": x, "b": x[:, :1]}, y), wait=True
    )
    assert run.status == "completed", run.error
    rank1 = next(r for r in run.result if r["rank"] == 1)
    assert rank1["labels"] == [1, 3, 5]
    assert rank1["inputs"] == {
        "a": [[2.0, 3.0], [6.0, 7.0], [10.0, 11.0]],
        "b": [[2.0], [6.0], [10.0]],
    }


def test_a_worker_on_another_host_gets_its_own_rows_sent_to_it(fit, monkeypatch):
    """Another host cannot see this host's /dev/shm: here the ranks are told a folder that
    does not exist, so the driver sends each its shard instead (the real scatter path)."""
    real_ref = staging.DataStage.ref
    monkeypatch.setattr(
        staging.DataStage,
        "ref",
        lambda self, rank: staging.ShardRef("/nonexistent-host-folder", rank, self.x_names),
    )
    monkeypatch.setattr(staging.DataStage, "shard", lambda self, rank: real_ref(self, rank).load())
    x, y = _data()
    run = fit(shard_details, framework="torch", workers=2, data=(x, y), wait=True)
    assert run.status == "completed", run.error
    by_rank = sorted(run.result, key=lambda r: r["rank"])
    assert [r["labels"] for r in by_rank] == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert not any(r["mapped"] for r in by_rank)


def test_arrays_numpy_cannot_map_still_arrive_with_the_task(fit):
    x = np.array([{"i": i} for i in range(6)], dtype=object)
    y = np.arange(6)
    assert not staging.stageable(x, y)
    run = fit(shard_details_objects, framework="torch", workers=2, data=(x, y), wait=True)
    assert run.status == "completed", run.error
    assert sorted(run.result) == [[0, 2, 4], [1, 3, 5]]


def shard_details_objects(config):
    import lepton_lab as ll

    x, _ = ll.context().data
    return [item["i"] for item in x]


def test_folders_of_a_killed_driver_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "SHARED_ROOT", tmp_path)
    dead = tmp_path / f"{staging.PREFIX}999999999-run-abc"
    mine = tmp_path / f"{staging.PREFIX}{os.getpid()}-run-def"
    dead.mkdir()
    mine.mkdir()
    stage = staging.DataStage("r1", *_data(4), world=2)
    try:
        assert not dead.exists() and mine.exists()
        assert stage.folder.parent == tmp_path
    finally:
        stage.close()
    assert not stage.folder.exists()


@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_rank_gets_the_same_number_of_rows(world):
    rows = [range(10)[staging.equal_rows(10, r, world)] for r in range(world)]
    assert len({len(r) for r in rows}) == 1 and len(rows[0]) == 10 // world
    assert sorted(i for r in rows for i in r) == list(range(len(rows[0]) * world))
