"""The configuration page of the docs names every environment variable the code defines.

The traitlets settings on that page are generated at build time; the environment variables are
written by hand, so a variable added to ``lepton_lab/config/settings.py`` (or the job runner's)
without a line there fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_lab.config import settings
from lepton_lab.jobs import workdir
from lepton_lab.metering import meter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


def _variables(module: object) -> dict[str, str]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.startswith("ENV_") and isinstance(value, str)
    }


def test_settings_defines_variables() -> None:
    assert "ENV_STATE_DIR" in _variables(settings)


@pytest.mark.parametrize(
    "name, value",
    sorted({**_variables(settings), **_variables(workdir), **_variables(meter)}.items()),
)
def test_every_variable_is_on_the_configuration_page(name: str, value: str) -> None:
    assert f"`{value}`" in PAGE.read_text(), (
        f"{name} = {value!r} is not on docs/reference/configuration.md: add it to the "
        "environment variables there"
    )
