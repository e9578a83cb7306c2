"""Tables of the store. Defaults live here, once: the ORM and the database agree."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES = ("queued", "running", "completed", "failed", "stopped")
FINAL_STATUSES = ("completed", "failed", "stopped")


class Base(DeclarativeBase):
    #: Columns that ``to_dict`` leaves out (the foreign key a caller already knows, say).
    _private: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The row's columns, in table order, as plain values (what REST and the CLI show)."""
        return {
            column.key: getattr(self, column.key)
            for column in self.__table__.columns
            if column.key not in self._private
        }


class RunRow(Base):
    """One ``ll.fit`` call: what was asked, where it stands, how it ended."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    framework: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    world_size: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: the process that drives the run (``host:pid`` of the ``ll.fit`` caller): a run whose
    #: driver was killed is failed by the next reader on that host
    driver: Mapped[str | None] = mapped_column(String(200), nullable=True)


class MetricRow(Base):
    """One reported value; ``id`` is the cursor that ``?since=`` pages by."""

    __tablename__ = "run_metrics"
    __table_args__ = (
        # run_summaries: a run's highest step, and the newest value of each of its metric
        # names, read from a few index entries instead of every value the run reported
        Index("ix_run_metrics_run_id_step", "run_id", "step"),
        Index("ix_run_metrics_run_id_name_id", "run_id", "name", "id"),
    )
    _private = ("run_id",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """Something that happened to a run: start, checkpoint, restart, failure, stop."""

    __tablename__ = "run_events"
    _private = ("run_id",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    time: Mapped[float] = mapped_column(Float, default=time.time)
    kind: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UsageRow(Base):
    """Resources one rank used in one attempt."""

    __tablename__ = "run_usage"
    _private = ("id", "run_id")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200))
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory: Mapped[int] = mapped_column(Integer, default=0)
    #: the GPU's model name (NVML) when the rank held one
    gpu_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the GPU's utilisation integrated over the rank's time (NVML samples): busy seconds
    gpu_util_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_peak_memory: Mapped[int] = mapped_column(BigInteger, default=0)


# -- jobs and schedules ------------------------------------------------------------------------

JOB_STATUSES = ("queued", "running", "completed", "failed", "stopped", "timed_out")
JOB_FINAL_STATUSES = ("completed", "failed", "stopped", "timed_out")
JOB_ACTIVE_STATUSES = ("queued", "running")


class JobRow(Base):
    """One notebook execution request and where it stands; its files live in ``output_dir``.

    ``owner`` (host:pid) is the process supervising the running attempt: a restart finds jobs
    whose owner is gone and reconciles them. ``stop_requested`` is how any process (a REST call
    on another server, the CLI) asks the owner to stop the job.
    """

    __tablename__ = "jobs"
    #: ``secrets`` is read on its own (``Store.sealed_secrets``): records never carry it
    _private = ("input_path", "secrets")

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    notebook: Mapped[str] = mapped_column(Text)
    input_path: Mapped[str] = mapped_column(Text)
    cwd: Mapped[str] = mapped_column(Text)
    output_dir: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kernel: Mapped[str] = mapped_column(String(200))
    executor: Mapped[str] = mapped_column(String(32), default="local")
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_backoff: Mapped[float] = mapped_column(Float, default=1.0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    output_formats: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["ipynb"])
    #: names of the environment variables in ``secrets`` (shown; the values never are)
    secret_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: one Fernet token of the JSON object NAME: value (``lepton_lab.store.secrets``)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    schedule_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    #: who submitted it (the Jupyter user; the OS user for the CLI): usage is theirs
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: notification rules (``lepton_lab.notify.rules``; webhook URLs sealed)
    notify: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[float] = mapped_column(Float, default=0.0)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    runner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)


class JobEventRow(Base):
    """A state change of a job (with its time), or a note such as a retry's backoff."""

    __tablename__ = "job_events"
    _private = ("id", "job_id")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    time: Mapped[float] = mapped_column(Float, default=time.time)
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")


class JobMetricRow(Base):
    """A value the notebook recorded with ``ll.log_metrics``."""

    __tablename__ = "job_metrics"
    _private = ("id", "job_id")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[float] = mapped_column(Float)


class ScheduleRow(Base):
    """A notebook repeated on a cron expression; ``next_fire_at`` is the one time to fire next
    (advanced with a compare-and-set, so a time is never fired twice)."""

    __tablename__ = "schedules"
    _private = ("secrets",)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    notebook: Mapped[str] = mapped_column(Text)
    cwd: Mapped[str] = mapped_column(Text)
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kernel: Mapped[str] = mapped_column(String(200))
    executor: Mapped[str] = mapped_column(String(32), default="local")
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    output_formats: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["ipynb"])
    #: the secrets every job it fires gets, as on a job row
    secret_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    overlap: Mapped[str] = mapped_column(String(16), default="skip")
    catchup: Mapped[str] = mapped_column(String(16), default="once")
    next_fire_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_fired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: who created it; the jobs it fires are theirs
    user: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: notification rules, also given to the jobs it fires
    notify: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class LeaseRow(Base):
    """Who may dispatch jobs and fire schedules now: one row per lease, held until expiry."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)


# -- the model registry ------------------------------------------------------------------------


class ModelNameRow(Base):
    """A model name and the last version number it gave: numbers are never given twice, also
    after the newest version was deleted (a "v3" in a log names one model)."""

    __tablename__ = "model_names"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class ModelVersionRow(Base):
    """One registered version of a model name, with its lineage. ``location`` is the folder
    (path or fsspec URL) that holds its artifacts; numbers count up per name."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    framework: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    notebook: Mapped[str | None] = mapped_column(Text, nullable=True)
    notebook_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: git state and library versions
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failed_formats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    location: Mapped[str] = mapped_column(Text)
    mlflow_version: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ModelArtifactRow(Base):
    """One exported format of a version: its file, digest, size and verification result."""

    __tablename__ = "model_artifacts"
    __table_args__ = (
        UniqueConstraint("version_id", "format", name="uq_model_artifacts_version_format"),
    )
    _private = ("id", "version_id")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(32))
    file: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    max_abs_diff: Mapped[float | None] = mapped_column(Float, nullable=True)
    tolerance: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelAliasRow(Base):
    """``name@alias`` points at one version; moving it is one UPDATE."""

    __tablename__ = "model_aliases"
    _private = ("version_id",)

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )


class ModelEvaluationRow(Base):
    """Metrics measured on a version (an evaluation notebook's ``log_evaluation``)."""

    __tablename__ = "model_evaluations"
    _private = ("version_id",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[float] = mapped_column(Float, default=time.time)
    dataset: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- serving ---------------------------------------------------------------------------------


class DeploymentRow(Base):
    """A registered version served over the Open Inference Protocol by a supervised model
    server process (``lepton_lab.serving``).

    ``owner`` (host:pid) is the process that supervises it (the lab's server, a ``lepton-lab
    serve`` or a kernel); ``stop_requested`` is how any other process asks that owner to stop
    it, as for jobs. ``port`` is held while it is starting or ready and freed when it ends.
    """

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="starting", index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str] = mapped_column(String(64), default="127.0.0.1")
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    workers: Mapped[int] = mapped_column(Integer, default=0)
    max_batch_size: Mapped[int] = mapped_column(Integer, default=32)
    max_batch_delay_ms: Mapped[float] = mapped_column(Float, default=5.0)
    max_request_bytes: Mapped[int] = mapped_column(BigInteger, default=16 << 20)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    max_restarts: Mapped[int] = mapped_column(Integer, default=3)
    owner: Mapped[str] = mapped_column(String(16), default="server")
    supervisor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_path: Mapped[str] = mapped_column(Text, default="")
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    ready_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


# -- usage -----------------------------------------------------------------------------------

USAGE_KINDS = ("run", "job", "deployment", "storage", "transfer")


class UsageRecordRow(Base):
    """What one run, job attempt, deployment, stored thing or download used, and who for.

    The ledger that reports sum (``lepton_lab.metering.report``). It outlives what it measured:
    retention deletes a job's files, never its usage. ``subject`` names the thing measured
    (a run id, ``job id#attempt``, a deployment id, ``run:<id>``/``job:<id>``/``model:<name>/
    v<n>`` for storage, an artifact for a download); a record of a run, job, deployment or
    stored thing is rewritten in place as it goes on (one row per subject), a download is a
    row of its own.
    """

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_kind_subject", "kind", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    user: Mapped[str] = mapped_column(String(200), default="")
    notebook: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: when it began (a report's day) and ended (None while it goes on)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_util_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_peak_memory: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    #: bytes held (storage) or moved (transfer, and what a Dask-executor job read)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: storage: when retention (or a delete) removed the files; the record stays
    deleted_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- notifications -----------------------------------------------------------------------------

NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed")


class NotificationRow(Base):
    """One message to send on one channel: written when its event happens (in the same
    process, right after the job's or run's end is stored), sent by the process that holds
    the dispatcher lease, retried with backoff, and kept as the log (``GET /notifications``).

    ``key`` is unique: an event is queued once per rule however many processes see it.
    ``target`` is what the channel needs (addresses; a webhook URL sealed with the state
    directory's key, as job secrets are), ``display`` what views show of it.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_due", "status", "next_attempt_at"),
        UniqueConstraint("key", name="uq_notifications_key"),
    )
    _private = ("target", "key", "claimed_by")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    event: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    display: Mapped[str] = mapped_column(Text, default="")
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=time.time)
    #: the sender holding it while it sends (``claimed_until``: when another may take over)
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
