"""Settings shared by the server, kernels and CLI (see :mod:`lepton_lab.config.settings`)."""

from lepton_lab.config.settings import (
    ENV_CLUSTER_FILE,
    ENV_DATABASE_URL,
    ENV_DEVICE,
    ENV_POOL,
    ENV_SCHEDULER_ADDRESS,
    ENV_STATE_DIR,
    database_url,
    state_dir,
)

__all__ = [
    "ENV_CLUSTER_FILE",
    "ENV_DATABASE_URL",
    "ENV_DEVICE",
    "ENV_POOL",
    "ENV_SCHEDULER_ADDRESS",
    "ENV_STATE_DIR",
    "database_url",
    "state_dir",
]
