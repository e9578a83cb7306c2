"""Where a version's files live: a folder of the artifact directory (a local path or any
fsspec URL), with a sha256 per artifact that every reload checks.

A version's folder is written complete before its rows are inserted, and is renamed aside
(``*.deleting``) before its rows are deleted, so neither a crash nor a failed step leaves rows
without files or files without rows for long: :func:`sweep` removes what a crash left aside.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from lepton_lab.config.files import make_private, private_dir
from lepton_lab.config.settings import ENV_ARTIFACT_DIR, state_dir

DELETING = ".deleting"
_CHUNK = 1 << 20


class CorruptArtifact(RuntimeError):
    """An artifact's bytes no longer match the digest recorded when it was registered."""


def artifact_root(override: str | None = None) -> str:
    """The artifact directory: ``override``, the environment's, or the state dir's."""
    root = override or os.environ.get(ENV_ARTIFACT_DIR)
    if root:
        return root.rstrip("/")
    return str(private_dir(state_dir() / "artifacts", tighten=True))


def models_root(root: str) -> str:
    fs, path = fsspec.core.url_to_fs(root)
    if isinstance(fs, LocalFileSystem):
        private_dir(Path(path) / "models", tighten=True)
    return f"{root}/models"


def digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, or of a folder (SavedModel): the digest of its sorted
    relative paths with each file's own digest, the size the sum of its files."""
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest(), path.stat().st_size
    h, size = hashlib.sha256(), 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        sub, n = digest(item)
        h.update(f"{item.relative_to(path).as_posix()}\0{sub}\n".encode())
        size += n
    return h.hexdigest(), size


def _fs(uri: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(uri)


def is_local(uri: str) -> bool:
    return isinstance(_fs(uri)[0], LocalFileSystem)


def publish(staging: Path, location: str) -> None:
    """Copy a staged version folder to its place in the artifact directory."""
    fs, path = _fs(location)
    if isinstance(fs, LocalFileSystem):
        target = Path(path)
        private_dir(target.parent, tighten=True)
        shutil.copytree(staging, target, copy_function=shutil.copy2)
        for item in [target, *target.rglob("*")]:
            if item.is_dir():
                os.chmod(item, 0o700)
            else:
                make_private(item)
        return
    fs.put(str(staging), path, recursive=True)


def remove(location: str) -> None:
    fs, path = _fs(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def set_aside(location: str) -> str:
    """Rename a version's folder to ``<folder>.deleting`` (one rename on a local disk); the
    new name is returned, to put back or remove."""
    fs, path = _fs(location)
    aside = location + DELETING
    if fs.exists(path):
        fs.mv(path, _fs(aside)[1], recursive=True)
    return aside


def put_back(aside: str, location: str) -> None:
    fs, path = _fs(aside)
    if fs.exists(path):
        fs.mv(path, _fs(location)[1], recursive=True)


def sweep(models: str, name: str, live: set[str]) -> list[str]:
    """Remove the folders of ``name`` that a failed or crashed deletion left set aside
    (``*.deleting``), except those whose version still has rows (``live``: the stored
    locations): another process may be deleting that one right now and put it back."""
    fs, root = _fs(models)
    folder = f"{root.rstrip('/')}/{name}"
    if not fs.exists(folder):
        return []
    keep = {_fs(location)[1].rstrip("/") for location in live}
    removed = []
    for entry in fs.glob(f"{folder}/*{DELETING}"):
        if entry.rstrip("/")[: -len(DELETING)] in keep:
            continue
        try:
            fs.rm(entry, recursive=True)
            removed.append(entry)
        except OSError:
            pass  # still held; the next sweep tries again
    return removed


def fetch(uri: str, sha256: str, file: str) -> Path:
    """A local path to the artifact at ``uri`` whose digest matches ``sha256``: the file itself
    when it is local, else a copy in the state dir's cache. A mismatch is CorruptArtifact."""
    fs, path = _fs(uri)
    if isinstance(fs, LocalFileSystem):
        local = Path(path)
        if not local.exists():
            raise CorruptArtifact(f"the artifact {uri} is missing")
    else:
        cache = private_dir(state_dir() / "cache" / "models" / sha256[:32], tighten=True)
        local = cache / file
        if local.exists():
            if digest(local)[0] == sha256:
                return local
            _remove_local(local)  # a copy cut short or damaged: fetch it again
        # downloaded under another name and renamed, so a download cut short is never taken
        # for the artifact
        partial = cache / f".{file}.{os.getpid()}.partial"
        _remove_local(partial)
        fs.get(path, str(partial), recursive=True)
        for item in [partial, *partial.rglob("*")]:
            if item.is_dir():
                os.chmod(item, 0o700)
            else:
                make_private(item)
        try:
            os.replace(partial, local)
        except OSError:  # a folder that another process fetched meanwhile
            _remove_local(partial)
    found, _ = digest(local)
    if found != sha256:
        raise CorruptArtifact(
            f"the artifact {uri} is corrupted: its sha256 is {found[:16]}..., "
            f"registered as {sha256[:16]}..."
        )
    return local


def _remove_local(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
