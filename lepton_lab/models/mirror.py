"""The MLflow mirror of the model registry.

When ``c.LeptonLab.mlflow_tracking_uri`` (exported to kernels as ``LEPTON_LAB_MLFLOW_TRACKING_URI``)
is set and MLflow is installed (the ``[mlflow]`` extra), each registered version is also created
in MLflow's model registry: one MLflow run per version (in the experiment ``lepton-lab-models``)
holds the version's params, metrics, lineage tags and artifacts (under ``model/<format>/``), and a
model version of the same name points at that run's ``model`` folder.

Only MLflow's public client API is used (:class:`mlflow.MlflowClient`), so any tracking URI it
accepts works: a SQLite or other SQL database, or an MLflow tracking server. MLflow numbers its
versions itself; the Lepton number is the model version's ``lepton_lab.version`` tag, and
:func:`find_version` maps one to the other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import os
import pathlib
import posixpath
import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("lepton_lab.models")

ENV_MLFLOW_TRACKING_URI = "LEPTON_LAB_MLFLOW_TRACKING_URI"
#: The MLflow experiment that holds one run per mirrored version.
EXPERIMENT_NAME = "lepton-lab-models"
#: Prefix of every tag the mirror writes (MLflow keeps ``mlflow.`` for itself).
TAG_PREFIX = "lepton_lab."
#: Where a version's artifacts go in its run: ``model/<format>/<file or folder>``.
MODEL_PATH = "model"
INSTALL_HINT = "pip install 'lepton-lab[mlflow]'"

# MLflow's limits (mlflow.utils.validation), kept here because that module is not public API.
_MAX_KEY = 250
_MAX_PARAM_VALUE = 6000
_MAX_RUN_TAG_VALUE = 8000
_MAX_VERSION_TAG_VALUE = 100_000
_MAX_PARAMS_TAGS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_INVALID_KEY_CHARS = re.compile(r"[^\w.\- :]")
_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MLFLOW_ALIAS = re.compile(r"[\w-]{1,255}")
_MLFLOW_VERSION_LIKE_ALIAS = re.compile(r"[vV]\d+")


def tracking_uri() -> str | None:
    """The MLflow tracking URI the server exports to kernels, or ``None`` when the mirror is off."""
    value = os.environ.get(ENV_MLFLOW_TRACKING_URI, "").strip()
    return value or None


def redact_uri(uri: str) -> str:
    """``uri`` without the user name and password a URL may carry, for logs and messages."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def mirror_version(
    uri: str,
    version: dict[str, Any],
    artifacts: dict[str, pathlib.Path],
    *,
    experiment_name: str = EXPERIMENT_NAME,
    artifact_location: str | None = None,
) -> str:
    """Create ``version`` (a dict shaped like ``contract.models.ModelVersion``) in the MLflow
    registry at ``uri``, uploading ``artifacts`` (format -> local file or folder), and return
    MLflow's version number.

    Mirroring the same registration again (same name, version and ``created_at``; a retry)
    returns the MLflow version made the first time. Aliases MLflow refuses (``v2``) are skipped
    with a warning; a failure after the run was created marks that run ``FAILED`` and raises.
    ``artifact_location`` is used only when the experiment is created; for a SQLite store it
    defaults to ``mlartifacts/`` next to the database file (MLflow's own default is relative to
    the current directory, which differs between kernels).
    """
    name = str(version["name"])
    number = int(version["version"])
    files = _checked_artifacts(artifacts)
    with _quiet_mlflow():
        client = _client(uri)
        existing = _find(client, name, number, created_at=_text_or_none(version.get("created_at")))
        if existing is not None:
            log.info("%s v%d is already in MLflow as version %s", name, number, existing)
            return existing
        experiment_id = _experiment(
            client, experiment_name, artifact_location or _default_artifact_location(uri)
        )
        lineage = _lineage_tags(version)
        run = client.create_run(
            experiment_id,
            run_name=f"{name} v{number}",
            tags=_fit(lineage | _run_source_tags(version), _MAX_RUN_TAG_VALUE),
        )
        run_id = run.info.run_id
        try:
            _log_values(client, run_id, version)
            for fmt, path in files.items():
                target = f"{MODEL_PATH}/{fmt}"
                if path.is_dir():
                    client.log_artifacts(run_id, str(path), f"{target}/{path.name}")
                else:
                    client.log_artifact(run_id, str(path), target)
            _ensure_registered_model(client, name)
            model_version = client.create_model_version(
                name,
                source=f"{run.info.artifact_uri.rstrip('/')}/{MODEL_PATH}",
                run_id=run_id,
                tags=_fit(lineage | _user_tags(version), _MAX_VERSION_TAG_VALUE),
                description=_description(version),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        mlflow_version = str(model_version.version)
        for alias in version.get("aliases") or []:
            try:
                _set_alias(client, name, alias, mlflow_version)
            except ValueError as error:
                log.warning("MLflow mirror of %s: alias not mirrored: %s", name, error)
    log.info(
        "mirrored %s v%d to MLflow (%s) as version %s",
        name,
        number,
        redact_uri(uri),
        mlflow_version,
    )
    return mlflow_version


def find_version(uri: str, name: str, version: int) -> str | None:
    """MLflow's number for Lepton version ``version`` of ``name``, or ``None`` if not mirrored
    (the newest, if the name was deleted and registered again while the mirror was off)."""
    with _quiet_mlflow():
        client = _client(uri)
        return _find(client, name, int(version))


def mirror_alias(uri: str, name: str, alias: str, mlflow_version: str) -> None:
    """Point MLflow alias ``alias`` of ``name`` at ``mlflow_version`` (moving it if it is set).

    Raises :class:`ValueError` for an alias MLflow refuses (MLflow keeps ``v<digits>`` and
    ``latest`` for itself)."""
    with _quiet_mlflow():
        client = _client(uri)
        _set_alias(client, name, alias, str(mlflow_version))


def mirror_alias_delete(uri: str, name: str, alias: str) -> None:
    """Remove MLflow alias ``alias`` of ``name``; nothing happens if it is not set."""
    with _quiet_mlflow():
        client = _client(uri)
        from mlflow.exceptions import MlflowException

        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException as error:
            if not _missing(error):
                raise


def mirror_delete(uri: str, name: str, mlflow_version: str) -> None:
    """Delete MLflow version ``mlflow_version`` of ``name`` and mark the run that holds its
    artifacts deleted (MLflow's garbage collection removes them). Nothing happens if the
    version is already gone."""
    with _quiet_mlflow():
        client = _client(uri)
        from mlflow.exceptions import MlflowException

        try:
            model_version = client.get_model_version(name, str(mlflow_version))
        except MlflowException as error:
            if _missing(error):
                return
            raise
        client.delete_model_version(name, str(mlflow_version))
        if model_version.run_id:
            try:
                client.delete_run(model_version.run_id)
            except MlflowException as error:
                if not _missing(error):
                    raise


# --- MLflow access ---------------------------------------------------------------------------


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as error:
        raise ImportError(
            f"the MLflow mirror of the model registry needs MLflow: {INSTALL_HINT}"
        ) from error
    return mlflow


def _client(uri: str) -> Any:
    """A client for ``uri``; creating it creates a SQL store's tables, so call it quietly."""
    return _mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: dict[str, int] = {}


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow (and alembic, when it creates a SQL store) log INFO lines such as "Creating initial
    MLflow database tables..."; keep them out of the lab's logs while the mirror runs."""
    global _quiet_depth
    _mlflow()  # importing MLflow sets its loggers' levels: before they are saved here
    with _quiet_lock:
        if _quiet_depth == 0:
            for name in ("mlflow", "alembic"):
                logger = logging.getLogger(name)
                _quiet_saved[name] = logger.level
                if logger.getEffectiveLevel() < logging.WARNING:
                    logger.setLevel(logging.WARNING)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for name, level in _quiet_saved.items():
                    logging.getLogger(name).setLevel(level)
                _quiet_saved.clear()


def _missing(error: Any) -> bool:
    return getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _find(client: Any, name: str, version: int, created_at: str | None = None) -> str | None:
    """The newest MLflow version mirrored from Lepton version ``version`` of ``name`` (and,
    given ``created_at``, from that very registration, not an earlier one of the same number)."""
    from mlflow.exceptions import MlflowException

    query = f"name = '{_quote(name)}' and tags.`{TAG_PREFIX}version` = '{version}'"
    try:
        found = client.search_model_versions(query)
    except MlflowException as error:
        if _missing(error):
            return None
        raise
    mlflow_versions = sorted(
        int(model_version.version)
        for model_version in found
        if created_at is None or model_version.tags.get(f"{TAG_PREFIX}created_at") == created_at
    )
    return str(mlflow_versions[-1]) if mlflow_versions else None


def _experiment(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:
            # Another registration created it first.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _set_alias(client: Any, name: str, alias: str, mlflow_version: str) -> None:
    if not _MLFLOW_ALIAS.fullmatch(alias) or alias.lower() == "latest":
        raise ValueError(f"MLflow does not accept the alias {alias!r}")
    if _MLFLOW_VERSION_LIKE_ALIAS.fullmatch(alias):
        raise ValueError(f"MLflow keeps version-like aliases such as {alias!r} for itself")
    client.set_registered_model_alias(name, alias, mlflow_version)


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return
    except MlflowException as error:
        if not _missing(error):
            raise
    try:
        client.create_registered_model(name, description="Registered by Lepton Lab")
    except MlflowException as error:
        if getattr(error, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
            raise


def _default_artifact_location(uri: str) -> str | None:
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return (pathlib.Path(database).resolve().parent / "mlartifacts").as_uri()


# --- what is written --------------------------------------------------------------------------


def _checked_artifacts(artifacts: dict[str, pathlib.Path]) -> dict[str, pathlib.Path]:
    checked = {}
    for fmt, path in artifacts.items():
        if not isinstance(fmt, str) or not _FORMAT.fullmatch(fmt):
            raise ValueError(f"invalid artifact format name {fmt!r}")
        path = pathlib.Path(path)
        if not path.exists():
            raise FileNotFoundError(f"the {fmt} artifact {str(path)!r} does not exist")
        checked[fmt] = path
    return checked


def _lineage_tags(version: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, Any] = {
        "name": version["name"],
        "version": int(version["version"]),
        "framework": version.get("framework"),
        "created_at": version.get("created_at"),
        "run_id": version.get("run_id"),
        "job_id": version.get("job_id"),
        "notebook": version.get("notebook"),
        "notebook_sha256": version.get("notebook_sha256"),
    }
    git = version.get("git") or {}
    for key in ("commit", "dirty", "branch"):
        tags[f"git.{key}"] = git.get(key)
    for key, value in (version.get("versions") or {}).items():
        tags[f"versions.{key}"] = value
    for artifact in version.get("artifacts") or []:
        fmt = artifact["format"]
        for key in ("file", "sha256", "size", "max_abs_diff", "tolerance"):
            tags[f"artifact.{fmt}.{key}"] = artifact.get(key)
        if artifact.get("details"):
            tags[f"artifact.{fmt}.details"] = artifact["details"]
    for fmt, reason in (version.get("failed_formats") or {}).items():
        tags[f"failed_format.{fmt}"] = reason
    return {
        _key(TAG_PREFIX + key): _text(value) for key, value in tags.items() if value is not None
    }


def _run_source_tags(version: dict[str, Any]) -> dict[str, str]:
    """The ``mlflow.source.*`` tags MLflow's UI shows for a run."""
    tags = {}
    if version.get("notebook"):
        tags["mlflow.source.name"] = str(version["notebook"])
    git = version.get("git") or {}
    if git.get("commit"):
        tags["mlflow.source.git.commit"] = str(git["commit"])
    if git.get("branch"):
        tags["mlflow.source.git.branch"] = str(git["branch"])
    return tags


def _user_tags(version: dict[str, Any]) -> dict[str, str]:
    """The version's own tags, as they are, except names MLflow or the mirror use themselves."""
    tags = {}
    for key, value in (version.get("tags") or {}).items():
        key = str(key)
        if key.startswith(("mlflow.", TAG_PREFIX)):
            key = f"{TAG_PREFIX}tag.{key}"
        tags[_key(key)] = _text(value)
    return tags


def _description(version: dict[str, Any]) -> str:
    text = f"Lepton Lab {version['name']} v{int(version['version'])}"
    if version.get("framework"):
        text += f" ({version['framework']})"
    if version.get("notebook"):
        text += f", registered by {version['notebook']}"
    return text


def _log_values(client: Any, run_id: str, version: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    params = {
        _key(key): _fit_one(_text(value), _MAX_PARAM_VALUE)
        for key, value in _flatten(version.get("params") or {})
    }
    timestamp = int(float(version.get("created_at") or time.time()) * 1000)
    metrics = {}
    for key, value in (version.get("metrics") or {}).items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        metrics[_key(str(key))] = float(value)
    for batch in _chunks(list(params.items()), _MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=[Param(key, value) for key, value in batch])
    for batch in _chunks(list(metrics.items()), _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=[Metric(key, value, timestamp, 0) for key, value in batch])


def _flatten(params: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts become dotted keys (``optimizer.lr``), the way MLflow's UI compares them."""
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{full}.")
        else:
            yield full, value


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _text(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _key(key: str) -> str:
    """``key`` made acceptable to MLflow: its characters, no path tricks, at most 250 long."""
    key = _INVALID_KEY_CHARS.sub("_", key).strip()
    if not key or key.startswith(".") or posixpath.normpath(key) != key:
        key = f"_{key}"
    return key[:_MAX_KEY]


def _fit(tags: dict[str, str], limit: int) -> dict[str, str]:
    return {key: _fit_one(value, limit) for key, value in tags.items()}


def _fit_one(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
