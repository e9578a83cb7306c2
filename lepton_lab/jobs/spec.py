"""What a job or a schedule asks for, checked before anything is stored.

The shapes, types and limits of requests are the contract's (:mod:`lepton_lab.contract.jobs`);
this module adds only what needs the file system or the notebook: the path confined to the
server's root, the notebook readable, the kernel installed, the parameters against the
notebook's ``parameters`` cell, the executor installed, the cron expression and timezone real.
REST, the CLI and ``ll.jobs`` all come through here, so each says the same about the same
mistake.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lepton_lab.contract import RequestError, json_type, parse
from lepton_lab.contract.jobs import (
    JobOptions,
    JobRequest,
    NotebookRequest,
    ScheduleTiming,
)
from lepton_lab.jobs.plugins import check_executor

#: Kept for callers that caught it by this name; every request error is a RequestError.
JobRequestError = RequestError


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
    #: NAME: value, in clear: sealed before it is stored (``submission.secret_fields``)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: checked notification rules (``NotifyRule``); webhook URLs are sealed when stored
    notify: list[Any] = field(default_factory=list, repr=False)


def resolve_path(raw: Any, root: Path | None, what: str = "path") -> Path:
    """``raw`` made absolute; with a ``root`` (the server's), it must stay inside it."""
    if not isinstance(raw, str) or not raw.strip():
        raise JobRequestError(f"'{what}' must be a non-empty string, got {json_type(raw)}")
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
            f"'parameters' must be a JSON object of name: value, got {json_type(parameters)}"
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
            hint = ""
            if str in accepts and not isinstance(value, str):
                hint = f" (on the command line, -r {name} VALUE passes text as it is)"
            raise JobRequestError(
                f"parameter {name!r} must be {expected} (the notebook declares "
                f"{name} = {declared[name].default}), got {json_type(value)} {value!r}{hint}"
            )
    return warnings


def validate_job(
    body: Any,
    root: Path | None,
    kernels: set[str],
    default_executor: str = "local",
    model: type[NotebookRequest] = JobRequest,
) -> NotebookJob:
    """Parse a job request (a dict, or an already parsed ``model``) and resolve it."""
    request = body if isinstance(body, NotebookRequest) else parse(model, body)
    return resolve_job(request, root, kernels, default_executor)


def resolve_job(
    request: NotebookRequest, root: Path | None, kernels: set[str], default_executor: str
) -> NotebookJob:
    """Check a parsed request against the file system: notebook path (confined to ``root``
    when given), kernel, parameters against the notebook's declared ones, working folder and
    executor."""
    notebook = resolve_path(request.path, root)
    nb = check_notebook(notebook, request.path)
    kernel = request.kernel
    if kernel is None:
        kernel = nb.metadata.get("kernelspec", {}).get("name")
        if not kernel:
            raise RequestError(
                "the notebook names no kernel (metadata.kernelspec); choose one with 'kernel'"
            )
    if kernel not in kernels:
        raise RequestError(
            f"unknown kernel {kernel!r}; installed: {', '.join(sorted(kernels)) or 'none'}"
        )
    language = notebook_language(nb, kernel)
    warnings = check_parameters(nb, request.parameters, request.allow_unknown, kernel, language)
    if request.cwd is not None:
        cwd = resolve_path(request.cwd, root, "cwd")
        if not cwd.is_dir():
            raise RequestError(f"'cwd' {request.cwd!r} is not a directory")
    else:
        cwd = notebook.parent
    return NotebookJob(
        notebook=notebook,
        cwd=cwd,
        kernel=kernel,
        language=language,
        parameters=dict(request.parameters),
        name=request.name,
        timeout=request.timeout,
        retries=request.retries,
        retry_backoff=getattr(request, "retry_backoff", 1.0),
        tags=list(dict.fromkeys(request.tags)),
        output_formats=list(dict.fromkeys(request.output_formats)) or ["ipynb"],
        executor=check_executor(request.executor or default_executor),
        warnings=warnings,
        secrets={name: value.get_secret_value() for name, value in request.secrets.items()},
        notify=list(request.notify),
    )


def check_timing(timing: ScheduleTiming) -> ScheduleTiming:
    """The timing with its cron expression and timezone checked (and the cron trimmed)."""
    from croniter import croniter

    cron = timing.cron.strip()
    if len(cron.split()) not in (5, 6) or not croniter.is_valid(cron):
        raise RequestError(
            f"'cron' {timing.cron!r} is not a valid cron expression (5 fields: minute hour day "
            "month weekday, or 6 with seconds last, e.g. '* * * * * */10')"
        )
    try:
        ZoneInfo(timing.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RequestError(f"unknown timezone {timing.timezone!r} (use an IANA name)") from None
    return timing.model_copy(update={"cron": cron})


#: The job options a schedule stores and gives every job it fires (a job stores them too).
#: Secrets are not among them: they are stored sealed, and a fired job gets the schedule's
#: sealed secrets as they are (``submission.submit_scheduled``).
#: Notification rules neither: they are stored with their secrets sealed, and a fired job gets
#: the schedule's as stored.
SCHEDULED_JOB_FIELDS = tuple(
    name for name in JobOptions.model_fields if name not in ("secrets", "notify")
)


def schedule_fields(job: NotebookJob) -> dict[str, Any]:
    """What a schedule (or a job) stores of a validated job request, secrets aside."""
    fields = {key: getattr(job, key) for key in SCHEDULED_JOB_FIELDS}
    fields["name"] = job.name or job.notebook.stem
    return fields


def job_request(schedule: dict[str, Any]) -> dict[str, Any]:
    """The job request a stored schedule stands for (to fire it, or to check an edit), its
    secrets aside."""
    body = {key: schedule[key] for key in SCHEDULED_JOB_FIELDS}
    body.update(path=schedule["notebook"], cwd=schedule["cwd"])
    return body
