"""The key pair of a lab cluster on disk, and ``c.LeptonLab.security`` checked before use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lepton_lab.cluster.errors import ClusterError
from lepton_lab.cluster.manager import ClusterManager
from lepton_lab.cluster.security import LabCredentials, check_settings, client_security
from tests.support.permissions import not_private


def test_a_key_pair_is_private_and_goes_when_removed(tmp_path):
    creds = LabCredentials(tmp_path / "tls", "local")
    assert not_private(tmp_path / "tls") == []
    assert "BEGIN CERTIFICATE" in creds.cert.read_text()
    assert "PRIVATE KEY" in creds.key.read_text()
    assert set(creds.client) == {"tls_ca_file", "tls_client_cert", "tls_client_key"}
    security = creds.security()
    assert security.require_encryption
    assert security.tls_scheduler_key == str(creds.key)
    creds.remove()
    assert not creds.folder.exists()


def test_folders_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    parent = tmp_path / "tls"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    gone = parent / f"local-{int(dead.stdout)}-0badc0de"
    kept = parent / f"local-{os.getppid()}-0badc0de"  # pytest's parent: alive
    other = parent / "not-ours"
    for folder in (gone, kept, other):
        folder.mkdir(parents=True)
    creds = LabCredentials(parent, "local")
    assert not gone.exists()
    assert kept.exists() and other.exists() and creds.folder.exists()


def test_configured_security_is_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown field.*tls_key"):
        check_settings({"tls_ca_file": "x", "tls_client_cert": "y", "tls_key": "z"})
    with pytest.raises(ValueError, match="needs tls_ca_file"):
        check_settings({"tls_client_cert": "y"})
    with pytest.raises(ValueError, match="is not a file"):
        check_settings({"tls_ca_file": str(tmp_path / "missing.pem"), "tls_client_cert": "y\n"})
    creds = LabCredentials(tmp_path / "tls", "local")
    assert check_settings(creds.client) == creds.client
    assert client_security(None) is None
    assert client_security(creds.client).require_encryption


def test_an_existing_cluster_with_bad_security_settings_fails_with_one_line():
    manager = ClusterManager(mode="tls://127.0.0.1:1", security={"tls_ca_file": "nowhere.pem"})
    with pytest.raises(ClusterError, match="needs tls_client_cert"):
        manager.start()
    assert manager.status()["status"] == "error"
