"""The Dask dashboard through the Jupyter server's own URL (jupyter-server-proxy)."""

from __future__ import annotations


def proxied_dashboard_link(base_url: str) -> str | None:
    """Dask's ``distributed.dashboard.link`` template that routes the dashboard through this
    Jupyter server's ``proxy/{port}/`` (authenticated by Jupyter), or None when
    jupyter-server-proxy is not installed."""
    import importlib.util

    if importlib.util.find_spec("jupyter_server_proxy") is None:
        return None
    return f"{base_url.rstrip('/')}/proxy/{{port}}/status"
