"""The one place that names Lepton Lab's environment variables and resolves its paths.

The server is configured with traitlets (``c.LeptonLab.*``); kernels, papermill jobs and the
CLI run in other processes, so what they must know travels as environment variables named here.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from lepton_lab.config.files import private_dir

#: Scheduler address of the lab's cluster, exported to every kernel the server starts.
ENV_SCHEDULER_ADDRESS = "LEPTON_LAB_SCHEDULER_ADDRESS"
#: JSON file the server keeps up to date with the cluster's state; kernels started before
#: the cluster was ready read the address from it.
ENV_CLUSTER_FILE = "LEPTON_LAB_CLUSTER_FILE"
#: "cpu" or "gpu": which Lepton kernel a process runs in.
ENV_DEVICE = "LEPTON_LAB_DEVICE"
#: Worker pool the kernel's work should go to ("cpu" or "gpu").
ENV_POOL = "LEPTON_LAB_POOL"
ENV_STATE_DIR = "LEPTON_LAB_STATE_DIR"
ENV_DATABASE_URL = "LEPTON_LAB_DATABASE_URL"
#: Root of registered models' artifacts (a path or fsspec URL; models go under ``models/``).
ENV_ARTIFACT_DIR = "LEPTON_LAB_ARTIFACT_DIR"
#: MLflow tracking/registry URI that registered versions are mirrored to.
ENV_MLFLOW_TRACKING_URI = "LEPTON_LAB_MLFLOW_TRACKING_URI"
#: ``c.LeptonLab.prices`` and ``c.LeptonLab.retention`` as JSON, for kernels, jobs and the CLI
ENV_PRICES = "LEPTON_LAB_PRICES"
ENV_RETENTION = "LEPTON_LAB_RETENTION"
#: ``c.LeptonLab.notifications`` and ``c.LeptonLab.smtp`` as JSON (the SMTP password is never
#: in it: ``smtp.password_env`` names the variable that holds it)
ENV_NOTIFICATIONS = "LEPTON_LAB_NOTIFICATIONS"
ENV_SMTP = "LEPTON_LAB_SMTP"
#: The lab's URL (``ServerApp.connection_url``, without a token), for links in messages
ENV_SERVER_URL = "LEPTON_LAB_SERVER_URL"
#: Who the work is for in usage records: the server sets it to its Jupyter user for kernels
ENV_USER = "LEPTON_LAB_USER"
#: The notebook (server-relative path) a job's kernel runs, for usage records of its runs
ENV_NOTEBOOK = "LEPTON_LAB_NOTEBOOK"
#: A job's tags (JSON list) for usage records of the runs it starts
ENV_TAGS = "LEPTON_LAB_TAGS"


def state_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Directory for the run/job store, artifacts and outputs; created on first use."""
    raw = override or os.environ.get(ENV_STATE_DIR) or Path(jupyter_data_dir()) / "lepton_lab"
    # the store and job outputs; the default folder is Lepton Lab's own, so one made 0755
    # by an earlier release is tightened too (a folder the user named is left as it is)
    own = not (override or os.environ.get(ENV_STATE_DIR))
    return private_dir(Path(raw).expanduser().resolve(), tighten=own)


def database_url(override: str | None = None, state: Path | None = None) -> str:
    """SQLAlchemy URL of the store: a SQLite file in the state dir unless configured."""
    url = override or os.environ.get(ENV_DATABASE_URL)
    if url:
        return url
    return f"sqlite:///{(state or state_dir()) / 'lepton_lab.db'}"
