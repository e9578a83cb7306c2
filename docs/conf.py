"""Sphinx configuration of the Lepton Lab docs site (``make docs``).

Pages are MyST Markdown; the demo notebooks (``docs/demos/*.ipynb``, links to ``notebooks/``)
are executed by myst-nb at build time. The reference pages are generated from the code: the
Python API from docstrings (autodoc), the CLI from ``lepton_lab.cli.main.build_parser``
(sphinx-argparse), the REST API from the same OpenAPI document the server serves, and the
configuration from the traitlets classes (``docs/_ext/lepton_docs.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BUILD = DOCS / "_build"
sys.path.insert(0, str(DOCS / "_ext"))

# -- the demo notebooks run against a private store, never the user's lab --------------------
# Executed notebooks call ll.attach(), ll.fit, ll.jobs and ll.models: they must not write into
# the user's store (the default state directory) nor reach a running lab's cluster. The kernels
# myst-nb starts inherit this process's environment, so the lab's variables are removed here and
# the state directory points into the build folder.
# (LEPTON_LAB_DOCS_* are this build's own switches, read below.)
for _name in list(os.environ):
    lab = _name.startswith("LEPTON_LAB_") and not _name.startswith("LEPTON_LAB_DOCS_")
    # what a lab's server exports to its terminals' and kernels' Dask clients
    dask = _name == "DASK_SCHEDULER_ADDRESS" or _name.startswith(
        ("DASK_DISTRIBUTED__COMM__", "DASK_DISTRIBUTED__DASHBOARD__LINK")
    )
    if lab or dask or _name == "JPY_SESSION_NAME":
        del os.environ[_name]
os.environ["LEPTON_LAB_STATE_DIR"] = str(BUILD / "lepton-lab-state")
# Keras runs of the demos use the torch backend, as the Lepton kernels set it
os.environ.setdefault("KERAS_BACKEND", "torch")

import lepton_lab  # noqa: E402 - after the environment above

project = "Lepton Lab"
author = "Lepton Lab contributors"
copyright = "2026, Lepton Lab contributors"  # noqa: A001 - Sphinx's name for it
release = lepton_lab.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinxarg.ext",
    "sphinxcontrib.mermaid",
    "lepton_docs",
]

exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints"]
# the README's diagram source; the architecture page includes the same file
exclude_patterns += ["architecture.mmd"]

# -- MyST and notebooks ------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]
# executed once, outputs kept in docs/_build/.jupyter_cache: a rebuild re-runs only the
# notebooks whose code changed
# LEPTON_LAB_DOCS_EXECUTE=off builds the pages without running them (for editing prose)
nb_execution_mode = os.environ.get("LEPTON_LAB_DOCS_EXECUTE", "cache")
nb_execution_cache_path = str(BUILD / ".jupyter_cache")
nb_execution_timeout = 1800  # seconds per cell: a demo trains on 2 CPU workers
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# widgets (the cluster widget, the run monitor) keep their state in the page
nb_render_markdown_format = "myst"

# -- API reference -----------------------------------------------------------------------------
autodoc_member_order = "bysource"
# the docstrings are prose with ``literals`` (no numpydoc/Google sections): types stay in the
# signatures, where a dataclass's private fields do not turn into a list of "parameters"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"show-inheritance": False}
# Frameworks the docstrings name but the build need not resolve
nitpicky = False
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
}
# no internet here: intersphinx inventories are fetched only when external links are checked
if os.environ.get("LEPTON_LAB_DOCS_EXTERNAL_LINKS") != "1":
    intersphinx_mapping = {}

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "Lepton Lab"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False

# -- mermaid -----------------------------------------------------------------------------------
# Rendered in the browser by mermaid.js (sphinxcontrib-mermaid's default "raw" output), so the
# build needs neither Node nor a headless browser.
mermaid_output_format = "raw"

# -- link check --------------------------------------------------------------------------------
# `make docs` runs the linkcheck builder after the HTML build, so broken internal links
# (documents, anchors, local files) always fail it. This machine (and CI without network)
# cannot reach the internet, so every http(s) link is ignored unless
# LEPTON_LAB_DOCS_EXTERNAL_LINKS=1 asks for them to be checked too.
linkcheck_ignore: list[str] = []
if os.environ.get("LEPTON_LAB_DOCS_EXTERNAL_LINKS") != "1":
    linkcheck_ignore = [r"https?://.*"]
# example hosts in the guides (hooks.slack.com/..., hub.example.org) never answer
linkcheck_ignore += [
    r"https?://([\w-]+\.)*example\.(com|org|invalid)(/.*)?",
    r"https?://(127\.0\.0\.1|localhost)(:\d+)?(/.*)?",
]
linkcheck_anchors = True
linkcheck_timeout = 15
