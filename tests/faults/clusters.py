"""A cluster class for ``c.LeptonLab.cluster_factory`` whose scheduler is a process of its
own (Dask's ``SubprocessCluster`` is a function; the factory takes a class), so a test can
kill the scheduler of a cluster the lab owns."""

from __future__ import annotations

from typing import Any

from distributed.deploy.spec import SpecCluster
from distributed.deploy.subprocess import SubprocessScheduler, SubprocessWorker


class SubprocessSchedulerCluster(SpecCluster):
    """A scheduler and ``n_workers`` nannies, each in its own ``dask spec`` process."""

    def __init__(
        self,
        n_workers: int = 1,
        threads_per_worker: int = 1,
        memory_limit: str = "1GiB",
        **kwargs: Any,
    ) -> None:
        scheduler = {
            "cls": SubprocessScheduler,
            "options": {"scheduler_kwargs": {"host": "127.0.0.1", "port": 0, "dashboard": False}},
        }
        worker = {
            "cls": SubprocessWorker,
            "options": {
                "worker_class": "distributed.Nanny",
                "worker_kwargs": {
                    "host": "127.0.0.1",
                    "nthreads": threads_per_worker,
                    "memory_limit": memory_limit,
                },
            },
        }
        super().__init__(
            workers={i: worker for i in range(n_workers)},
            scheduler=scheduler,
            worker=worker,
            name="SubprocessSchedulerCluster",
            **kwargs,
        )
