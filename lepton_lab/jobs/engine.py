"""``LeptonEngine``: papermill's nbclient engine plus per-cell progress for Lepton Lab jobs.

Registered as the papermill engine ``lepton`` (entry point ``papermill.engine``). Papermill
already records each cell's status and times in the output notebook; the engine also writes a
small progress file (cell i of n, its source head, times) on every cell start and end, which
the job's supervisor reads while the job runs, so progress shows without re-reading the
notebook. Given a ``redactor`` (``lepton_lab.jobs.redact``), it redacts the job's secret values
from the notebook before every save.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from papermill.engines import NBClientEngine

from lepton_lab.jobs.workdir import write_json_atomic

SOURCE_HEAD = 200


class LeptonEngine(NBClientEngine):
    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, **kwargs: Any) -> Any:
        redactor = kwargs.get("redactor")
        if redactor:
            redactor.tree(nb)  # before the first save (papermill's notebook_start)
        return super().execute_notebook(nb, kernel_name, **kwargs)

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        progress_path = kwargs.pop("progress_path", None)
        redactor = kwargs.pop("redactor", None)
        if progress_path is not None:
            _track_progress(nb_man, Path(progress_path))
        if redactor:
            _redact_saves(nb_man, redactor)
        try:
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
        finally:
            if redactor:
                # the notebook papermill writes twice more itself (raise_for_execution_errors,
                # and its last write_ipynb) is this one: clean it before it returns
                redactor.tree(nb_man.nb)


def _redact_saves(nb_man: Any, redactor: Any) -> None:
    """Every save of the output notebook (cell start and end, autosave, the end) writes it
    with the job's secret values redacted (in place: the notebook papermill keeps is clean)."""
    save = nb_man.save

    def redacted_save(**kw: Any) -> Any:
        redactor.tree(nb_man.nb)
        return save(**kw)

    nb_man.save = redacted_save


def _track_progress(nb_man: Any, path: Path) -> None:
    """Wrap the manager's cell callbacks (papermill calls them around each cell)."""
    cells = len(nb_man.nb.cells)
    started = time.time()
    state: dict[str, Any] = {"cells": cells, "cell": 0, "completed": 0, "started_at": started}
    write_json_atomic(path, state)
    cell_start, cell_complete = nb_man.cell_start, nb_man.cell_complete

    def on_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        state.update(
            cell=(cell_index or 0) + 1,
            source=str(cell.source)[:SOURCE_HEAD],
            cell_started_at=time.time(),
        )
        write_json_atomic(path, state)
        return cell_start(cell, cell_index, **kw)

    def on_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
        out = cell_complete(cell, cell_index, **kw)
        state["completed"] = (cell_index or 0) + 1
        write_json_atomic(path, state)
        return out

    nb_man.cell_start = on_start
    nb_man.cell_complete = on_complete
