"""Job executors are plug-ins: classes registered on the ``lepton_lab.executors`` entry-point
group, the way papermill finds its engines. The REST enum, ``GET /config`` and the UI's list
all come from here.

An executor class has a ``name``, a one-line ``description`` and is built with a callable
that returns the lab's ``distributed.Client`` (``client()``, for executors that use the
cluster); ``start(files, job)`` begins one attempt and returns an
:class:`~lepton_lab.jobs.executors.Execution`. The job's secrets, in clear, are
``executors.job_secrets(job)``: they belong in the runner's environment only
(``executors.start_runner(files, job_id, attempt, secrets)`` puts them there).
"""

from __future__ import annotations

import functools
from typing import Any

from lepton_lab.config.plugins import load_group

GROUP = "lepton_lab.executors"


@functools.lru_cache(maxsize=1)
def executor_classes() -> dict[str, type[Any]]:
    """Installed executors by name (``local`` first). One that fails to load is logged and
    left out."""
    return load_group(GROUP, "executor", first="local")


def executor_names() -> tuple[str, ...]:
    return tuple(executor_classes())


def describe_executors() -> list[dict[str, str]]:
    return [
        {"name": name, "description": str(getattr(cls, "description", "") or cls.__doc__ or "")}
        for name, cls in executor_classes().items()
    ]


def check_executor(name: str) -> str:
    """``name`` if installed, else a RequestError listing what is."""
    from lepton_lab.contract import RequestError

    names = executor_names()
    if name not in names:
        raise RequestError(f"'executor' must be one of {', '.join(names)}, got {name!r}")
    return name
