"""The Dask dashboard through the Jupyter server's own URL (jupyter-server-proxy).

The dashboard listens on 127.0.0.1 of the machine that runs the lab; on Binder or JupyterHub
the browser is elsewhere and cannot reach it. jupyter-server-proxy serves it under the Jupyter
server's URL instead, behind Jupyter's own authentication, and Dask writes every dashboard link
(``client.dashboard_link``, cluster reprs, the lab's status) from one template,
``distributed.dashboard.link``. Setting that template is all the routing there is
(docs/guide/dashboard.md).
"""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import urlsplit

DASK_DEFAULT_LINK = "{scheme}://{host}:{port}/status"
ENV_LINK = "DASK_DISTRIBUTED__DASHBOARD__LINK"

# Templates this module has handed out in this process: a second server started in the same
# process (the in-process test servers) must not take the first one's link for the user's.
_ours: set[str] = set()


def proxied_dashboard_link(base_url: str, cluster: str | None = None) -> str | None:
    """Dask's ``distributed.dashboard.link`` template that routes the dashboard through this
    Jupyter server (``{base_url}proxy/{port}/status``, relative to the server's origin, so it
    holds behind any outer proxy), or None where the lab should leave Dask's link alone:
    jupyter-server-proxy is missing, or the user set their own link (the environment variable
    or the dask config), which Dask users expect to win.

    ``cluster`` is the cluster mode or the scheduler address (``c.ClusterManager.mode``). A
    scheduler on another host gets ``proxy/{host}:{port}/status``: jupyter-server-proxy's
    ``proxy/{port}`` always means localhost, which would be some other process there.
    Such a host must be in ``c.ServerProxy.host_allowlist`` (127.0.0.1 and localhost only by
    default); until then the proxy answers 403, not the wrong page.
    """
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        return None
    if user_dashboard_link() is not None:
        return None
    # Dask formats the template with str.format: braces in the base URL are literal text
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    base = base.replace("{", "{{").replace("}", "}}")
    target = "{port}" if _is_loopback(_scheduler_host(cluster)) else "{host}:{port}"
    link = f"{base}proxy/{target}/status"
    _ours.add(link)
    return link


def user_dashboard_link() -> str | None:
    """The dashboard link template the user configured (environment or dask config), if any;
    Dask's default and the templates this module made do not count."""
    import dask.config
    import distributed  # noqa: F401 - registers Dask's defaults, link included

    for value in (os.environ.get(ENV_LINK), dask.config.get("distributed.dashboard.link", None)):
        if value and value != DASK_DEFAULT_LINK and value not in _ours:
            return str(value)
    return None


def _scheduler_host(cluster: str | None) -> str | None:
    """The host of a scheduler address (``tcp://10.0.0.5:8786``); None for a lab-started
    cluster (``auto``, ``local``, ``cuda``) or anything that is not an address."""
    if not cluster or "://" not in cluster:
        return None
    try:
        return urlsplit(cluster).hostname
    except ValueError:
        return None


def _is_loopback(host: str | None) -> bool:
    """Whether ``proxy/{port}`` reaches the host: jupyter-server-proxy connects to
    "localhost" there, which is 127.0.0.1 or ::1, not every loopback address."""
    return host in (None, "localhost", "127.0.0.1", "::1")
