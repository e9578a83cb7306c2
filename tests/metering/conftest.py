"""The job fixtures (a private state dir and SQLite store, job services with real runner
processes) for the usage tests of jobs."""

from tests.jobs.conftest import service, state, store  # noqa: F401 - fixtures by name
