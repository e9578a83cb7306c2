"""The model registry: register (export, verify, publish, record), resolve a version
reference, load, alias, tag, evaluate, compare and delete.

One :class:`ModelRegistry` works on one store and one artifact directory; ``ll.models.*``
uses the configured ones, the server's service facade its own.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lepton_lab.contract import NotFound, RequestError
from lepton_lab.contract.models import check_alias, check_name
from lepton_lab.metering.ledger import mark_deleted, model_subject, record_storage
from lepton_lab.models import artifacts as store_files
from lepton_lab.models import mirror
from lepton_lab.models.artifacts import CorruptArtifact
from lepton_lab.models.export import export_all
from lepton_lab.models.formats import (
    LOAD_ORDER,
    default_formats,
    format_for,
    framework_of,
)
from lepton_lab.models.lineage import current_job, gather
from lepton_lab.store import Store, UnknownModelVersion, open_store

log = logging.getLogger("lepton_lab.models")

#: the largest version number (the column is a 32-bit INTEGER on PostgreSQL)
_MAX_VERSION = 2**31 - 1
#: metric names where lower is better, for ``best:<metric>`` (else higher is better)
_LOWER_IS_BETTER = re.compile(r"loss|error|mse|mae|rmse|latency|seconds|time", re.IGNORECASE)


class ModelExportError(RequestError):
    """No format of a registration could be exported and verified: nothing was recorded."""


def lower_is_better(metric: str) -> bool:
    return bool(_LOWER_IS_BETTER.search(metric))


def split_ref(ref: str) -> tuple[str, str | int]:
    """``"name@production"`` -> ("name", "@production"); ``"name@3"`` -> ("name", 3);
    ``"name"`` -> ("name", "latest")."""
    name, sep, version = ref.partition("@")
    if not sep:
        return name, "latest"
    if version.isascii() and version.isdigit():  # not "²" or "٣", which isdigit() takes
        return name, int(version) if len(version) <= 18 else version
    if version == "latest" or version.startswith("best:"):
        return name, version
    return name, f"@{version}"


def _example_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(np.float32)  # what the frameworks train in
    if array.ndim == 0:
        raise RequestError("example_input must be a batch (an array with a batch dimension)")
    return array


class ModelRegistry:
    """Versions in ``store``, files under ``artifact_dir`` (a path or fsspec URL)."""

    def __init__(self, store: Store | None = None, artifact_dir: str | None = None) -> None:
        self.store = store or open_store()
        self._artifact_dir = artifact_dir

    @property
    def models_root(self) -> str:
        return store_files.models_root(store_files.artifact_root(self._artifact_dir))

    # -- register --------------------------------------------------------------------------
    def register(
        self,
        model_or_run: Any,
        name: str,
        formats: Iterable[str] | None = None,
        example_input: Any = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        eval_data: tuple[Any, Any] | None = None,
        tolerance: dict[str, float] | None = None,
        aliases: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Export, verify and record a new version; returns its record."""
        name = check_name(name)
        aliases = [check_alias(a) for a in aliases]
        model, run = self._unwrap(model_or_run)
        framework = framework_of(model)
        self._check_same_framework(name, framework)
        if isinstance(formats, str):
            formats = [formats]
        if formats is None:
            chosen = default_formats(model, framework)
        else:  # an empty list is refused below, not read as "the defaults"
            chosen = list(dict.fromkeys(formats))
        if not chosen:
            raise RequestError("formats is empty: name at least one format")
        for fmt in chosen:  # every format is known and fits before anything is exported
            format_for(fmt, framework).check(model, framework)
        tolerance = _check_tolerance(tolerance or {}, chosen)
        clean_metrics = _check_metrics(metrics or {})
        clean_tags = _check_tags(tags or {})
        example = self._example(model, framework, example_input, run)
        evaluation = _eval_arrays(eval_data if eval_data is not None else _run_eval(run))

        staging = Path(tempfile.mkdtemp(prefix="lepton-model-"))
        try:
            exported = export_all(model, framework, chosen, example, staging, evaluation, tolerance)
            if not exported.artifacts:
                reasons = "; ".join(f"{k}: {v}" for k, v in exported.failures.items())
                raise ModelExportError(f"no format of {name!r} could be registered: {reasons}")
            fields = gather(self.store, run)
            fields["params"].update(params or {})
            fields["metrics"].update(clean_metrics)
            fields.update(
                framework=framework,
                tags=clean_tags,
                failed_formats=exported.failures,
                created_at=time.time(),
            )
            token = uuid.uuid4().hex[:12]
            fields["location"] = location = f"{self.models_root}/{name}/{token}"
            rows = [dict(a, uri=f"{location}/{a['file']}") for a in exported.artifacts]
            store_files.publish(staging, location)
            record = None
            try:
                record = self.store.add_model_version(name, fields, rows)
                for alias in aliases:
                    self.store.add_model_alias(name, record["version"], alias)
            except BaseException:
                try:  # no rows without files: the version goes before its folder does
                    if record is not None:
                        self.store.delete_model_version(name, record["version"])
                except Exception as exc:  # noqa: BLE001 - its rows stay, so its files stay
                    log.warning("%s v%s stays registered: %s", name, record["version"], exc)
                else:
                    store_files.remove(location)  # no files without rows
                raise
            record = self._mirror(record, exported.paths)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        record_storage(
            self.store,
            model_subject(name, record["version"]),
            location,
            notebook=record.get("notebook"),
            tags=[f"model:{name}"],
            created_at=record.get("created_at"),
        )
        for fmt, reason in exported.failures.items():
            warnings.warn(
                f"{name} v{record['version']}: format {fmt!r} was not registered: {reason}",
                stacklevel=3,
            )
        return self.version(name, record["version"])

    def _check_same_framework(self, name: str, framework: str) -> None:
        """One name, one framework: a Keras version under a torch name (a typo, usually)
        would make ``load(name)`` return another kind of object."""
        try:
            latest = self.store.model_version(name, self.store.latest_model_version(name))
        except UnknownModelVersion:
            return
        if latest["framework"] != framework:
            raise RequestError(
                f"model {name!r} holds {latest['framework']} versions; register this "
                f"{framework} model under another name"
            )

    def _unwrap(self, model_or_run: Any) -> tuple[Any, Any]:
        # a Run by its shape: runs import this module (run.register), not the other way
        if all(hasattr(model_or_run, a) for a in ("id", "status", "record", "model", "wait")):
            run = model_or_run
            if run.status != "completed":
                raise RequestError(f"run {run.id} is {run.status}; register a completed run")
            if run.model is None:
                raise RequestError(
                    f"run {run.id} has no model in this process: register it from the kernel "
                    "that ran it, or pass the model"
                )
            return run.model, run
        return model_or_run, None

    def _example(self, model: Any, framework: str, example: Any, run: Any) -> np.ndarray:
        if example is None and run is not None:
            example = getattr(run, "sample_input", None)
        if example is not None:
            return _example_array(example)
        if framework == "keras":
            inputs = getattr(model, "inputs", None)
            if inputs:
                shape = tuple(8 if d is None else int(d) for d in inputs[0].shape)
                return np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        raise RequestError(
            f"example_input is needed to export a {framework} model whose input shape is not "
            "known: pass a batch of its input (a few rows of the training data)"
        )

    def _mirror(self, record: dict[str, Any], paths: dict[str, Path]) -> dict[str, Any]:
        uri = mirror.tracking_uri()
        if not uri:
            return record
        try:
            kept = {a["format"] for a in record["artifacts"]}
            number = mirror.mirror_version(
                uri, record, {f: p for f, p in paths.items() if f in kept}
            )
        except Exception as exc:  # noqa: BLE001 - the version is registered here either way
            warnings.warn(
                f"{record['name']} v{record['version']} was registered, but not mirrored to "
                f"MLflow: {exc}",
                stacklevel=4,
            )
            return record
        self.store.set_model_mlflow_version(record["name"], record["version"], str(number))
        record["mlflow_version"] = str(number)
        return record

    # -- look up ---------------------------------------------------------------------------
    def resolve(self, name: str, version: str | int = "latest") -> int:
        """The number that ``version`` ("latest", N, "@alias", "best:<metric>") names."""
        name = check_name(name)
        try:
            if isinstance(version, bool):
                raise RequestError(f"invalid version {version!r}")
            number: int | None = None
            if isinstance(version, int):
                number = version
            elif isinstance(version, str) and version.isascii() and version.isdigit():
                digits = version.lstrip("0") or "0"  # (not "²" or "٣": isdigit() takes them)
                number = int(digits) if len(digits) <= 10 else _MAX_VERSION + 1
            if number is not None:
                if number < 1:
                    raise RequestError(f"versions count from 1, got {number}")
                if number > _MAX_VERSION:  # past the column's range: no query to overflow
                    self.store.latest_model_version(name)  # an unknown name says so first
                    raise UnknownModelVersion(f"model {name!r} has no version {version}")
                self.store.model_version(name, number)
                return number
            if not isinstance(version, str):
                raise RequestError(f"invalid version {version!r}")
            if version == "latest":
                return self.store.latest_model_version(name)
            if version.startswith("@"):
                return self.store.model_alias(name, check_alias(version[1:]))
            if version.startswith("best:"):
                return self._best(name, version[5:])
        except UnknownModelVersion as exc:
            raise NotFound(str(exc)) from None
        raise RequestError(
            f"invalid version {version!r}: use a number, 'latest', '@alias' or 'best:<metric>'"
        )

    def _best(self, name: str, spec: str) -> int:
        direction, _, metric = spec.rpartition(":")
        if direction not in ("", "min", "max") or not metric:
            raise RequestError(f"invalid 'best:{spec}': use best:<metric> or best:min:<metric>")
        lower = direction == "min" or (not direction and lower_is_better(metric))
        scored = [
            (v["version"], merged_metrics(v).get(metric)) for v in self.store.model_versions(name)
        ]
        if not scored:
            raise UnknownModelVersion(f"no model named {name!r}")
        scored = [(v, m) for v, m in scored if m is not None and math.isfinite(m)]
        if not scored:
            raise UnknownModelVersion(f"no version of {name!r} has the metric {metric!r}")
        if lower:  # ties go to the newest version
            return min(scored, key=lambda vm: (vm[1], -vm[0]))[0]
        return max(scored, key=lambda vm: (vm[1], vm[0]))[0]

    def version(self, name: str, version: str | int = "latest") -> dict[str, Any]:
        number = self.resolve(name, version)
        try:
            return self.store.model_version(name, number)
        except UnknownModelVersion as exc:  # deleted meanwhile
            raise NotFound(str(exc)) from None

    def versions(self, name: str) -> list[dict[str, Any]]:
        found = self.store.model_versions(check_name(name))
        if not found:
            raise NotFound(f"no model named {name!r}")
        return found

    def list(self) -> list[dict[str, Any]]:
        return self.store.model_summaries()

    def artifact(self, name: str, version: str | int, format: str) -> tuple[dict, Path]:
        """The artifact row and a local, digest-checked path to it."""
        record = self.version(name, version)
        found = {a["format"]: a for a in record["artifacts"]}
        if format not in found:
            raise NotFound(
                f"{name} v{record['version']} has no {format!r} artifact "
                f"(it has {', '.join(found) or 'none'})"
            )
        row = found[format]
        return row, store_files.fetch(row["uri"], row["sha256"], row["file"])

    def _pick(self, record: dict[str, Any], format: str | None, runs: bool = False) -> str:
        """The format to load: the one asked for (known and fitting), else the first of the
        framework's load order that the version has (``runs``: one that can run by itself)."""
        have = [a["format"] for a in record["artifacts"]]
        if format is None:
            order = [f for f in LOAD_ORDER.get(record["framework"], ()) if f in have]
            if runs:
                order = [f for f in order if f != "safetensors"]
            order += [f for f in have if f not in order and not (runs and f == "safetensors")]
            if not order:
                raise NotFound(f"{record['name']} v{record['version']} has no runnable artifact")
            return order[0]
        format_for(format, record["framework"])  # raises: unknown, or does not fit
        return format

    def load(
        self, name: str, version: str | int = "latest", format: str | None = None, **options: Any
    ) -> Any:
        """The version as a ready object: a Keras model, a torch ExportedProgram or module,
        an onnxruntime InferenceSession... (see ``formats.py``)."""
        record = self.version(name, version)
        format = self._pick(record, format)
        _, path = self.artifact(name, record["version"], format)
        return format_for(format, record["framework"]).load(path, **options)

    def predictor(
        self, name: str, version: str | int = "latest", format: str | None = None
    ) -> Callable[[Any], np.ndarray]:
        """A function from a batch of inputs to the version's outputs (numpy), whatever the
        format: what evaluation notebooks and benchmarks call."""
        record = self.version(name, version)
        format = self._pick(record, format, runs=True)
        if format == "safetensors":
            raise RequestError(
                "safetensors holds weights only; predict with torch.export, torchscript or onnx"
            )
        fmt = format_for(format, record["framework"])
        _, path = self.artifact(name, record["version"], format)
        loaded = fmt.load(path)

        def predict(x: Any) -> np.ndarray:
            return fmt.predict(loaded, _example_array(x))

        predict.format = format  # type: ignore[attr-defined]
        return predict

    # -- change ----------------------------------------------------------------------------
    def set_aliases(self, name: str, version: str | int, aliases: Iterable[str]) -> dict:
        number = self.resolve(name, version)
        wanted = [check_alias(a) for a in aliases]
        before = self.store.model_aliases(name)
        self.store.set_model_aliases(name, number, wanted)
        self._mirror_aliases(name, before)
        return self.version(name, number)

    def add_alias(self, name: str, version: str | int, alias: str) -> dict:
        number = self.resolve(name, version)
        alias = check_alias(alias)
        before = self.store.model_aliases(name)
        self.store.add_model_alias(name, number, alias)
        self._mirror_aliases(name, before)
        return self.version(name, number)

    def remove_alias(self, name: str, alias: str) -> None:
        name, alias = check_name(name), check_alias(alias)
        before = self.store.model_aliases(name)
        if not self.store.remove_model_alias(name, alias):
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        self._mirror_aliases(name, before)

    def _mirror_aliases(self, name: str, before: dict[str, int]) -> None:
        """Make MLflow's aliases of ``name`` follow what changed here; each alias on its own,
        so one that MLflow refuses (``v2``) does not keep the others behind."""
        uri = mirror.tracking_uri()
        if not uri:
            return
        after = self.store.model_aliases(name)
        for alias in sorted(set(before) | set(after)):
            if before.get(alias) == after.get(alias):
                continue
            try:
                number = None
                if alias in after:
                    number = self.store.model_version(name, after[alias]).get("mlflow_version")
                if number:
                    mirror.mirror_alias(uri, name, alias, number)
                else:  # gone here, or now on a version MLflow does not have
                    mirror.mirror_alias_delete(uri, name, alias)
            except Exception as exc:  # noqa: BLE001 - the lab's registry is the record
                warnings.warn(
                    f"alias {alias!r} of {name} was not mirrored to MLflow: {exc}", stacklevel=3
                )

    def set_tags(self, name: str, version: str | int, tags: dict[str, str | None]) -> dict:
        number = self.resolve(name, version)
        self.store.update_model_tags(name, number, _check_tags(tags, allow_none=True))
        return self.version(name, number)

    def log_evaluation(
        self, name: str, version: str | int, dataset: str = "", **metrics: float
    ) -> dict[str, Any]:
        """Record evaluation metrics on the version (and, inside a job, on the job too)."""
        number = self.resolve(name, version)
        clean = _check_metrics(metrics)
        if not clean:
            raise RequestError("log_evaluation needs at least one metric, e.g. accuracy=0.93")
        job = current_job(self.store)
        evaluation = self.store.add_model_evaluation(
            name, number, clean, dataset=str(dataset), job_id=job["id"] if job else None
        )
        if job is not None:
            from lepton_lab.jobs.metrics import log_metrics

            log_metrics(**clean)
        return evaluation

    def delete(self, name: str, version: str | int) -> None:
        """Remove a version's files and rows together: the folder is set aside first and put
        back if the rows cannot be deleted; what a failure or a crash leaves aside is swept by
        the next deletion of the same name."""
        record = self.version(name, version)
        store_files.sweep(self.models_root, name, self.store.model_locations(name))
        location = record["location"]
        aside = store_files.set_aside(location)
        try:
            self.store.delete_model_version(name, record["version"])
        except BaseException:
            store_files.put_back(aside, location)
            raise
        mark_deleted(self.store, model_subject(name, record["version"]))
        try:
            store_files.remove(aside)
        except OSError as exc:
            log.warning("could not remove %s yet (%s); the next delete sweeps it", aside, exc)
        uri = mirror.tracking_uri()
        if uri and record.get("mlflow_version"):
            try:
                mirror.mirror_delete(uri, name, record["mlflow_version"])
            except Exception as exc:  # noqa: BLE001
                warnings.warn(f"{name} v{record['version']} stays in MLflow: {exc}", stacklevel=3)

    # -- compare ---------------------------------------------------------------------------
    def compare(self, name: str, metric: str | None = None) -> dict[str, Any]:
        """The versions side by side: one row each with its metrics (evaluations included),
        best first by ``metric`` when given, else newest first."""
        versions = self.versions(name)
        names: list[str] = []
        rows = []
        for v in versions:
            values = merged_metrics(v)
            for key in values:
                if key not in names:
                    names.append(key)
            rows.append(
                {
                    "version": v["version"],
                    "aliases": ",".join(v["aliases"]),
                    "created_at": v["created_at"],
                    "formats": ",".join(a["format"] for a in v["artifacts"]),
                    "evaluated_on": ",".join(
                        dict.fromkeys(e["dataset"] for e in v["evaluations"] if e["dataset"])
                    ),
                    **values,
                }
            )
        if metric:
            if metric not in names:
                raise RequestError(
                    f"no version of {name!r} has the metric {metric!r} "
                    f"(metrics: {', '.join(names) or 'none'})"
                )
            lower = lower_is_better(metric)
            present = [r for r in rows if r.get(metric) is not None]
            absent = [r for r in rows if r.get(metric) is None]
            present.sort(key=lambda r: r[metric], reverse=not lower)
            rows = present + absent
            names.remove(metric)
            names.insert(0, metric)
        columns = ["version", "aliases", *names, "formats", "evaluated_on", "created_at"]
        return {"name": name, "metric": metric, "columns": columns, "rows": rows}


def merged_metrics(version: dict[str, Any]) -> dict[str, float]:
    """A version's metrics with its evaluations' on top (the newest evaluation wins)."""
    values = dict(version.get("metrics") or {})
    for evaluation in version.get("evaluations") or []:
        values.update(evaluation.get("metrics") or {})
    return values


def _check_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    clean = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            raise RequestError(f"metric {key!r} must be a number, got a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RequestError(
                f"metric {key!r} must be a number, got {type(value).__name__}"
            ) from None
        if not math.isfinite(number):
            raise RequestError(f"metric {key!r} must be finite, got {number}")
        clean[str(key)] = number
    return clean


def _check_tolerance(tolerance: dict[str, Any], chosen: list[str]) -> dict[str, float]:
    """Per-format bounds on max |diff|: only for formats being exported, finite, >= 0."""
    if not isinstance(tolerance, dict):
        raise RequestError("tolerance must be a dict of format: largest allowed difference")
    extra = sorted(set(tolerance) - set(chosen))
    if extra:
        raise RequestError(
            f"tolerance names {', '.join(map(repr, extra))}, which is not being exported "
            f"(formats: {', '.join(chosen)})"
        )
    clean = {}
    for fmt, bound in tolerance.items():
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not bound >= 0:
            raise RequestError(f"tolerance for {fmt!r} must be a number >= 0, got {bound!r}")
        if not math.isfinite(bound):
            raise RequestError(f"tolerance for {fmt!r} must be finite")
        clean[fmt] = float(bound)
    return clean


def _check_tags(tags: dict[str, Any], allow_none: bool = False) -> dict[str, Any]:
    if not isinstance(tags, dict):
        raise RequestError("tags must be a dict of name: text")
    clean: dict[str, Any] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 200:
            raise RequestError(
                f"tag names are non-empty strings of at most 200 characters: {key!r}"
            )
        if value is None and allow_none:
            clean[key] = None
        elif not isinstance(value, str):
            raise RequestError(f"tag {key!r} must be a string, got {type(value).__name__}")
        elif len(value) > 5000:
            raise RequestError(f"tag {key!r} is longer than 5000 characters")
        else:
            clean[key] = value
    return clean


def _run_eval(run: Any) -> Any:
    return getattr(run, "eval_data", None) if run is not None else None


def _eval_arrays(data: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if data is None:
        return None
    try:
        x, y = data
    except (TypeError, ValueError):
        raise RequestError("eval_data must be a pair (inputs, labels)") from None
    x, y = _example_array(x), np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if len(x) != len(y):
        raise RequestError(f"eval_data has {len(x)} inputs but {len(y)} labels")
    return x, y


__all__ = ["CorruptArtifact", "ModelExportError", "ModelRegistry", "split_ref"]
