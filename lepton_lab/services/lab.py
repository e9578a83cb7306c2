"""The services of one running lab, built once by the server extension."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lepton_lab.services.cluster import ClusterService
from lepton_lab.services.deployments import DeploymentService
from lepton_lab.services.jobs import JobService
from lepton_lab.services.models import ModelService
from lepton_lab.services.notifications import NotificationService
from lepton_lab.services.runs import RunService
from lepton_lab.services.schedules import ScheduleService
from lepton_lab.services.usage import UsageService


@dataclass
class LabServices:
    """The facades the REST handlers call, and the thread pool their blocking calls run in
    (so the IOLoop never waits on the database, the file system or the cluster)."""

    cluster: ClusterService
    runs: RunService
    jobs: JobService
    schedules: ScheduleService
    models: ModelService
    deployments: DeploymentService
    usage: UsageService
    notifications: NotificationService
    pool: ThreadPoolExecutor
    #: the OpenAPI document for a base URL (written from the routes, which import this)
    openapi: Callable[[str], dict[str, Any]]
