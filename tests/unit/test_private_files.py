"""The private-files helper under a permissive umask: what it makes is 0700/0600, what a
user named is left alone."""

from __future__ import annotations

import os
import stat

import pytest

from lepton_lab.config.files import make_private, private_dir, private_file
from lepton_lab.config.settings import state_dir


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def permissive_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_folder_it_makes_is_private_and_existing_ones_are_left(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    leaf = private_dir(shared / "a" / "b" / "c")
    assert [mode(p) for p in (shared / "a", shared / "a" / "b", leaf)] == [0o700] * 3
    assert mode(shared) == 0o755
    assert mode(private_dir(shared)) == 0o755  # named by a user: not re-moded
    assert mode(private_dir(shared, tighten=True)) == 0o700


def test_files_are_created_or_tightened_to_0600(tmp_path):
    path = private_file(tmp_path / "log")
    assert path.read_bytes() == b"" and mode(path) == 0o600
    with open(path, "a") as f:  # a later writer keeps the mode
        f.write("x")
    assert mode(path) == 0o600
    loose = tmp_path / "out.ipynb"
    loose.write_text("{}")
    assert mode(loose) == 0o644
    make_private(loose)
    assert mode(loose) == 0o600 and loose.read_text() == "{}"
    make_private(tmp_path / "missing")  # nothing to do, no error


def test_state_dir_default_is_tightened_a_named_one_is_not(tmp_path, monkeypatch):
    named = tmp_path / "named"
    named.mkdir(mode=0o755)
    monkeypatch.setenv("LEPTON_LAB_STATE_DIR", str(named))
    assert mode(state_dir()) == 0o755
    monkeypatch.delenv("LEPTON_LAB_STATE_DIR")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "lepton_lab").mkdir(parents=True, mode=0o755)  # an earlier release's
    assert mode(state_dir()) == 0o700
    assert mode(state_dir(tmp_path / "fresh")) == 0o700
