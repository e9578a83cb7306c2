"""What a job or a schedule asks for, checked before anything is stored.

REST, the CLI and ``ll.jobs`` all validate here, so each says the same thing about the same
mistake. Every problem is a :class:`JobRequestError` carrying the HTTP status REST answers with
(400 for bad input, 404 for a notebook that is not there).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lepton_lab.jobs.executors import EXECUTORS

OUTPUT_FORMATS = ("ipynb", "html")
OVERLAP_POLICIES = ("skip", "queue")
CATCHUP_POLICIES = ("once", "none")
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_RETRIES = 100

JOB_FIELDS = {
    "path",
    "name",
    "parameters",
    "kernel",
    "cwd",
    "timeout",
    "retries",
    "retry_backoff",
    "tags",
    "output_formats",
    "executor",
    "allow_unknown",
}
SCHEDULE_FIELDS = (JOB_FIELDS - {"retry_backoff"}) | {
    "cron",
    "timezone",
    "active",
    "overlap",
    "catchup",
}
SCHEDULE_EDITABLE = SCHEDULE_FIELDS - {"path", "cwd", "allow_unknown"}


class JobRequestError(ValueError):
    """A job or schedule request that cannot be accepted; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class NotebookJob:
    """A validated job request, resolved against the file system."""

    notebook: Path
    cwd: Path
    kernel: str
    parameters: dict[str, Any]
    language: str = "python"
    name: str = ""
    timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    tags: list[str] = field(default_factory=list)
    output_formats: list[str] = field(default_factory=lambda: ["ipynb"])
    executor: str = "local"
    warnings: list[str] = field(default_factory=list)


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def resolve_path(raw: Any, root: Path | None, what: str = "path") -> Path:
    """``raw`` made absolute; with a ``root`` (the server's), it must stay inside it."""
    if not isinstance(raw, str) or not raw.strip():
        raise JobRequestError(f"'{what}' must be a non-empty string, got {_type_name(raw)}")
    if "\x00" in raw:
        raise JobRequestError(f"'{what}' contains a NUL character")
    try:
        if root is None:
            return Path(raw).expanduser().resolve()
        root = root.resolve()
        resolved = (root / raw.lstrip("/") if not os.path.isabs(raw) else Path(raw)).resolve()
    except (RuntimeError, OSError, UnicodeError) as exc:  # a symlink loop, an unusable name
        raise JobRequestError(f"'{what}' {raw[:200]!r} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise JobRequestError(f"'{what}' {raw!r} is outside the server's root directory")
    return resolved


def check_notebook(path: Path, shown: str) -> Any:
    """The parsed notebook at ``path`` (404 when missing, 400 when not a notebook).

    Read with papermill's own loader, which gives every cell the ``tags`` list its
    parameter inspection expects.
    """
    from papermill.iorw import load_notebook_node

    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, UnicodeError) as exc:  # e.g. a name too long for the file system
        reason = getattr(exc, "strerror", None) or str(exc)
        raise JobRequestError(f"{shown[:200]!r} cannot be looked up: {reason}") from None
    if not exists:
        raise JobRequestError(f"notebook {shown!r} does not exist", status=404)
    if not is_file or path.suffix != ".ipynb":
        raise JobRequestError(f"{shown!r} is not a notebook (.ipynb file)")
    try:
        return load_notebook_node(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a notebook"
        raise JobRequestError(f"{shown!r} is not a valid notebook: {exc}") from None


# JSON value types a declared default's inferred type accepts.
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _declared_type(param: Any) -> str | None:
    """The type a parameter declares: its annotation when papermill found one, else the type
    of its literal default (``epochs = 3`` declares an int); None when neither tells."""
    import ast

    if param.inferred_type_name in _ACCEPTS:
        return param.inferred_type_name
    try:
        default = ast.literal_eval(param.default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return type(default).__name__ if default is not None else None


def notebook_language(nb: Any, kernel: str) -> str:
    """The notebook's language (papermill needs it to write the parameters): from the
    notebook's metadata, else from the kernelspec it will run with."""
    meta = nb.metadata
    language = meta.get("kernelspec", {}).get("language") or meta.get("language_info", {}).get(
        "name"
    )
    if language:
        return str(language)
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return str(KernelSpecManager().get_kernel_spec(kernel).language)
    except Exception:  # noqa: BLE001 - no such spec here: say what is missing
        raise JobRequestError(
            "the notebook does not say its language (metadata.kernelspec.language) and the "
            f"kernelspec {kernel!r} cannot tell"
        ) from None


def check_parameters(
    nb: Any, parameters: Any, allow_unknown: bool, kernel: str | None, language: str | None = None
) -> list[str]:
    """Check names and types against the notebook's ``parameters`` cell; returns warnings."""
    from papermill.inspection import _infer_parameters
    from papermill.utils import any_tagged_cell

    if not isinstance(parameters, dict):
        raise JobRequestError(
            f"'parameters' must be a JSON object of name: value, got {_type_name(parameters)}"
        )
    warnings: list[str] = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise JobRequestError(f"parameter name {name!r} is not a valid identifier")
        if isinstance(value, float) and not math.isfinite(value):
            raise JobRequestError(f"parameter {name!r} must be a finite number")
    if not any_tagged_cell(nb, "parameters"):
        warnings.append(
            "the notebook has no cell tagged 'parameters'; papermill puts the injected "
            "parameters at the top of the notebook"
        )
        if parameters and not allow_unknown:
            raise JobRequestError(
                f"unknown parameter(s) {', '.join(sorted(parameters))}: the notebook has no "
                "cell tagged 'parameters' (set allow_unknown to pass them anyway)"
            )
        return warnings
    declared = {p.name: p for p in _infer_parameters(nb, name=kernel, language=language)}
    unknown = sorted(set(parameters) - set(declared))
    if unknown and not allow_unknown:
        raise JobRequestError(
            f"unknown parameter(s) {', '.join(unknown)}; the notebook declares "
            f"{', '.join(sorted(declared)) or 'none'} (set allow_unknown to pass them anyway)"
        )
    if unknown:
        warnings.append(f"parameter(s) not declared by the notebook: {', '.join(unknown)}")
    for name, value in parameters.items():
        if name not in declared:
            continue
        expected = _declared_type(declared[name])
        accepts = _ACCEPTS.get(expected or "")
        if accepts is None or value is None:
            continue  # declared without a plain type (None, an expression): anything goes
        if isinstance(value, bool) and bool not in accepts:
            ok = False
        else:
            ok = isinstance(value, accepts)
        if not ok:
            raise JobRequestError(
                f"parameter {name!r} must be {expected} (the notebook declares "
                f"{name} = {declared[name].default}), got {_type_name(value)} {value!r}"
            )
    return warnings


def _number(body: dict[str, Any], key: str, default: Any, low: float, high: float) -> Any:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobRequestError(f"'{key}' must be a number, got {_type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise JobRequestError(f"'{key}' must be a finite number")
    # compared as is: float(10**400) would raise OverflowError
    if not low <= value <= high:
        raise JobRequestError(f"'{key}' must be between {low:g} and {high:g}, got {value}")
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobRequestError(f"'{key}' must be an integer, got {_type_name(value)}")
    if not low <= value <= high:
        raise JobRequestError(f"'{key}' must be between {low} and {high}, got {value}")
    return value


def _string(body: dict[str, Any], key: str, default: str, choices: tuple[str, ...] = ()) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise JobRequestError(f"'{key}' must be a string, got {_type_name(value)}")
    if choices and value not in choices:
        raise JobRequestError(f"'{key}' must be one of {', '.join(choices)}, got {value!r}")
    if len(value) > 200:
        raise JobRequestError(f"'{key}' is longer than 200 characters")
    return value


def _strings(body: dict[str, Any], key: str, default: list[str], choices=()) -> list[str]:
    value = body.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise JobRequestError(f"'{key}' must be a list of strings, got {_type_name(value)}")
    if len(value) > 50 or any(len(v) > 100 for v in value):
        raise JobRequestError(f"'{key}' takes at most 50 strings of at most 100 characters")
    bad = [v for v in value if choices and v not in choices]
    if bad:
        raise JobRequestError(f"'{key}' may hold only {', '.join(choices)}, got {bad[0]!r}")
    return list(dict.fromkeys(value))


def check_fields(body: Any, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise JobRequestError(f"the request must be a JSON object, not {_type_name(body)}")
    unknown = sorted(str(k) for k in set(body) - allowed)
    if unknown:
        raise JobRequestError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}"
        )
    for key in required:
        if key not in body:
            raise JobRequestError(f"missing field '{key}'")
    return body


def validate_job(
    body: Any,
    root: Path | None,
    kernels: set[str],
    fields: set[str] = JOB_FIELDS,
    default_executor: str = "local",
) -> NotebookJob:
    """Check a job request: notebook path (confined to ``root`` when given), kernel,
    parameters against the notebook's declared ones, and the execution options."""
    body = check_fields(body, fields, ("path",))
    notebook = resolve_path(body["path"], root)
    nb = check_notebook(notebook, body["path"])
    allow_unknown = body.get("allow_unknown", False)
    if not isinstance(allow_unknown, bool):
        raise JobRequestError(f"'allow_unknown' must be a boolean, got {_type_name(allow_unknown)}")
    kernel = body.get("kernel")
    if kernel is None:
        kernel = nb.metadata.get("kernelspec", {}).get("name")
        if not kernel:
            raise JobRequestError(
                "the notebook names no kernel (metadata.kernelspec); choose one with 'kernel'"
            )
    if not isinstance(kernel, str):
        raise JobRequestError(f"'kernel' must be a string, got {_type_name(kernel)}")
    if kernel not in kernels:
        raise JobRequestError(
            f"unknown kernel {kernel!r}; installed: {', '.join(sorted(kernels)) or 'none'}"
        )
    language = notebook_language(nb, kernel)
    warnings = check_parameters(nb, body.get("parameters", {}), allow_unknown, kernel, language)
    if "cwd" in body and body["cwd"] is not None:
        cwd = resolve_path(body["cwd"], root, "cwd")
        if not cwd.is_dir():
            raise JobRequestError(f"'cwd' {body['cwd']!r} is not a directory")
    else:
        cwd = notebook.parent
    return NotebookJob(
        notebook=notebook,
        cwd=cwd,
        kernel=kernel,
        language=language,
        parameters=dict(body.get("parameters", {})),
        name=_string(body, "name", ""),
        timeout=_number(body, "timeout", None, 0.1, MAX_TIMEOUT),
        retries=_integer(body, "retries", 0, 0, MAX_RETRIES),
        retry_backoff=_number(body, "retry_backoff", 1.0, 0.0, 3600.0) or 0.0,
        tags=_strings(body, "tags", []),
        output_formats=_strings(body, "output_formats", ["ipynb"], OUTPUT_FORMATS) or ["ipynb"],
        executor=_string(body, "executor", default_executor, EXECUTORS),
        warnings=warnings,
    )


@dataclass
class ScheduleTiming:
    cron: str
    timezone: str
    active: bool
    overlap: str
    catchup: str


def check_cron(cron: Any, timezone: Any) -> tuple[str, str]:
    from croniter import croniter

    if not isinstance(cron, str) or not cron.strip():
        raise JobRequestError(f"'cron' must be a non-empty string, got {_type_name(cron)}")
    fields = cron.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(cron):
        raise JobRequestError(
            f"'cron' {cron!r} is not a valid cron expression (5 fields: minute hour day "
            "month weekday, or 6 with seconds last, e.g. '* * * * * */10')"
        )
    if not isinstance(timezone, str) or not timezone:
        raise JobRequestError(f"'timezone' must be a string, got {_type_name(timezone)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobRequestError(f"unknown timezone {timezone!r} (use an IANA name)") from None
    return cron.strip(), timezone


def validate_timing(body: dict[str, Any], current: dict[str, Any] | None = None) -> ScheduleTiming:
    current = current or {}
    cron, timezone = check_cron(
        body.get("cron", current.get("cron")),
        body.get("timezone", current.get("timezone", "UTC")),
    )
    active = body.get("active", current.get("active", True))
    if not isinstance(active, bool):
        raise JobRequestError(f"'active' must be a boolean, got {_type_name(active)}")
    return ScheduleTiming(
        cron=cron,
        timezone=timezone,
        active=active,
        overlap=_string(body, "overlap", current.get("overlap", "skip"), OVERLAP_POLICIES),
        catchup=_string(body, "catchup", current.get("catchup", "once"), CATCHUP_POLICIES),
    )


#: The job options a schedule stores and gives every job it fires (a job stores them too).
SCHEDULED_JOB_FIELDS = (
    "name",
    "parameters",
    "kernel",
    "executor",
    "timeout",
    "retries",
    "tags",
    "output_formats",
)


def schedule_fields(job: NotebookJob) -> dict[str, Any]:
    """What a schedule (or a job) stores of a validated job request."""
    fields = {key: getattr(job, key) for key in SCHEDULED_JOB_FIELDS}
    fields["name"] = job.name or job.notebook.stem
    return fields


def job_request(schedule: dict[str, Any]) -> dict[str, Any]:
    """The job request a stored schedule stands for (to fire it, or to check an edit)."""
    body = {key: schedule[key] for key in SCHEDULED_JOB_FIELDS}
    body.update(path=schedule["notebook"], cwd=schedule["cwd"])
    return body
