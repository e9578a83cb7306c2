"""Execute one job attempt with papermill (``python -m lepton_lab.jobs.runner FOLDER`` runs
it by hand; the executors start it as a forked process, see ``executors.start_runner``).

Runs in its own process (started by the local executor, or by a Dask worker task), so a hung
kernel or a crash never touches the server; the supervisor ends it, with its kernel, by
killing the process tree. It reads ``request.json`` in the folder and leaves the executed
notebook (kept on failure too, with papermill's marker on the failing cell), the HTML when
asked, and ``result.json``. Stdout/stderr (papermill's log and the cells' streams) go to
whatever the supervisor connected them to: the job's log. When the job has secrets, their
values are redacted from all of these (``lepton_lab.jobs.redact`` lists the paths).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from lepton_lab.config.files import make_private, private_file
from lepton_lab.jobs.redact import RedactingPipe, Redactor, redact_notebook_file
from lepton_lab.jobs.workdir import (
    ENV_JOB_METRICS_FILE,
    JobFiles,
    read_json,
    write_json_atomic,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error_text(exc: BaseException) -> tuple[str, int | None]:
    """A readable account of the failing cell (papermill's error carries it), ANSI-free."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        tb = _ANSI.sub("", "\n".join(exc.traceback or []))
        head = str(exc.source).strip().splitlines()[:3]
        text = (
            f"cell {exc.cell_index + 1} (In [{exc.exec_count}]) raised {exc.ename}: "
            f"{exc.evalue}\n--- cell source ---\n" + "\n".join(head) + f"\n--- traceback ---\n{tb}"
        )
        return text, exc.cell_index + 1
    return "".join(traceback.format_exception_only(type(exc), exc)).strip(), None


def _write_html(files: JobFiles) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(files.output, as_version=4))
    private_file(files.html).write_text(body, encoding="utf-8")


def run(folder: Path) -> int:
    files = JobFiles(folder)
    request: dict[str, Any] = read_json(files.request) or {}
    os.environ[ENV_JOB_METRICS_FILE] = str(private_file(files.metrics))  # the kernel appends
    # the job's secrets are in this environment (the kernel inherits it): keep their values
    # out of the log, the output notebook, the HTML and the error (see jobs/redact.py)
    redactor = Redactor.from_environment()
    pipe = RedactingPipe(redactor) if redactor else None
    try:
        return _run(files, request, redactor)
    finally:
        if pipe is not None:
            pipe.close()


def _run(files: JobFiles, request: dict[str, Any], redactor: Redactor) -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        force=True,
    )
    import papermill

    from lepton_lab.config.settings import ENV_NOTEBOOK, ENV_TAGS, ENV_USER
    from lepton_lab.metering.meter import TreeMeter, own_cpu_seconds

    # runs the notebook starts record their usage for this job's user, notebook and tags
    for name, value in (
        (ENV_USER, request.get("user")),
        (ENV_NOTEBOOK, request.get("notebook")),
        (ENV_TAGS, json.dumps(request["tags"]) if request.get("tags") else None),
    ):
        if value:
            os.environ[name] = value
    meter = TreeMeter(snapshot=files.usage).start()
    started = time.time()
    result: dict[str, Any] = {"status": "completed", "error": None, "error_cell": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            papermill.execute_notebook(
                str(files.input),
                str(files.output),
                parameters=request.get("parameters") or {},
                kernel_name=request.get("kernel"),
                language=request.get("language"),
                cwd=request.get("cwd") or None,
                engine_name="lepton",
                progress_bar=False,
                # papermill logs each cell's start, end and outputs: that is the job's log
                log_output=True,
                progress_path=str(files.progress),
                **({"redactor": redactor} if redactor else {}),
            )
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the job's result
        text, cell = _error_text(exc)
        text = redactor.text(text)
        result.update(status="failed", error=text, error_cell=cell)
        print(f"lepton-lab: the job failed: {text}", file=sys.stderr)
    redact_notebook_file(files.output, redactor)
    if "html" in (request.get("output_formats") or []) and files.output.exists():
        try:
            _write_html(files)
        except Exception as exc:  # noqa: BLE001 - the notebook is the record; HTML is extra
            print(f"lepton-lab: could not write the HTML output: {exc}", file=sys.stderr)
    make_private(files.output)  # papermill wrote it with the umask's mode
    result["seconds"] = time.time() - started
    # the kernel has been reaped by now: its CPU, and its waited-for children's, is ours
    result["usage"] = meter.stop(cpu_seconds=own_cpu_seconds())
    write_json_atomic(files.result, result)
    sys.stdout.flush()
    return 0 if result["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
