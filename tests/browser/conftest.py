"""Browser-test plumbing: expose each phase's report on the test item, so fixtures can save
a screenshot of the page when the test body failed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# The browser tests drive a jupyter lab *subprocess*; pytest-jupyter's autouse fixtures
# (registered by tests/conftest.py for the in-process server tests) would otherwise pick up
# Playwright's running event loop (the sync API keeps one running in this thread) and try to
# run and close it at teardown.
@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    yield
