"""Fixtures for notebook jobs: a private store (a real SQLite file), notebooks written on the
fly, and a job service with its real papermill runner processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest

from lepton_lab.jobs import client as api
from lepton_lab.jobs.dispatcher import Dispatcher
from lepton_lab.store import Store, open_store
from lepton_lab.store.schema import JOB_FINAL_STATUSES
from tests.support.polling import wait_for

KERNEL = "python3"


def write_notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    """A notebook with an optional ``parameters`` cell first, then ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state dir and SQLite store of the test's own, for this process and its children."""
    state_dir = tmp_path / "state"
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(state_dir))
    monkeypatch.setenv("LEPTON_LAB_DATABASE_URL", f"sqlite:///{state_dir / 'lab.db'}")
    state_dir.mkdir()
    yield state_dir
    if api._embedded is not None:
        api._embedded.close()
        api._embedded = None


@pytest.fixture
def store(state: Path) -> Store:
    return open_store()


@pytest.fixture
def service(store: Store, state: Path) -> Iterator[Callable[..., Dispatcher]]:
    """Start job services (closed after the test)."""
    started: list[Dispatcher] = []

    def start(**kwargs) -> Dispatcher:
        svc = Dispatcher(store, state, **{"concurrency": 2, "name": "test", **kwargs})
        svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.close()


def wait_ended(store: Store, job_id: str, timeout: float = 90) -> dict:
    wait_for(lambda: store.get_job(job_id, details=False)["status"] in JOB_FINAL_STATUSES, timeout)
    return store.get_job(job_id)
