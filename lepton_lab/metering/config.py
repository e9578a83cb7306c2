"""Prices and retention: ``c.LeptonLab.prices`` and ``c.LeptonLab.retention``, checked once
here for the server, the CLI and kernels.

The server checks them at start and exports them to kernels and jobs (as JSON in
``LEPTON_LAB_PRICES`` / ``LEPTON_LAB_RETENTION``). The CLI, which runs without a server, reads
the same ``jupyter_server_config`` files the server does, with traitlets' own loaders, so that
``lepton-lab usage`` prices like the sidebar does.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from lepton_lab.config.settings import ENV_PRICES, ENV_RETENTION

#: what ``c.LeptonLab.retention`` may name: job outputs, run checkpoints, model versions
RETENTION_KINDS = ("jobs", "runs", "models")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


@dataclass(frozen=True)
class Prices:
    """Price per CPU hour, per GPU hour by GPU model, and per GB-month of storage."""

    cpu_hour: float = 0.0
    #: GPU model -> price; a key matches a model name that contains it ("H100" matches
    #: "NVIDIA H100 80GB HBM3"); "default" prices any other
    gpu_hour: dict[str, float] = field(default_factory=dict)
    gb_month: float = 0.0

    def gpu(self, model: str | None) -> float:
        name = (model or "").lower()
        for key, price in self.gpu_hour.items():
            if key != "default" and (key.lower() == name or key.lower() in name):
                return price
        return self.gpu_hour.get("default", 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_hour": self.cpu_hour,
            "gpu_hour": dict(self.gpu_hour),
            "gb_month": self.gb_month,
        }


def _price(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"prices: {name} must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"prices: {name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"prices: {name} must not be negative, got {value:g}")
    return float(value)


def parse_prices(value: Any) -> Prices | None:
    """``c.LeptonLab.prices`` checked: None (or {}) for none; a ValueError that names the
    entry for a negative or non-numeric price or an unknown key."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"prices must be an object of cpu_hour, gpu_hour, gb_month; got {value!r}")
    unknown = sorted(set(value) - {"cpu_hour", "gpu_hour", "gb_month"})
    if unknown:
        raise ValueError(
            f"prices: unknown key(s) {', '.join(unknown)}; accepted: cpu_hour, gpu_hour, gb_month"
        )
    gpu = value.get("gpu_hour", {})
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool):
        gpu = {"default": gpu}
    if not isinstance(gpu, dict):
        raise ValueError(
            f"prices: gpu_hour must be a number or an object of GPU model: price, got {gpu!r}"
        )
    return Prices(
        cpu_hour=_price("cpu_hour", value.get("cpu_hour", 0.0)),
        gpu_hour={str(k): _price(f"gpu_hour[{k!r}]", v) for k, v in gpu.items()},
        gb_month=_price("gb_month", value.get("gb_month", 0.0)),
    )


def parse_duration(text: Any) -> float:
    """``"90d"``, ``"12h"``, ``"2w"``, ``"30m"``, ``"45s"`` in seconds; a ValueError that
    quotes anything else."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"cannot parse the duration {text!r}: write a positive number and a unit, "
            "s, m, h, d or w (e.g. '90d')"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_retention(value: Any) -> dict[str, float]:
    """``c.LeptonLab.retention`` checked: kind -> seconds to keep."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"retention must be an object such as {{'jobs': '90d'}}, got {value!r}")
    unknown = sorted(set(value) - set(RETENTION_KINDS))
    if unknown:
        raise ValueError(
            f"retention: unknown key(s) {', '.join(unknown)}; accepted: "
            + ", ".join(RETENTION_KINDS)
        )
    out = {}
    for kind, text in value.items():
        try:
            out[kind] = parse_duration(text)
        except ValueError as exc:
            raise ValueError(f"retention: {kind}: {exc}") from None
    return out


def lab_setting(name: str, env: str) -> Any:
    """``c.LeptonLab.<name>`` as this process can know it: the server's export in ``env``,
    else the Jupyter server config files (``jupyter_server_config.py``/``.json``)."""
    raw = os.environ.get(env)
    if raw:
        return json.loads(raw)
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    found: Any = None
    for folder in reversed(jupyter_config_path()):  # the first folder wins, as in Jupyter
        for loader in (JSONFileConfigLoader, PyFileConfigLoader):
            suffix = ".json" if loader is JSONFileConfigLoader else ".py"
            path = os.path.join(folder, "jupyter_server_config" + suffix)
            if not os.path.isfile(path):
                continue
            config = loader("jupyter_server_config" + suffix, path=folder).load_config()
            if "LeptonLab" in config and name in config.LeptonLab:
                found = config.LeptonLab[name]
    return found


def lab_prices() -> Prices | None:
    return parse_prices(lab_setting("prices", ENV_PRICES))


def lab_retention() -> dict[str, float]:
    return parse_retention(lab_setting("retention", ENV_RETENTION))
