"""``lepton-lab usage`` on a real SQLite store, with prices from the same Jupyter server config
file the lab reads: the table, JSON and CSV agree with the records; bad input is one line and
exit status 2."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from lepton_lab.cli.main import main
from lepton_lab.store import open_store

H = 3600.0


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    state = tmp_path / "state"
    state.mkdir()
    for name in ("LEPTON_LAB_PRICES", "JUPYTER_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(state))
    monkeypatch.setenv("LEPTON_LAB_DATABASE_URL", f"sqlite:///{state / 'lab.db'}")
    config = tmp_path / "jupyter-config"
    config.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    (config / "jupyter_server_config.py").write_text(
        "c.LeptonLab.prices = {'cpu_hour': 2.0, 'gpu_hour': {'A100': 10.0}}\n"
    )
    db = open_store()
    now = time.time()
    db.put_usage(
        "run",
        "r1",
        user="ann",
        started_at=now - 60,
        cpu_seconds=3 * H,
        gpu_seconds=H,
        gpu_model="NVIDIA A100-SXM4-40GB",
    )
    db.put_usage("job", "j1#1", user="bob", started_at=now - 30, cpu_seconds=H, wall_seconds=H)
    db.put_usage("run", "old", user="bob", started_at=now - 30 * 86400, cpu_seconds=50 * H)
    return db


def test_table_json_and_csv_agree_and_are_priced_from_the_config_file(store, capsys):
    assert main(["usage", "--by", "user"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["user", "records", "CPU"] and table[0].endswith("cost")
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["ann"][2] == "3.000" and rows["ann"][-1] == "16.00"  # 3 h x 2 + 1 A100 h x 10
    assert rows["bob"][2] == "1.000" and rows["bob"][-1] == "2.00"
    assert rows["total"][2] == "4.000" and rows["total"][-1] == "18.00"

    assert main(["usage", "--by", "kind", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {g["key"]: g["records"] for g in report["groups"]} == {"run": 1, "job": 1}
    assert report["total"]["cost"] == pytest.approx(18.0)

    assert main(["usage", "--by", "user", "--csv"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [line["user"] for line in lines] == ["ann", "bob", "total"]
    assert float(lines[-1]["cpu_hours"]) == pytest.approx(4.0)
    assert float(lines[-1]["cost"]) == pytest.approx(18.0)

    # a window that holds the old run too
    assert main(["usage", "--by", "user", "--json", "--from", "2000-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["cpu_hours"] == pytest.approx(54.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "last week"], "'from' must be a date (2026-11-01) or an ISO time"),
        (["--from", "2026-11-20", "--to", "2026-11-10"], "'from' (2026-11-20) is after 'to'"),
        (["--by", "team"], "'group_by' must be one of day, user, notebook, tag, kind"),
    ],
)
def test_bad_input_is_one_line_and_status_2(store, capsys, argv, message):
    assert main(["usage", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lepton-lab: error: {message}") and err.count("\n") == 1


def test_a_negative_price_in_the_config_is_refused(store, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LEPTON_LAB_PRICES", json.dumps({"gb_month": -0.5}))
    assert main(["usage"]) == 2
    assert capsys.readouterr().err == (
        "lepton-lab: error: prices: gb_month must not be negative, got -0.5\n"
    )
