"""The notebook jobs facade: submit, look up, list, stop, read logs and outputs, delete."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lepton_lab.contract import Conflict, NotFound, RequestError
from lepton_lab.contract.jobs import (
    OUTPUT_FORMATS,
    Job,
    JobList,
    JobLogs,
    JobQuery,
    JobRequest,
    LogQuery,
)
from lepton_lab.contract.runs import StopAccepted
from lepton_lab.jobs.submission import installed_kernels, submit
from lepton_lab.jobs.workdir import JobFiles
from lepton_lab.store import Store, UnknownJob
from lepton_lab.store.schema import JOB_ACTIVE_STATUSES, JOB_FINAL_STATUSES


def relative_path(notebook: str | None, root: Path | None) -> str | None:
    """The notebook's path relative to the server's root (None when it lies outside)."""
    if not notebook or root is None:
        return None
    path = Path(notebook)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None


class JobService:
    """Jobs in one store, as one user of the lab sees them.

    ``root`` confines notebook paths (the server's root directory; None for the CLI and
    ``ll.jobs``, which run as the user on their own files).
    """

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        root: Path | None = None,
        kernels: Callable[[], set[str]] = installed_kernels,
        default_executor: str = "local",
    ) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.root = root
        self.kernels = kernels
        self.default_executor = default_executor

    # -- submit ------------------------------------------------------------------------------
    def submit(self, body: dict[str, Any] | JobRequest, user: str | None = None) -> Job:
        """Validate and queue a job (nothing is stored when it is refused); its usage is
        ``user``'s (default: this process's user)."""
        try:
            record = submit(
                self.store,
                self.state_dir,
                body,
                self.root,
                self.kernels(),
                self.default_executor,
                user=user,
            )
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise RequestError(f"a path or name in the request cannot be used: {reason}") from None
        except OverflowError:
            raise RequestError("a number in the request is too large") from None
        return self.view(record)

    # -- read --------------------------------------------------------------------------------
    def record(self, job_id: str, details: bool = True) -> dict[str, Any]:
        try:
            return self.store.get_job(job_id, details)
        except UnknownJob as exc:
            raise NotFound(str(exc)) from None

    def get(self, job_id: str) -> Job:
        record = self.record(job_id)
        return self.view(record, self.store.model_refs(job_ids=[job_id]).get(job_id, []))

    def list(self, query: JobQuery | None = None) -> JobList:
        query = query or JobQuery()
        records = self.store.list_jobs(query.status, query.limit, query.schedule_id)
        refs = self.store.model_refs(job_ids=[r["id"] for r in records])
        return JobList(jobs=[self.view(r, refs.get(r["id"], [])) for r in records])

    def view(self, record: dict[str, Any], models: list[dict[str, Any]] | None = None) -> Job:
        """A job as REST shows it: plus ``path``, the ``outputs`` that exist and the
        ``elapsed`` seconds of the current attempt (``progress.cell_elapsed`` for the running
        cell), so a UI needs no clock of its own."""
        out = dict(record, models=models or [])
        out["path"] = relative_path(record.get("notebook"), self.root)
        now = time.time()
        started, ended, status = record.get("started_at"), record.get("ended_at"), record["status"]
        if status == "running" and started:
            out["elapsed"] = max(0.0, now - started)
        elif status in JOB_FINAL_STATUSES and started and ended:
            out["elapsed"] = max(0.0, ended - started)
        else:
            out["elapsed"] = None
        files = JobFiles.of(record)
        out["outputs"] = [fmt for fmt in OUTPUT_FORMATS if self._output(files, fmt).exists()]
        progress = record.get("progress") or {}
        if status == "running" and isinstance(progress.get("cell_started_at"), int | float):
            elapsed = max(0.0, now - progress["cell_started_at"])
            out["progress"] = dict(progress, cell_elapsed=elapsed)
        return Job.model_validate(out)

    @staticmethod
    def _output(files: JobFiles, fmt: str) -> Path:
        return files.output if fmt == "ipynb" else files.html

    # -- control -----------------------------------------------------------------------------
    def stop(self, job_id: str) -> StopAccepted:
        """A queued job stops at once; a running one is flagged for its owner, which kills
        the runner and its kernel within half a second."""
        try:
            status = self.store.request_stop(job_id)
        except UnknownJob as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:  # already ended
            raise Conflict(str(exc)) from None
        return StopAccepted(id=job_id, status=status)

    def delete(self, job_id: str) -> None:
        """Remove an ended job: its row and its folder (never a folder outside the state
        directory's ``jobs``, whatever the row says)."""
        try:
            record = self.store.delete_job(job_id)
        except UnknownJob as exc:
            raise NotFound(str(exc)) from None
        except ValueError as exc:  # queued or running
            raise Conflict(str(exc)) from None
        folder = JobFiles.of(record).root.resolve()
        if folder.is_relative_to((self.state_dir / "jobs").resolve()):
            shutil.rmtree(folder, ignore_errors=True)

    # -- files -------------------------------------------------------------------------------
    def logs(self, job_id: str, query: LogQuery | None = None) -> JobLogs:
        """Up to ``limit`` bytes of the log from ``offset``, cut at a character boundary (a
        UTF-8 character split across two pages would otherwise show as two replacement
        marks); ``complete`` once the job has ended and everything was read."""
        query = query or LogQuery()
        record = self.record(job_id, details=False)
        ended = record["status"] in JOB_FINAL_STATUSES
        try:
            with open(JobFiles.of(record).log, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(query.offset)
                data = f.read(query.limit)
        except FileNotFoundError:
            size, data = 0, b""
        at_end = query.offset + len(data) >= size
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data, final=ended and at_end)
        following = query.offset + len(data) - len(decoder.getstate()[0])
        return JobLogs(
            id=job_id,
            status=record["status"],
            offset=query.offset,
            next=following,
            size=size,
            text=text,
            complete=ended and following >= size,
        )

    def output(self, job_id: str, fmt: str) -> str | dict[str, Any]:
        """The executed notebook (parsed JSON) or its HTML (text)."""
        record = self.record(job_id, details=False)
        if fmt not in record["output_formats"]:
            raise NotFound(
                f"job {job_id} did not ask for {fmt} output (output_formats: "
                f"{', '.join(record['output_formats'])})"
            )
        try:
            text = self._output(JobFiles.of(record), fmt).read_text(
                encoding="utf-8", errors="replace"
            )
        except (FileNotFoundError, IsADirectoryError):
            stored = self.store.usage_record("storage", f"job:{job_id}")
            if stored is not None and stored.get("deleted_at"):
                raise NotFound(
                    f"job {job_id}'s outputs were deleted by retention (c.LeptonLab.retention)"
                ) from None
            raise NotFound(
                f"job {job_id} has no {fmt} output (yet): it is {record['status']}"
            ) from None
        if fmt == "html":
            return text
        try:
            return json.loads(text)
        except ValueError:
            if record["status"] in JOB_ACTIVE_STATUSES:
                raise Conflict(
                    f"job {job_id}'s output notebook is being written; try again"
                ) from None
            raise NotFound(f"job {job_id}'s output notebook is unreadable") from None
