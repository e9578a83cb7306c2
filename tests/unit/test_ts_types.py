"""The TypeScript types of the REST API (``labextension/src/openapi.ts``, checked in) match the
OpenAPI document the server serves: the generator (``npm run gen:types``) run into a temporary
file must reproduce the checked-in file byte for byte."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "labextension"
CHECKED_IN = LABEXTENSION / "src" / "openapi.ts"
GENERATOR = LABEXTENSION / "scripts" / "gen-types.mjs"
FIX = "run `npm run gen:types` in labextension and commit src/openapi.ts"


def test_generated_ts_types_match_the_served_openapi_document(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the TypeScript types cannot be generated here")
    for package in ("openapi-typescript", "prettier"):
        if not (LABEXTENSION / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"labextension/node_modules/{package} is missing: run `npm ci` in labextension "
                "(the package install does it too)"
            )
    fresh = tmp_path / "openapi.ts"
    done = subprocess.run(
        [node, str(GENERATOR), str(fresh)],
        cwd=LABEXTENSION,
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"the generator failed:\n{done.stdout}\n{done.stderr}"
    expected = fresh.read_text()
    actual = CHECKED_IN.read_text() if CHECKED_IN.is_file() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                actual.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "labextension/src/openapi.ts (checked in)",
                "generated from the served document",
                n=2,
            )
        )
        lines = diff.splitlines()
        shown = "\n".join(lines[:80]) + (
            f"\n... {len(lines) - 80} more lines" if len(lines) > 80 else ""
        )
        pytest.fail(
            f"labextension/src/openapi.ts is stale (the REST contract changed): {FIX}.\n{shown}",
            pytrace=False,
        )
