"""``ll.models``: every trained model leaves the lab exported, verified, versioned and
reloadable.

``register(model_or_run, name, formats=None, example_input=None, metrics=None, tags=None)``
exports a Keras model, a ``torch.nn.Module`` or a finished ``Run``'s model to each format,
reloads each artifact in its own runtime and compares its output with the original's, and
records a numbered version with its lineage (run, job, notebook and its hash, parameters,
metrics, git state, library versions). ``load(name, version="latest" | N | "@alias" |
"best:<metric>", format=None)`` gives a ready object back. See docs/guide/models.md.
``serve("name@alias")`` serves a version over the Open Inference Protocol (docs/guide/serving.md).
"""

from __future__ import annotations

from lepton_lab.models.api import (
    ModelVersion,
    Table,
    add_alias,
    compare,
    delete,
    get,
    list_models,
    load,
    log_evaluation,
    register,
    registry,
    remove_alias,
    set_alias,
    set_tags,
)
from lepton_lab.models.artifacts import CorruptArtifact
from lepton_lab.models.formats import known_formats
from lepton_lab.models.registry import ModelExportError
from lepton_lab.serving import serve

list = list_models  # noqa: A001 - ``ll.models.list()`` as the issue and DESIGN.md name it

__all__ = [
    "CorruptArtifact",
    "ModelExportError",
    "ModelVersion",
    "Table",
    "add_alias",
    "compare",
    "delete",
    "get",
    "known_formats",
    "list",
    "list_models",
    "load",
    "log_evaluation",
    "register",
    "registry",
    "remove_alias",
    "set_alias",
    "serve",
    "set_tags",
]
