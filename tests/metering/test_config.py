"""``c.LeptonLab.prices`` and ``c.LeptonLab.retention``: checked when the server is configured,
and the prices' GPU matching."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from lepton_lab.metering.config import parse_duration, parse_prices
from lepton_lab.server.app import LeptonLab


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"cpu_hour": -1}, "prices: cpu_hour must not be negative, got -1"),
        ({"gpu_hour": {"H100": -2.5}}, "prices: gpu_hour['H100'] must not be negative"),
        ({"gb_month": "cheap"}, "prices: gb_month must be a number, got 'cheap'"),
        ({"cpu": 1}, "prices: unknown key(s) cpu; accepted: cpu_hour, gpu_hour, gb_month"),
    ],
)
def test_the_server_refuses_bad_prices_by_name(prices, message):
    with pytest.raises(TraitError, match=r"^LeptonLab\.prices: ") as info:
        LeptonLab(prices=prices)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"jobs": "90 days"}, "retention: jobs: cannot parse the duration '90 days'"),
        ({"runs": "-3d"}, "retention: runs: cannot parse the duration '-3d'"),
        ({"logs": "9d"}, "retention: unknown key(s) logs; accepted: jobs, runs, models"),
    ],
)
def test_the_server_refuses_bad_retention_by_name(retention, message):
    with pytest.raises(TraitError, match=r"^LeptonLab\.retention: ") as info:
        LeptonLab(retention=retention)
    assert message in str(info.value)


def test_good_settings_are_taken_and_gpu_prices_match_model_names():
    lab = LeptonLab(
        prices={"cpu_hour": 0.1, "gpu_hour": {"H100": 3, "default": 1}},
        retention={"jobs": "90d", "runs": "12w"},
    )
    assert lab.retention == {"jobs": "90d", "runs": "12w"}
    prices = parse_prices(lab.prices)
    assert prices.gpu("NVIDIA H100 80GB HBM3") == 3.0
    assert prices.gpu("Tesla T4") == 1.0  # the default
    assert parse_prices({"gpu_hour": 2}).gpu("anything") == 2.0
    assert parse_prices({}) is None
    assert parse_duration("90d") == 90 * 86400 and parse_duration("1.5h") == 5400
