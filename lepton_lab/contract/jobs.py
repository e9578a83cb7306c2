"""Shapes of the notebook job and schedule routes (``/jobs``, ``/schedules``).

A job request, a schedule request and a schedule edit share their fields by inheritance: each
field (its type, limits and description) is written once, here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints, create_model, field_validator
from pydantic.fields import FieldInfo

from lepton_lab.contract.base import Request, View, json_type
from lepton_lab.contract.models import ModelRef
from lepton_lab.contract.notifications import MAX_RULES, NotifyRule
from lepton_lab.store.schema import JOB_STATUSES

JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
OutputFormat = Literal["ipynb", "html"]
OUTPUT_FORMATS: tuple[str, ...] = OutputFormat.__args__  # type: ignore[attr-defined]
Overlap = Literal["skip", "queue"]
Catchup = Literal["once", "none"]
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_RETRIES = 100
MAX_SECRETS = 50
MAX_SECRET_BYTES = 64 * 1024
#: All of a job's secrets together (names and UTF-8 values): they travel in the kernel's
#: environment, which Linux limits (with the command line) to a quarter of the stack limit.
MAX_SECRETS_TOTAL_BYTES = 256 * 1024
MAX_SECRET_NAME = 128
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Names a secret may not take: Lepton Lab's own variables of the job's process.
RESERVED_SECRET_PREFIX = "LEPTON_LAB_"
#: a secret reaches the job's kernel as an environment variable of this name
SecretName = Annotated[
    str,
    StringConstraints(pattern=SECRET_NAME_PATTERN, min_length=1, max_length=MAX_SECRET_NAME),
]
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


def check_secrets(value: Any) -> Any:
    """The checks of a ``secrets`` object, each with a message that names the secret and
    never shows a value (a validation error is shown, sent back and may be logged)."""
    if value is None:
        return value  # an edit that leaves them out; the field's type refuses null elsewhere
    if not isinstance(value, dict):
        raise ValueError(f"'secrets' must be a JSON object of NAME: value, got {json_type(value)}")
    if len(value) > MAX_SECRETS:
        raise ValueError(f"'secrets' takes at most {MAX_SECRETS} items, got {len(value)}")
    total = 0
    for name, secret in value.items():
        shown = (
            repr(name[:64] + ("..." if len(name) > 64 else ""))
            if isinstance(name, str)
            else (json_type(name))
        )
        if not isinstance(name, str) or not _SECRET_NAME.match(name):
            raise ValueError(
                f"secret name {shown} must be an environment variable name (letters, digits, "
                "_; not starting with a digit)"
            )
        if len(name) > MAX_SECRET_NAME:
            raise ValueError(f"secret name {shown} is longer than {MAX_SECRET_NAME} characters")
        if name.upper().startswith(RESERVED_SECRET_PREFIX):
            raise ValueError(
                f"secret name {shown} is reserved: {RESERVED_SECRET_PREFIX}* variables are "
                "Lepton Lab's own"
            )
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if not isinstance(raw, str):
            raise ValueError(f"secret {shown} must be a string, got {json_type(raw)}")
        if "\x00" in raw:
            raise ValueError(
                f"secret {shown} contains a NUL character, which an environment variable "
                "cannot hold"
            )
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(f"secret {shown} is not valid Unicode text") from None
        if size > MAX_SECRET_BYTES:
            raise ValueError(
                f"secret {shown} is longer than {MAX_SECRET_BYTES} bytes ({size} in UTF-8)"
            )
        total += size + len(name)
    if total > MAX_SECRETS_TOTAL_BYTES:
        raise ValueError(
            f"'secrets' hold {total} bytes together; at most {MAX_SECRETS_TOTAL_BYTES} fit in "
            "a kernel's environment"
        )
    return value


def _executor_enum(schema: dict[str, Any]) -> None:
    """The installed executors (entry points), read when the document is generated."""
    from lepton_lab.jobs.plugins import executor_names

    schema["enum"] = list(executor_names())


class JobOptions(Request):
    """How a notebook runs: shared by jobs, schedules and the jobs a schedule fires."""

    name: str = Field("", max_length=200, description="default: the notebook's name")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="values for the notebook's `parameters` cell (any JSON type; checked "
        "against the types of the declared defaults)",
    )
    kernel: str | None = Field(
        None, min_length=1, max_length=200, description="kernelspec name; default: the notebook's"
    )
    timeout: float | None = Field(
        None, ge=0.1, le=MAX_TIMEOUT, description="seconds per attempt; null: none"
    )
    retries: int = Field(0, ge=0, le=MAX_RETRIES)
    tags: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    output_formats: list[OutputFormat] = Field(
        default_factory=lambda: ["ipynb"], max_length=len(OUTPUT_FORMATS)
    )
    secrets: dict[SecretName, Annotated[SecretStr, Field(max_length=MAX_SECRET_BYTES)]] = Field(
        default_factory=dict,
        max_length=MAX_SECRETS,
        description="environment variables for the job's kernel, stored encrypted and never "
        "shown again (views list only their names, as secret_names); a value the job prints "
        "is redacted from its log and output",
    )
    notify: list[NotifyRule] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="notification rules: when (failed, timed_out, completed, late) to tell "
        "whom on which channel (email, webhook, jupyterlab); a webhook URL is stored encrypted",
    )
    executor: str = Field(  # type: ignore[assignment] - absent: the server's default
        None,
        min_length=1,
        max_length=64,
        description="where it runs: an installed executor (GET /config); default: the server's",
        json_schema_extra=_executor_enum,
    )

    @field_validator("executor")
    @classmethod
    def _installed(cls, value: str) -> str:
        from lepton_lab.jobs.plugins import check_executor

        return check_executor(value)

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> Any:
        return check_secrets(value)


class NotebookRequest(JobOptions):
    """Fields of a request that names a notebook."""

    path: str = Field(
        min_length=1, description="the notebook, relative to the server's root directory"
    )
    cwd: str | None = Field(
        None,
        description="working directory (relative to the server root); default: the "
        "notebook's folder",
    )
    allow_unknown: bool = Field(False, description="pass parameters the notebook does not declare")


class JobRequest(NotebookRequest):
    """``POST /jobs``."""

    retry_backoff: float = Field(
        1.0, ge=0.0, le=3600.0, description="seconds before the first retry; doubles each time"
    )


class ScheduleTiming(Request):
    """When a schedule fires."""

    cron: str = Field(
        min_length=1,
        max_length=200,
        description="cron expression (5 fields, or 6 with seconds last)",
    )
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA name")
    active: bool = True
    overlap: Overlap = Field(
        "skip", description="while the previous job still runs: skip this time, or queue anyway"
    )
    catchup: Catchup = Field(
        "once", description="after downtime: fire once for the missed times, or not at all"
    )


class ScheduleRequest(NotebookRequest, ScheduleTiming):
    """``POST /schedules``."""


#: What an edit of a schedule may change (a schedule keeps its notebook and folder).
SCHEDULE_EDITABLE = tuple(
    name for name in ScheduleRequest.model_fields if name not in ("path", "cwd", "allow_unknown")
)
TIMING_FIELDS = tuple(ScheduleTiming.model_fields)


def _optional(field: FieldInfo) -> tuple[Any, Any]:
    """The same field with its limits, optional with no default (absent: left unchanged)."""
    annotation = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    extra = {"description": field.description, "json_schema_extra": field.json_schema_extra}
    return annotation, Field(None, **extra)


# ``PATCH /schedules/{id}``: the editable fields, each optional (absent: unchanged), plus
# allow_unknown for the parameters checked in that edit. Derived, not written again.
SchedulePatch = create_model(  # type: ignore[call-overload]
    "SchedulePatch",
    __base__=Request,
    __doc__="``PATCH /schedules/{id}``: the fields to change (``active: false`` pauses).",
    __validators__={
        "_secrets": field_validator("secrets", mode="before")(lambda cls, v: check_secrets(v))
    },
    **{
        name: _optional(field)
        for name, field in ScheduleRequest.model_fields.items()
        if name in (*SCHEDULE_EDITABLE, "allow_unknown")
    },
)


class JobQuery(Request):
    """``GET /jobs``: newest first."""

    status: JobStatus | None = None
    schedule_id: str | None = Field(None, min_length=1, max_length=64)
    limit: int = Field(100, ge=1, le=1000)


#: Bytes of a job's log one GET returns at most (page with ``offset``/``next``).
LOG_PAGE_MAX = 4 * 1024 * 1024


class LogQuery(Request):
    """``GET /jobs/{id}/logs``: bytes from ``offset``."""

    offset: int = Field(0, ge=0, le=2**62)
    limit: int = Field(1024 * 1024, ge=1, le=LOG_PAGE_MAX)


class OutputQuery(Request):
    """``GET /jobs/{id}/output``."""

    format: OutputFormat = "ipynb"


class JobEvent(View):
    time: float
    status: str
    attempt: int
    message: str


class JobMetric(View):
    name: str
    value: float
    time: float
    attempt: int


class NotifyRuleView(View):
    """A stored notification rule as views show it: never a secret."""

    on: list[str]
    channel: str
    display: str = Field("", description="the target: addresses, a webhook's host")
    after: float | None = Field(None, description="'late' rules: seconds")


class StoredNotebook(View):
    """What a stored job and a stored schedule both hold: the notebook and how it runs."""

    id: str
    name: str
    path: str | None = Field(None, description="the notebook, relative to the server root")
    notebook: str
    cwd: str
    parameters: dict[str, Any]
    kernel: str
    executor: str
    timeout: float | None = None
    retries: int
    tags: list[str]
    output_formats: list[str]
    secret_names: list[str] = Field([], description="names of the job's secrets (never values)")
    notify: list[NotifyRuleView] = Field(
        [], description="its notification rules, as shown (a webhook by its host only)"
    )
    created_at: float


class Job(StoredNotebook):
    output_dir: str
    retry_backoff: float
    outputs: list[OutputFormat] = Field(
        [], description="the outputs written so far (GET .../output?format=)"
    )
    warnings: list[str]
    schedule_id: str | None = None
    status: JobStatus
    attempt: int
    not_before: float = 0.0
    owner: str | None = None
    runner_pid: int | None = None
    heartbeat_at: float | None = None
    stop_requested: bool
    progress: dict[str, Any] = Field(
        {},
        description="cells, cell (1-based, running), completed, source, started_at, "
        "cell_started_at, cell_elapsed; cells are the executed notebook's, papermill's "
        "injected-parameters cell included",
    )
    started_at: float | None = None
    ended_at: float | None = None
    elapsed: float | None = Field(None, description="seconds of the current (or last) attempt")
    error: str | None = None
    error_cell: int | None = None
    events: list[JobEvent] | None = None
    metrics: list[JobMetric] | None = None
    models: list[ModelRef] = Field([], description="the model versions this job registered")


class JobList(View):
    jobs: list[Job]


class JobLogs(View):
    id: str
    status: JobStatus
    offset: int
    next: int = Field(description="the offset to ask for next")
    size: int
    text: str
    complete: bool = Field(description="the job has ended and all of its log is read")


class Schedule(StoredNotebook):
    cron: str
    timezone: str
    active: bool
    overlap: Overlap
    catchup: Catchup
    next_fire_at: float | None = None
    last_fired_at: float | None = None
    last_job_id: str | None = None
    fired: int
    skipped: int
    last_error: str | None = None
    upcoming: list[float] | None = Field(None, description="the next fire times")


class ScheduleList(View):
    schedules: list[Schedule]
