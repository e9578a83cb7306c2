"""Redaction of a job's secret values from everything the job leaves behind.

A job's secrets reach its kernel as environment variables (``executors.runner_env``); a
notebook that prints one must not leave it in the job's files. The paths that text from the
kernel takes, and where each is redacted (the value becomes ``***``):

1. **The output notebook.** papermill writes it at the start, when each cell starts and ends,
   every 30 s while a cell runs (autosave), when the notebook ends, once more at the end, and
   with an error cell on top when a cell failed (``raise_for_execution_errors``). The engine
   (``engine.LeptonEngine``) redacts the notebook in memory before each of its saves and
   after execution, so every one of these writes is clean; the runner then redacts the file
   once more (:func:`redact_notebook_file`).
2. **The HTML output**: made by the runner from the redacted output notebook.
3. **The log file.** The runner's stdout and stderr: papermill's ``log_output`` copies every
   cell's output there, with Python's logging and the runner's own messages; and the kernel's
   own stdout and stderr, which it inherits as file descriptors (``os.system``, C libraries,
   subprocesses, a crashing kernel's traceback). Both descriptors of the runner are a pipe
   (:class:`RedactingPipe`), which a thread reads, redacts and appends to the log.
4. **The job's error** (``result.json``, then the ``error`` column of the database): the
   runner redacts the text it writes.
5. **The Dask executor**: the worker's runner does 1-4, so what travels back to the lab (log
   events, output bytes, the result) is already redacted.

Values shorter than :data:`MIN_LENGTH` characters are left alone: ``***`` in place of every
"1" or "yes" in a log would hide more than it protects. Not covered: a value the job writes
to files of its own or sends elsewhere, or changes before it prints it (split, reversed,
encoded).
"""

from __future__ import annotations

import html
import json
import os
import re
import select
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lepton_lab.jobs.workdir import ENV_SECRET_NAMES

#: What a redacted value becomes.
MASK = "***"
#: Values shorter than this are not redacted.
MIN_LENGTH = 4


class Redactor:
    """Replaces the given values with :data:`MASK` in text and bytes.

    Each value is looked for as it is and as JSON, ``repr`` and HTML would escape it (a
    value with quotes, backslashes or non-ASCII characters looks different in each), longest
    form first.
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) < MIN_LENGTH:
                continue
            forms.update(
                (
                    value,
                    json.dumps(value)[1:-1],
                    json.dumps(value, ensure_ascii=False)[1:-1],
                    repr(value)[1:-1],
                    html.escape(value),
                )
            )
        ordered = sorted((f for f in forms if len(f) >= MIN_LENGTH), key=len, reverse=True)
        self.forms = ordered
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        encoded = [f.encode("utf-8", "surrogateescape") for f in ordered]
        self._bytes = re.compile(b"|".join(map(re.escape, encoded))) if ordered else None
        #: the longest form in bytes: a stream keeps this much less one back until it knows
        #: that no value starts there
        self.longest = max((len(e) for e in encoded), default=0)
        #: no value holds a line break: text up to a line break can be let through at once
        self.line_safe = not any("\n" in f or "\r" in f for f in ordered)

    def __bool__(self) -> bool:
        return self._text is not None

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Redactor:
        """The values of the secrets named in ``LEPTON_LAB_SECRET_NAMES`` (the runner's)."""
        environ = dict(os.environ) if environ is None else environ
        names = [n for n in environ.get(ENV_SECRET_NAMES, "").split(",") if n]
        return cls(environ[n] for n in names if n in environ)

    def text(self, value: str) -> str:
        return self._text.sub(MASK, value) if self._text is not None else value

    def bytes(self, value: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), value) if self._bytes is not None else value

    def tree(self, node: Any) -> bool:
        """Redact every string inside a JSON-like tree (a notebook) in place; True when
        something changed. Keys are left as they are (MIME types, metadata names)."""
        if self._text is None:
            return False
        changed = False
        if isinstance(node, dict):
            items: Iterable[tuple[Any, Any]] = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return False
        for key, child in items:
            if isinstance(child, str):
                clean = self.text(child)
                if clean != child:
                    node[key] = clean
                    changed = True
            elif isinstance(child, dict | list):
                changed = self.tree(child) or changed
        return changed


def redact_notebook_file(path: Path, redactor: Redactor) -> None:
    """The notebook at ``path`` rewritten with its secrets redacted (when it holds any)."""
    if not redactor or not path.exists():
        return
    import nbformat

    raw = path.read_bytes()
    try:
        nb = nbformat.reads(raw.decode("utf-8", "replace"), as_version=nbformat.NO_CONVERT)
    except Exception:  # noqa: BLE001 - not a notebook (cut short): redact its bytes
        path.write_bytes(redactor.bytes(raw))
        return
    if redactor.tree(nb) or redactor.bytes(raw) != raw:
        path.write_bytes(redactor.bytes(nbformat.writes(nb).encode("utf-8")))


class RedactingPipe:
    """This process's stdout and stderr (file descriptors 1 and 2, which the kernel it starts
    inherits) made into a pipe; a thread reads it, redacts the values and appends the result
    to the file that descriptor 1 was (the job's log).

    A value can arrive split across two reads: the thread holds back the last
    ``longest - 1`` bytes until more comes (or, when no value holds a line break, only what
    follows the last line break), and lets everything through at :meth:`close`.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        sys.stdout.flush()
        sys.stderr.flush()
        self._out = os.dup(1)  # the log; not inherited by the kernel (os.dup: non-inheritable)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)  # dup2 makes 1 and 2 inheritable: the kernel writes here too
        os.dup2(write_end, 2)
        os.close(write_end)
        self._in = read_end
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="lepton-redact", daemon=True)
        self._thread.start()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._out, view)
            view = view[written:]

    def _pump(self) -> None:
        redactor = self.redactor
        keep = max(redactor.longest - 1, 0)
        held = b""
        while True:
            ready, _, _ = select.select([self._in], [], [], 0.1)
            if not ready:
                if self._closing.is_set():
                    break  # nothing more right now, and the runner is done
                continue
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                break  # every writer (the runner, its kernel) has closed the pipe
            held = redactor.bytes(held + chunk)
            cut = len(held) - keep
            if redactor.line_safe:
                cut = max(cut, held.rfind(b"\n") + 1)
            if cut > 0:
                self._write(held[:cut])
                held = held[cut:]
        self._write(redactor.bytes(held))
        os.close(self._in)

    def close(self, timeout: float = 5.0) -> None:
        """Let the rest through and give descriptors 1 and 2 back to the log."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._out, 1)
        os.dup2(self._out, 2)
        self._closing.set()
        self._thread.join(timeout)
