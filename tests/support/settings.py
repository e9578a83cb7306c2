"""Test settings written once with the short names, split into the config sections the server
reads: ``c.ClusterManager.*`` for the cluster, ``c.LeptonLab.*`` for the rest."""

from __future__ import annotations

from typing import Any

from lepton_lab.server.app import LEGACY_CLUSTER_SETTINGS


def config_sections(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {"LeptonLab": {}, "ClusterManager": {}}
    for key, value in settings.items():
        if key in LEGACY_CLUSTER_SETTINGS:
            sections["ClusterManager"][LEGACY_CLUSTER_SETTINGS[key]] = value
        else:
            sections["LeptonLab"][key] = value
    return sections
