"""The model registry facade: list, look up, change aliases and tags, delete, download,
compare. REST and the CLI call it; ``ll.models`` is the same registry from a kernel."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lepton_lab.contract import Conflict
from lepton_lab.contract.models import (
    CompareQuery,
    Comparison,
    Model,
    ModelList,
    ModelSummary,
    ModelVersion,
    VersionPatch,
)
from lepton_lab.models.artifacts import CorruptArtifact
from lepton_lab.models.registry import ModelRegistry
from lepton_lab.store import Store


@dataclass
class Download:
    """One artifact to send: a local, digest-checked file (a zip made for a folder)."""

    path: Path
    filename: str
    sha256: str | None
    size: int
    temporary: bool = False
    #: what usage calls it: ``model:<name>/v<number>/<format>``
    subject: str = ""

    def reader(self) -> BinaryIO:
        return self.path.open("rb")

    def discard(self) -> None:
        """Remove the zip made for this download (the artifact itself stays)."""
        if self.temporary:
            shutil.rmtree(self.path.parent, ignore_errors=True)


class ModelService:
    """The versions of one store; artifacts are read where their rows say they are."""

    def __init__(self, store: Store, artifact_dir: str | None = None) -> None:
        self.store = store
        self.registry = ModelRegistry(store, artifact_dir)

    def list(self) -> ModelList:
        return ModelList(models=[ModelSummary.model_validate(m) for m in self.registry.list()])

    def get(self, name: str) -> Model:
        versions = self.registry.versions(name)
        return Model(
            name=name,
            aliases=self.store.model_aliases(name),
            versions=[ModelVersion.model_validate(v) for v in versions],
        )

    def version(self, name: str, version: str) -> ModelVersion:
        return ModelVersion.model_validate(self.registry.version(name, version))

    def patch(self, name: str, version: str, patch: VersionPatch) -> ModelVersion:
        """Aliases listed end up on this version (moved from others); tags are merged."""
        number = self.registry.resolve(name, version)
        if patch.aliases is not None:
            self.registry.set_aliases(name, number, patch.aliases)
        if patch.tags:
            self.registry.set_tags(name, number, patch.tags)
        return self.version(name, str(number))

    def delete(self, name: str, version: str) -> None:
        self.registry.delete(name, version)

    def compare(self, name: str, query: CompareQuery | None = None) -> Comparison:
        query = query or CompareQuery()
        return Comparison.model_validate(self.registry.compare(name, query.metric))

    def download(self, name: str, version: str, format: str) -> Download:
        """An artifact to send, its digest checked first (a mismatch is a 409)."""
        try:
            row, path = self.registry.artifact(name, version, format)
        except CorruptArtifact as exc:
            raise Conflict(str(exc)) from None
        number = self.registry.resolve(name, version)
        filename = f"{name}-v{number}-{row['file']}"
        subject = f"model:{name}/v{number}/{format}"
        if path.is_dir():
            scratch = Path(tempfile.mkdtemp(prefix="lepton-download-"))
            archive = Path(shutil.make_archive(str(scratch / row["file"]), "zip", path))
            size = archive.stat().st_size
            return Download(archive, filename + ".zip", None, size, True, subject)
        return Download(path, filename, row["sha256"], path.stat().st_size, subject=subject)
