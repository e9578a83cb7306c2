"""Request bodies the tests send, by the contract model they are for.

The drift test (tests/unit/test_contract.py) checks each against both the pydantic model and
the JSON schema the served OpenAPI document gives for it: a valid example must pass both, an
invalid one must fail both, so the document and the validation cannot disagree.
"""

from __future__ import annotations

from typing import Any

VALID: dict[str, list[dict[str, Any]]] = {
    "JobRequest": [
        {"path": "typed.ipynb"},
        {"path": "typed.ipynb", "kernel": "python3", "parameters": {"i": 7, "s": "x"}},
        {
            "path": "sub/train.ipynb",
            "name": "nightly",
            "cwd": "sub",
            "timeout": 600,
            "retries": 2,
            "retry_backoff": 0.5,
            "tags": ["a", "b"],
            "output_formats": ["ipynb", "html"],
            "executor": "dask",
            "allow_unknown": True,
        },
        {"path": "typed.ipynb", "timeout": None, "cwd": None, "kernel": None},
    ],
    "ScheduleRequest": [
        {"path": "typed.ipynb", "cron": "0 3 * * *"},
        {
            "path": "typed.ipynb",
            "cron": "* * * * * */2",
            "timezone": "Europe/Paris",
            "active": False,
            "overlap": "queue",
            "catchup": "none",
            "parameters": {"i": 8},
        },
    ],
    "SchedulePatch": [
        {"active": False},
        {"cron": "30 4 * * *", "timezone": "UTC", "parameters": {"i": 8, "s": "y"}},
        {"overlap": "skip", "catchup": "once", "allow_unknown": True},
    ],
    "ScaleRequest": [
        {"workers": 0},
        {"workers": 3},
        {"adapt": {"minimum": 0, "maximum": 4}},
        {"adapt": {"maximum": 2}},
    ],
}

INVALID: dict[str, list[dict[str, Any]]] = {
    "JobRequest": [
        {},
        {"path": ""},
        {"path": 3},
        {"path": "a.ipynb", "colour": "red"},
        {"path": "a.ipynb", "timeout": -1},
        {"path": "a.ipynb", "timeout": "soon"},
        {"path": "a.ipynb", "retries": "3"},
        {"path": "a.ipynb", "retries": 1000},
        {"path": "a.ipynb", "retries": 1.5},
        {"path": "a.ipynb", "output_formats": ["pdf"]},
        {"path": "a.ipynb", "output_formats": ["ipynb", "html", "ipynb"]},
        {"path": "a.ipynb", "parameters": [1, 2]},
        {"path": "a.ipynb", "allow_unknown": "yes"},
        {"path": "a.ipynb", "tags": [1]},
        {"path": "a.ipynb", "executor": "cloud"},
        {"path": "a.ipynb", "executor": None},
        {"path": "a.ipynb", "name": "x" * 201},
    ],
    "ScheduleRequest": [
        {"path": "a.ipynb"},
        {"path": "a.ipynb", "cron": 5},
        {"path": "a.ipynb", "cron": "* * * * *", "active": "no"},
        {"path": "a.ipynb", "cron": "* * * * *", "catchup": "all"},
        {"path": "a.ipynb", "cron": "* * * * *", "retry_backoff": 1},
    ],
    "SchedulePatch": [
        {"path": "other.ipynb"},
        {"overlap": "maybe"},
        {"cron": None},
        {"active": "no"},
    ],
    "ScaleRequest": [
        {},
        {"workers": -1},
        {"workers": "3"},
        {"workers": 2.5},
        {"nodes": 3},
        {"workers": None},
        {"workers": 1, "adapt": {"maximum": 2}},
        {"adapt": {"minimum": -1, "maximum": 2}},
        {"adapt": {"maximum": "2"}},
        {"adapt": {}},
        {"adapt": {"maximum": 2, "wait": 1}},
        {"adapt": None},
    ],
}
