"""The ``ll.models`` functions, on the configured store and artifact directory."""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable
from typing import Any

from pydantic import PrivateAttr

from lepton_lab.contract import models as contract
from lepton_lab.models.registry import ModelRegistry, split_ref

_registry: ModelRegistry | None = None


def registry() -> ModelRegistry:
    """The registry of this process: the configured store and artifact directory."""
    global _registry
    if _registry is None:
        _registry = ModelRegistry()
    return _registry


class ModelVersion(contract.ModelVersion):
    """A registered version: its lineage and artifacts as attributes, ``load()`` to get the
    model back. Displays as a summary table in a notebook."""

    _registry: ModelRegistry | None = PrivateAttr(None)

    @classmethod
    def of(cls, record: dict[str, Any], reg: ModelRegistry) -> ModelVersion:
        version = cls.model_validate(record)
        version._registry = reg
        return version

    @property
    def formats(self) -> list[str]:
        return [a.format for a in self.artifacts]

    def artifact(self, format: str) -> contract.Artifact:
        for a in self.artifacts:
            if a.format == format:
                return a
        raise KeyError(f"{self.name} v{self.version} has no {format!r} artifact")

    def load(self, format: str | None = None, **options: Any) -> Any:
        return (self._registry or registry()).load(self.name, self.version, format, **options)

    def predictor(self, format: str | None = None) -> Any:
        """A function from a batch of inputs to outputs (numpy), for any runnable format."""
        return (self._registry or registry()).predictor(self.name, self.version, format)

    def __repr__(self) -> str:
        aliases = f" @{', @'.join(self.aliases)}" if self.aliases else ""
        return f"<ModelVersion {self.name} v{self.version}{aliases} [{', '.join(self.formats)}]>"

    def _repr_html_(self) -> str:
        rows = [
            (
                a.format,
                f"{a.size:,} B",
                a.sha256[:12],
                "-" if a.max_abs_diff is None else f"{a.max_abs_diff:.2e}",
                "-" if a.tolerance is None else f"{a.tolerance:.1e}",
            )
            for a in self.artifacts
        ]
        table = Table(["format", "size", "sha256", "max |diff|", "tolerance"], rows)._repr_html_()
        lineage = ", ".join(
            f"{k} {html.escape(str(v))}"
            for k, v in (("run", self.run_id), ("job", self.job_id), ("notebook", self.notebook))
            if v
        )
        failed = "".join(
            f"<li>{html.escape(f)}: {html.escape(r)}</li>" for f, r in self.failed_formats.items()
        )
        return (
            f"<b>{html.escape(self.name)} v{self.version}</b> ({self.framework})"
            + (
                f" &middot; {html.escape(', '.join('@' + a for a in self.aliases))}"
                if self.aliases
                else ""
            )
            + (f"<br>{lineage}" if lineage else "")
            + table
            + (f"<p>not registered:</p><ul>{failed}</ul>" if failed else "")
        )


class Table:
    """Rows under column names: an HTML table in a notebook, aligned text in a terminal."""

    def __init__(self, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]

    @staticmethod
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if value > 1e9:  # a time stamp
                return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
            return f"{value:.4g}"
        return str(value)

    def __str__(self) -> str:
        cells = [self.columns, *[[self.cell(v) for v in row] for row in self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self.cell(v))}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def register(
    model_or_run: Any,
    name: str,
    formats: Iterable[str] | None = None,
    example_input: Any = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    **options: Any,
) -> ModelVersion:
    """Export ``model_or_run`` (a Keras model, a torch module, a completed Run) to each of
    ``formats`` (default: the framework's usual set), verify each, record a new version.

    Options: ``params=``, ``eval_data=(x, y)`` (int8's accuracy change is measured on it),
    ``tolerance={format: max abs diff}``, ``aliases=[...]``.
    """
    reg = registry()
    record = reg.register(
        model_or_run,
        name,
        formats=formats,
        example_input=example_input,
        metrics=metrics,
        tags=tags,
        **options,
    )
    return ModelVersion.of(record, reg)


def _ref(name: str, version: str | int | None) -> tuple[str, str | int]:
    if version is None and isinstance(name, str) and "@" in name:
        return split_ref(name)
    return name, "latest" if version is None else version


def load(
    name: str, version: str | int | None = None, format: str | None = None, **options: Any
) -> Any:
    """The version as a ready object (``name@alias`` works too)."""
    name, version = _ref(name, version)
    return registry().load(name, version, format, **options)


def get(name: str, version: str | int | None = None) -> ModelVersion | list[ModelVersion]:
    """``get(name)``: every version, newest first; ``get(name, v)`` or ``get("name@v")``: one."""
    reg = registry()
    if version is None and not (isinstance(name, str) and "@" in name):
        return [ModelVersion.of(r, reg) for r in reg.versions(name)]
    name, version = _ref(name, version)
    return ModelVersion.of(reg.version(name, version), reg)


def list_models() -> Table:
    """One row per model name: newest version, aliases, metrics."""
    rows = []
    for m in registry().list():
        aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(m["aliases"].items()))
        metrics = ", ".join(f"{k}={Table.cell(v)}" for k, v in m["metrics"].items())
        rows.append(
            [m["name"], m["framework"], m["latest_version"], m["versions"], aliases, metrics]
        )
    return Table(["name", "framework", "latest", "versions", "aliases", "metrics"], rows)


def delete(name: str, version: str | int) -> None:
    registry().delete(name, version)


def set_alias(name: str, version: str | int, alias: str) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (moving it from the version it pointed at)."""
    reg = registry()
    return ModelVersion.of(reg.add_alias(name, version, alias), reg)


add_alias = set_alias


def remove_alias(name: str, alias: str) -> None:
    registry().remove_alias(name, alias)


def set_tags(name: str, version: str | int, **tags: str | None) -> ModelVersion:
    reg = registry()
    return ModelVersion.of(reg.set_tags(name, version, tags), reg)


def log_evaluation(name: str, version: str | int, dataset: str = "", **metrics: float) -> dict:
    """Record metrics measured on a version (inside a job: on the job too)."""
    return registry().log_evaluation(name, version, dataset=dataset, **metrics)


def compare(name: str, metric: str | None = None) -> Table:
    """The versions of ``name`` side by side, best first by ``metric``."""
    result = registry().compare(name, metric)
    columns = result["columns"]
    return Table(columns, [[row.get(c) for c in columns] for row in result["rows"]])
