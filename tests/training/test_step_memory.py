"""A long run does not grow: 2,000 reported DDP steps on the lab's workers, whose allocator
now keeps glibc's defaults (it no longer returns memory on every free; see
lepton_lab/cluster/workers.py)."""

from __future__ import annotations

from tests.training.loops import rss_over_steps

#: what 1,800 steps may add to a rank's RSS: allocator noise and the report buffer, not
#: per-step state (a leaked 16 x 64 activation per step alone would be ~7 MB)
GROWTH_BOUND = 8 * 2**20


def test_two_thousand_reported_steps_keep_each_ranks_memory_flat(fit, store):
    run = fit(rss_over_steps, workers=2, config={"steps": 2_000, "warmup": 200}, wait=True)
    assert run.status == "completed", run.error
    for rank in run.result:
        assert rank["end"] - rank["warm"] < GROWTH_BOUND, rank
    # identical weights on both ranks after 2,000 all-reduced steps
    assert run.result[0]["checksum"] == run.result[1]["checksum"]
    assert store.count_metrics(run.id) == 2 * 2_000
