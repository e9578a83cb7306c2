"""Private files and folders: what Lepton Lab keeps (the store, job folders with notebooks,
logs and outputs, checkpoints) is the user's alone, whatever the umask: folders 0700, files
0600. The one place that says how, so every writer does it the same way."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | os.PathLike[str], tighten: bool = False) -> Path:
    """``path`` as a folder only its owner can enter. Every folder this creates on the way
    is 0700 too (``Path.mkdir(parents=True)`` would give the parents the umask's mode).
    Existing folders are left as they are unless ``tighten`` (for folders that are Lepton
    Lab's own, never one a user named: that could be ``/tmp``)."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass  # made meanwhile by another process
    if tighten or missing:
        _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """``path`` created empty with mode 0600 if missing (a writer that opens it afterwards
    keeps that mode), or tightened to 0600 if it exists."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        _tighten(path, PRIVATE_FILE)
    return path


def make_private(path: str | os.PathLike[str]) -> None:
    """Tighten a file that a library wrote with the umask's mode (papermill's output)."""
    if Path(path).exists():
        _tighten(Path(path), PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except PermissionError:
        pass  # another user's file that this process only reads
