"""What `pip install` put in the environment: extensions enabled, kernelspecs present."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

JUPYTER = str(Path(sys.executable).parent / "jupyter")


def run(*args: str) -> str:
    result = subprocess.run([JUPYTER, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_labextension_is_installed_enabled_and_ok():
    out = run("labextension", "list")
    assert re.search(r"lepton-lab v\S+ enabled OK", out), out


def test_server_extension_is_enabled_and_validates():
    out = run("server", "extension", "list")
    assert re.search(r"lepton_lab enabled", out), out
    assert re.search(r"lepton_lab \S+ OK", out), out


def test_kernelspecs_ship_with_the_package():
    specs = json.loads(run("kernelspec", "list", "--json"))["kernelspecs"]
    for name, device in (("lepton-cpu", "cpu"), ("lepton-gpu", "gpu")):
        spec = specs[name]["spec"]
        assert spec["metadata"]["lepton_lab"]["device"] == device
        assert spec["argv"][1:4] == ["-m", "lepton_lab.kernels.launch", "--device"]
