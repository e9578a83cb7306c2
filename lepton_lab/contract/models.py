"""Shapes of the model registry routes (``/models``...), and the rules for names and aliases
that the registry, REST and the CLI share."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from lepton_lab.contract.base import Request, RequestError, View

#: A model name is one path segment: it becomes a folder of the artifact directory and a URL
#: segment, so it may not hold ``/``, start with a dot or run past 200 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: An alias starts with a letter, so ``@3`` can never be read as a version number.
ALIAS_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
#: Version references that are not aliases (``latest``, ``best:...``).
RESERVED_ALIASES = frozenset({"latest", "best"})


def check_name(name: Any) -> str:
    """``name`` if it is a valid model name, else a :class:`RequestError` saying why."""
    if not isinstance(name, str) or not name:
        raise RequestError("a model name must be a non-empty string")
    if len(name) > 200:
        raise RequestError(f"a model name has at most 200 characters, got {len(name)}")
    if not NAME_PATTERN.fullmatch(name):
        raise RequestError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (no '/' or other path characters)"
        )
    return name


def check_alias(alias: Any) -> str:
    """``alias`` if it is a valid alias, else a :class:`RequestError` saying why."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise RequestError(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '_' or '-' "
            "(at most 64 characters)"
        )
    if alias in RESERVED_ALIASES:
        raise RequestError(f"{alias!r} is reserved for version references; pick another alias")
    return alias


Alias = Annotated[str, AfterValidator(check_alias)]


class ModelRef(View):
    """A version by name and number (what a run or a job registered)."""

    name: str
    version: int


class Artifact(View):
    """One exported format of a version: where it is, its digest, and how well it matched."""

    format: str
    file: str = Field(description="the file (or folder, for SavedModel) name")
    uri: str = Field(description="where the artifact is stored (a path or fsspec URL)")
    sha256: str
    size: int
    max_abs_diff: float | None = Field(
        None, description="largest |reloaded - original| output difference on the check input"
    )
    tolerance: float | None = None
    details: dict[str, Any] = Field(
        {}, description="format-specific results, e.g. onnx-int8's accuracy change"
    )


class Evaluation(View):
    """Metrics measured on a version, by an evaluation notebook or ``log_evaluation``."""

    id: int
    time: float
    dataset: str = ""
    job_id: str | None = None
    metrics: dict[str, float] = {}


class GitState(View):
    commit: str
    dirty: bool
    branch: str | None = None


class ModelVersion(View):
    """One registered version with its lineage, artifacts and evaluations."""

    name: str
    version: int
    framework: str
    created_at: float
    aliases: list[str] = []
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}
    run_id: str | None = None
    job_id: str | None = None
    notebook: str | None = Field(None, description="the notebook that registered it")
    notebook_sha256: str | None = None
    git: GitState | None = None
    versions: dict[str, str] = Field({}, description="Python, framework and library versions")
    artifacts: list[Artifact] = []
    failed_formats: dict[str, str] = Field(
        {}, description="formats asked for that were not registered, and why"
    )
    evaluations: list[Evaluation] = []


class ModelSummary(View):
    """A model name in listings: its newest version and where its aliases point."""

    name: str
    framework: str
    versions: int
    latest_version: int
    updated_at: float
    aliases: dict[str, int] = {}
    metrics: dict[str, float] = Field({}, description="the newest version's metrics")


class ModelList(View):
    models: list[ModelSummary]


class Model(View):
    """A model name with all its versions, newest first."""

    name: str
    aliases: dict[str, int] = {}
    versions: list[ModelVersion]


class VersionPatch(Request):
    """``PATCH /models/{name}/versions/{v}``: the aliases that point at this version after the
    call (an alias held by another version moves here, atomically), and tags to set (a
    ``null`` value removes the tag)."""

    aliases: list[Alias] | None = Field(None, max_length=64)
    tags: dict[str, str | None] | None = None


class CompareQuery(Request):
    """``GET /models/{name}/compare``: the versions side by side, best first by ``metric``."""

    metric: str | None = Field(None, max_length=200)


class Comparison(View):
    name: str
    metric: str | None = None
    columns: list[str]
    rows: list[dict[str, Any]]
