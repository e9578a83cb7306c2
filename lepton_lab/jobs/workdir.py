"""The files of one job execution, and how the supervisor reads them while the job runs.

The runner process (papermill) and the process that supervises it talk through files in the
job's folder, not through the database: the same runner then works unchanged on a remote Dask
worker, where the supervisor is a task that forwards what the files say over Dask events.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lepton_lab.config.files import private_file

#: Set in the runner's (and so the kernel's) environment: where ``ll.log_metrics`` appends.
ENV_JOB_METRICS_FILE = "LEPTON_LAB_JOB_METRICS_FILE"
ENV_JOB_ID = "LEPTON_LAB_JOB_ID"
#: Names (comma-separated) of the job's secrets, set with the secrets themselves in the
#: runner's environment: the runner redacts their values from the log and outputs.
ENV_SECRET_NAMES = "LEPTON_LAB_SECRET_NAMES"


@dataclass(frozen=True)
class JobFiles:
    """Paths inside one job's folder."""

    root: Path

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobFiles:
        """The files of a stored job (its ``output_dir``, a folder of the state directory)."""
        return cls(Path(job["output_dir"]))

    @property
    def request(self) -> Path:
        return self.root / "request.json"

    @property
    def input(self) -> Path:
        return self.root / "input.ipynb"

    @property
    def output(self) -> Path:
        return self.root / "output.ipynb"

    @property
    def html(self) -> Path:
        return self.root / "output.html"

    @property
    def log(self) -> Path:
        return self.root / "job.log"

    @property
    def progress(self) -> Path:
        return self.root / "progress.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def usage(self) -> Path:
        """What the attempt's process tree used so far (``metering.meter.TreeMeter``)."""
        return self.root / "usage.json"

    def reset_attempt(self) -> None:
        """Clear what one attempt leaves behind (the log is kept: attempts append to it)."""
        for path in (self.progress, self.metrics, self.result, self.usage, self.output, self.html):
            path.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(private_file(tmp), "w") as f:
        f.write(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class Tail:
    """Reads what was appended to a file since the last call (whole lines only)."""

    def __init__(self, path: Path, lines: bool = False) -> None:
        self.path = path
        self.offset = 0
        self.lines = lines

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return b""
        if self.lines:
            end = data.rfind(b"\n") + 1
            data = data[:end]
        self.offset += len(data)
        return data

    def records(self) -> list[dict[str, Any]]:
        """New JSON lines (for ``metrics.jsonl``); a malformed line is skipped."""
        out = []
        for line in self.read().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class ProgressWatch:
    """Returns the runner's progress record when it changed since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None

    def changed(self) -> dict[str, Any] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return read_json(self.path)
