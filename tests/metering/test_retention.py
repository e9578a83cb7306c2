"""Retention on a real SQLite store and state dir: jobs created by the job code (snapshot folder,
claim, finish), runs with checkpoints where ``ll.fit`` puts them, and real registered model
versions (a tiny torch MLP as safetensors), aged by moving their times back.

What is checked: a dry run changes nothing; applying deletes old job outputs, old run
checkpoints and old unaliased versions, and keeps new ones, aliased and served versions, active
jobs, the job and run rows and the usage records (``deleted_at`` set); bad settings fail with a
line that names the entry; ``lepton-lab gc``; the dispatcher leader's hourly hook.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from lepton_lab.cli.main import main
from lepton_lab.jobs import dispatcher as dispatching
from lepton_lab.jobs.dispatcher import Dispatcher, finish
from lepton_lab.jobs.spec import validate_job
from lepton_lab.jobs.submission import create_job
from lepton_lab.metering import retention
from lepton_lab.metering.config import parse_retention
from lepton_lab.metering.ledger import folder_bytes, record_storage
from lepton_lab.models.registry import ModelRegistry
from lepton_lab.services.usage import UsageService
from lepton_lab.store import Store, UnknownModelVersion, open_store
from lepton_lab.store.schema import ModelVersionRow
from tests.jobs.conftest import write_notebook
from tests.models.digits import FOREIGN_SETTINGS, digits, torch_mlp

DAY = 86400.0
KEEP = {"jobs": "30d", "runs": "30d", "models": "30d"}
OWNER = "test-host:1:retention"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A state dir, its store and registry, no retention configured anywhere, and a working
    folder outside any git tree (the registry records git state)."""
    state = tmp_path / "state"
    state.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in (*FOREIGN_SETTINGS, "LEPTON_LAB_RETENTION", "JUPYTER_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(state))
    monkeypatch.setenv("LEPTON_LAB_DATABASE_URL", f"sqlite:///{state / 'lab.db'}")
    config = tmp_path / "jupyter-config"
    config.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    store = open_store()
    notebook = write_notebook(tmp_path / "nb" / "train.ipynb", "print(x)", parameters="x = 1")
    return SimpleNamespace(
        state=state,
        store=store,
        registry=ModelRegistry(store),
        notebook=notebook,
        config=config,
        now=time.time(),
    )


def ended_job(lab: SimpleNamespace, days_ago: float, status: str = "completed") -> dict:
    """A job as the job code leaves one: its folder (input snapshot, request, log), claimed,
    an output notebook written, finished, then its end moved ``days_ago`` back."""
    job = queued_job(lab)
    claimed = lab.store.claim(job["id"], OWNER)
    assert claimed is not None
    folder = Path(job["output_dir"])
    (folder / "output.ipynb").write_text((folder / "input.ipynb").read_text())
    (folder / "job.log").write_text("ran\n" * 100)
    finish(lab.store, claimed, status, None if status == "completed" else "boom", owner=OWNER)
    lab.store.update_job(job["id"], ended_at=lab.now - days_ago * DAY)
    return lab.store.get_job(job["id"], details=False)


def queued_job(lab: SimpleNamespace, days_ago: float = 0.0) -> dict:
    spec = validate_job({"path": str(lab.notebook), "kernel": "python3"}, None, {"python3"})
    job = create_job(lab.store, lab.state, spec)
    if days_ago:
        lab.store.update_job(job["id"], created_at=lab.now - days_ago * DAY)
    return lab.store.get_job(job["id"], details=False)


def ended_run(lab: SimpleNamespace, run_id: str, days_ago: float | None) -> Path:
    """A run row as ``ll.fit`` writes it (params name its artifact folder) with a checkpoint
    in ``<artifacts>/runs/<id>/checkpoints``; ended ``days_ago`` back (None: still running)."""
    folder = lab.state / "artifacts" / "runs" / run_id
    lab.store.create_run(
        run_id,
        framework="torch",
        status="running",
        params={"artifact_dir": str(folder)},
        world_size=1,
    )
    checkpoints = folder / "checkpoints"
    (checkpoints / "step-00000010").mkdir(parents=True)
    (checkpoints / "step-00000010" / "model.pt").write_bytes(os.urandom(4096))
    if days_ago is not None:
        lab.store.finish_run(run_id, "completed")
        lab.store.update_run(run_id, ended_at=lab.now - days_ago * DAY)
    return checkpoints


def version(lab: SimpleNamespace, days_ago: float, seed: int = 0, **options) -> dict:
    """A registered version of ``digits`` (safetensors), its creation moved back."""
    record = lab.registry.register(
        torch_mlp(seed), "digits", formats=["safetensors"], example_input=digits()[0][:8], **options
    )
    with lab.store.session() as s, s.begin():
        s.execute(
            update(ModelVersionRow)
            .where(ModelVersionRow.name == "digits", ModelVersionRow.version == record["version"])
            .values(created_at=lab.now - days_ago * DAY)
        )
    return lab.store.model_version("digits", record["version"])


def files(state: Path) -> list[str]:
    """Every file of the state dir but the database (which the store itself writes)."""
    return sorted(
        str(p.relative_to(state))
        for p in state.rglob("*")
        if p.is_file() and not p.name.startswith("lab.db")
    )


@pytest.fixture
def world(lab: SimpleNamespace) -> SimpleNamespace:
    """Old and new of each kind, plus what must never go whatever its age."""
    w = SimpleNamespace(lab=lab)
    w.old_job = ended_job(lab, 100)
    w.old_failed_job = ended_job(lab, 40, status="failed")
    w.new_job = ended_job(lab, 1)
    w.queued_job = queued_job(lab, days_ago=200)
    w.running_job = queued_job(lab, days_ago=200)
    assert lab.store.claim(w.running_job["id"], OWNER) is not None
    w.old_run = ended_run(lab, "runold", 100)
    w.new_run = ended_run(lab, "runnew", 1)
    w.running_run = ended_run(lab, "runlive", None)
    lab.store.update_run("runlive", created_at=lab.now - 200 * DAY)
    w.v_old = version(lab, 100, seed=1)
    w.v_aliased = version(lab, 100, seed=2, aliases=["production"])
    w.v_served = version(lab, 100, seed=3)
    w.v_new = version(lab, 1, seed=4)
    lab.store.create_deployment(
        "dep1",
        model="digits",
        version=w.v_served["version"],
        ref=f"digits@{w.v_served['version']}",
        format="safetensors",
    )
    lab.store.update_deployment("dep1", status="ready")
    # the job's storage record as the ledger writes it when a job ends; the others have none
    record_storage(lab.store, f"job:{w.old_job['id']}", w.old_job["output_dir"], created_at=lab.now)
    lab.store.put_usage("job", f"{w.old_job['id']}#1", user="ada", cpu_seconds=3.0)
    w.old_subjects = {
        f"job:{w.old_job['id']}",
        f"job:{w.old_failed_job['id']}",
        "run:runold",
        f"model:digits/v{w.v_old['version']}",
    }
    return w


def test_a_plan_names_what_is_older_than_its_kind_and_nothing_else(world):
    lab = world.lab
    items = retention.plan(lab.store, parse_retention(KEEP), now=lab.now)
    assert {i.subject for i in items} == world.old_subjects
    by_subject = {i.subject: i for i in items}
    job = by_subject[f"job:{world.old_job['id']}"]
    assert (job.kind, job.path) == ("job", world.old_job["output_dir"])
    assert job.bytes == folder_bytes(world.old_job["output_dir"]) > 400
    assert job.age == pytest.approx(100 * DAY)
    assert "completed 100.0 days ago" in job.reason and "30d" in job.reason
    run = by_subject["run:runold"]
    assert run.path == str(world.old_run) and run.bytes == 4096
    model = by_subject[f"model:digits/v{world.v_old['version']}"]
    assert model.path == world.v_old["location"] and model.bytes > 0
    assert "no alias" in model.reason
    # only the kinds configured
    only_runs = retention.plan(lab.store, parse_retention({"runs": "30d"}), now=lab.now)
    assert [i.subject for i in only_runs] == ["run:runold"]
    # a longer retention keeps the 40-day-old failed job
    longer = retention.plan(lab.store, parse_retention({"jobs": "8w"}), now=lab.now)
    assert [i.subject for i in longer] == [f"job:{world.old_job['id']}"]


def test_a_dry_run_deletes_nothing(world):
    lab = world.lab
    before_files = files(lab.state)
    before_records = lab.store.usage_records()
    found = UsageService(lab.store).gc(dry_run=True, retention=parse_retention(KEEP))
    assert {d["subject"] for d in found} == world.old_subjects
    assert not any(d["deleted"] for d in found)
    assert files(lab.state) == before_files
    assert lab.store.usage_records() == before_records
    assert lab.store.model_version("digits", world.v_old["version"])
    assert not any(
        "deleted by retention" in e["message"]
        for e in lab.store.get_job(world.old_job["id"])["events"]
    )


def test_apply_deletes_old_files_and_keeps_rows_records_and_the_rest(world):
    lab = world.lab
    old_job_id = world.old_job["id"]
    before = {(r["kind"], r["subject"]): r for r in lab.store.usage_records()}
    assert ("storage", f"job:{old_job_id}") in before  # the ledger's, written when it ended
    assert ("storage", "run:runold") not in before  # none: retention writes one first
    done = UsageService(lab.store).gc(dry_run=False, retention=parse_retention(KEEP))
    assert {d["subject"] for d in done} == world.old_subjects
    assert all(d["deleted"] and d["error"] is None for d in done), done

    # files: old ones gone, new, active, aliased and served ones kept
    assert not Path(world.old_job["output_dir"]).exists()
    assert not Path(world.old_failed_job["output_dir"]).exists()
    for job in (world.new_job, world.queued_job, world.running_job):
        assert Path(job["output_dir"], "input.ipynb").is_file()
    assert not world.old_run.exists() and world.old_run.parent.is_dir()
    assert (world.new_run / "step-00000010" / "model.pt").is_file()
    assert (world.running_run / "step-00000010" / "model.pt").is_file()
    assert not Path(world.v_old["location"]).exists()
    with pytest.raises(UnknownModelVersion):
        lab.store.model_version("digits", world.v_old["version"])
    for kept in (world.v_aliased, world.v_served, world.v_new):
        assert lab.store.model_version("digits", kept["version"])
        assert Path(kept["location"]).is_dir()
    assert lab.store.model_aliases("digits") == {"production": world.v_aliased["version"]}

    # rows: the job and the run stay, each with an event that says where its files went
    job = lab.store.get_job(old_job_id)
    assert job["status"] == "completed"
    assert "outputs deleted by retention" in job["events"][-1]["message"]
    assert job["events"][-1]["status"] == "completed"
    run = lab.store.get_run("runold")
    assert run["status"] == "completed"
    assert any(e["kind"] == "retention" for e in run["events"])

    # usage: nothing removed; each deleted thing's storage record has deleted_at, with the
    # bytes its record had, or (written now) the bytes measured before deleting
    after = {(r["kind"], r["subject"]): r for r in lab.store.usage_records()}
    assert set(before) <= set(after)
    assert {s for k, s in set(after) - set(before)} <= world.old_subjects
    assert after[("job", f"{old_job_id}#1")]["cpu_seconds"] == 3.0
    by_subject = {d["subject"]: d for d in done}
    for subject in world.old_subjects:
        record = after[("storage", subject)]
        earlier = before.get(("storage", subject))
        if earlier is not None:
            assert record["bytes"] == earlier["bytes"] > 0, subject
            assert record["started_at"] == earlier["started_at"], subject
        else:
            assert record["bytes"] == by_subject[subject]["bytes"] > 0, subject
        assert record["deleted_at"] == pytest.approx(time.time(), abs=60), subject
        assert record["detail"]["location"], subject
    assert after[("storage", f"job:{old_job_id}")]["detail"]["deleted_by"] == "retention"
    run_record = lab.store.usage_record("storage", "run:runold")
    assert run_record["started_at"] == pytest.approx(run["created_at"])
    assert lab.store.usage_record("storage", "run:runnew") is None

    # a second pass finds nothing more
    assert UsageService(lab.store).gc(dry_run=False, retention=parse_retention(KEEP)) == []


def test_an_alias_set_after_the_plan_keeps_the_version(lab):
    old = version(lab, 100)
    items = retention.plan(lab.store, parse_retention({"models": "30d"}), now=lab.now)
    assert [i.subject for i in items] == [f"model:digits/v{old['version']}"]
    lab.store.add_model_alias("digits", old["version"], "staging")
    [result] = retention.apply(lab.store, items)
    assert not result.deleted and "alias" in result.error
    assert Path(old["location"]).is_dir()
    assert lab.store.usage_record("storage", result.subject)["deleted_at"] is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"jobs": "x"}, "retention: jobs: cannot parse the duration 'x'"),
        ({"runs": "-3d"}, "retention: runs: cannot parse the duration '-3d'"),
        ({"models": 90}, "retention: models: cannot parse the duration 90"),
        ({"logs": "9d"}, "retention: unknown key(s) logs; accepted: jobs, runs, models"),
    ],
)
def test_a_bad_retention_is_a_value_error_that_names_the_entry(lab, monkeypatch, value, message):
    with pytest.raises(ValueError) as caught:
        parse_retention(value)
    assert str(caught.value).startswith(message)
    monkeypatch.setenv("LEPTON_LAB_RETENTION", json.dumps(value))
    with pytest.raises(ValueError, match="^retention: "):
        UsageService(lab.store).gc(dry_run=True)


def test_gc_cli_refuses_a_bad_setting_with_one_line(lab, monkeypatch, capsys):
    job = ended_job(lab, 100)
    monkeypatch.setenv("LEPTON_LAB_RETENTION", json.dumps({"jobs": "x"}))
    assert main(["gc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lepton-lab: error: retention: jobs: cannot parse the duration 'x'")
    assert err.count("\n") == 1
    # the same from the Jupyter server's config file, which the CLI reads without a server
    monkeypatch.delenv("LEPTON_LAB_RETENTION")
    (lab.config / "jupyter_server_config.py").write_text(
        "c.LeptonLab.retention = {'runs': '3 fortnights'}\n"
    )
    assert main(["gc", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lepton-lab: error: retention: runs: cannot parse the duration")
    assert Path(job["output_dir"]).is_dir()


def test_gc_cli_without_retention_says_so(lab, capsys):
    job = ended_job(lab, 1000)
    assert main(["gc"]) == 0
    out = capsys.readouterr()
    assert "no retention configured" in out.err
    assert out.out == ""
    assert Path(job["output_dir"]).is_dir()


def test_gc_cli_lists_then_deletes(lab, monkeypatch, capsys):
    old, new = ended_job(lab, 100), ended_job(lab, 1)
    (lab.config / "jupyter_server_config.json").write_text(
        json.dumps({"LeptonLab": {"retention": {"jobs": "30d"}}})
    )
    assert main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "subject", "age", "(days)", "size", "result"]
    row = lines[1].split()
    assert row[:3] == ["job", f"job:{old['id']}", "100.0"]
    assert "would delete" in lines[1]
    assert lines[-1].startswith("total: 1 item(s), ") and lines[-1].endswith("would be deleted")
    assert f"job:{new['id']}" not in out
    assert Path(old["output_dir"]).is_dir()

    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert f"job:{old['id']}" in out and "deleted" in out.splitlines()[1]
    assert "total: 1 item(s)" in out and out.rstrip().endswith(" deleted")
    assert not Path(old["output_dir"]).exists() and Path(new["output_dir"]).is_dir()

    assert main(["gc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["gc"]) == 0
    assert capsys.readouterr().out.startswith("nothing older than the retention (jobs 30d)")


def test_gc_cli_json_dry_run(lab, monkeypatch, capsys):
    old = ended_job(lab, 100)
    monkeypatch.setenv("LEPTON_LAB_RETENTION", json.dumps({"jobs": "30d"}))
    assert main(["gc", "--dry-run", "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["subject"] == f"job:{old['id']}"
    assert item["age_days"] == pytest.approx(100, abs=0.01)
    assert item["bytes"] == folder_bytes(old["output_dir"])
    assert item["deleted"] is False
    assert Path(old["output_dir"]).is_dir()


def leader(store: Store, state: Path, name: str = "test") -> Dispatcher:
    return Dispatcher(store, state, concurrency=1, kernels=lambda: {"python3"}, name=name)


def test_the_dispatcher_leader_runs_retention_once_then_hourly(lab, monkeypatch):
    old = ended_job(lab, 100)
    monkeypatch.setenv("LEPTON_LAB_RETENTION", json.dumps({"jobs": "30d"}))
    # the default: not at once when the lease is gained (a start stays quick)
    d = leader(lab.store, lab.state)
    d.step()
    assert d.is_leader and d._retention_thread is None
    d.close()

    monkeypatch.setattr(dispatching, "RETENTION_DELAY", 0.0)
    monkeypatch.setattr(dispatching, "RETENTION_EVERY", 1.5)
    d = leader(lab.store, lab.state)
    other = leader(lab.store, lab.state, name="other")
    try:
        d.step()
        assert d.is_leader
        d._retention_thread.join(30)
        assert not Path(old["output_dir"]).exists()  # the real clean-up ran
        assert lab.store.usage_record("storage", f"job:{old['id']}")["deleted_at"] is not None

        calls = []
        d.run_retention = lambda: calls.append(time.monotonic()) or []
        other.run_retention = lambda: calls.append("other") or []
        started = time.monotonic()
        for _ in range(3):
            d.step()
            other.step()  # not the leader: never runs it
        assert time.monotonic() - started < 1.5, "steps too slow for this clock"
        assert calls == [] and not other.is_leader
        time.sleep(1.6)
        d.step()
        d._retention_thread.join(10)
        d.step()
        assert len(calls) == 1 and calls[0] != "other"
    finally:
        other.close()
        d.close()


def test_a_failing_retention_is_one_warning_and_the_dispatcher_goes_on(lab, monkeypatch, caplog):
    monkeypatch.setenv("LEPTON_LAB_RETENTION", json.dumps({"jobs": "soon"}))
    monkeypatch.setattr(dispatching, "RETENTION_DELAY", 0.0)
    d = leader(lab.store, lab.state)
    try:
        with caplog.at_level(logging.WARNING, logger="lepton_lab.jobs"):
            d.step()
            d._retention_thread.join(30)
            d.step()
        warnings = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
        assert warnings == [
            "Lepton Lab: retention did not run: retention: jobs: cannot parse the duration "
            "'soon': write a positive number and a unit, s, m, h, d or w (e.g. '90d')"
        ]
        assert d.is_leader
        launched: list[str] = []
        d.launch = launched.append  # no runner process: that the queue is read is enough
        job = queued_job(lab)
        d.step()
        assert launched == [job["id"]]
    finally:
        d.close()
