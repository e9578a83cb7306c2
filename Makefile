# Lepton Lab: `make demo` and `make test` set up everything they need in ./.venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lepton-lab-installed
SOURCES := pyproject.toml $(shell find lepton_lab kernels jupyter-config labextension/src \
	labextension/style labextension/schema -type f -not -path '*/__pycache__/*' \
	-not -path 'lepton_lab/labextension/*' 2>/dev/null) labextension/package.json

.PHONY: demo test lab binder-check bench-deps browser-deps postgres-deps wheel clean gpu-wheels docs docs-deps

demo: $(STAMP)  ## the end-to-end demo on the embedded local cluster
	$(BIN)/lepton-lab demo

test: $(STAMP) browser-deps postgres-deps  ## every suite: TS lint + jest, then unit, server, kernel, training, fault, browser
	cd labextension && { test -d node_modules/jest || npm ci; } && npm run lint && npm test
	$(BIN)/pytest

lab: $(STAMP)  ## JupyterLab with the Lepton Lab extension
	$(BIN)/jupyter lab

# Binder replayed on this machine (tests/binder): binder/postBuild into a fresh virtual
# environment, then the quickstart notebook as a job in a jupyter lab from it, under Binder's
# 2 GB. It builds that environment from scratch (minutes), so CI runs it after `test`.
binder-check: $(STAMP)
	$(BIN)/pytest -o addopts="-ra" -s tests/binder  # -s: the install time and the memory figures

# The package is installed as a user gets it: a wheel built from this tree (the hatch build
# hook compiles the TypeScript extension), so tests exercise the wheel's kernelspecs,
# prebuilt labextension and server config.
$(STAMP): $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	rm -rf lepton_lab/labextension
	$(BIN)/python -m pip install --quiet ".[dev]"
	touch $(STAMP)

# The peers the benchmarks compare against (bench/bench_peers.py: Ray Train), from the `bench`
# extra; the package and its tests never need them.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet ".[bench]"

# The docs site (docs/conf.py): Sphinx builds the HTML, executing the demo notebooks (their
# outputs are cached in docs/_build/.jupyter_cache), then checks every link; a warning fails
# either step. Internal links are always checked, external ones only with
# LEPTON_LAB_DOCS_EXTERNAL_LINKS=1 (they need the internet).
docs: docs-deps
	$(BIN)/sphinx-build -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -b linkcheck -d docs/_build/doctrees docs docs/_build/linkcheck

# The `docs` extra's requirements, read from pyproject.toml, less lepton-lab itself: $(STAMP)
# installed the package with the extras the notebooks need, and reinstalling it would rebuild
# the wheel.
DOCS_REQUIREMENTS := import sys; t = __import__("tomllib" if sys.version_info >= (3, 11) \
	else "pip._vendor.tomli", fromlist=["loads"]); extra = t.load(open("pyproject.toml", "rb")) \
	["project"]["optional-dependencies"]["docs"]; print(" ".join(r for r in extra \
	if not r.startswith("lepton-lab")))
docs-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet $$($(BIN)/python -c '$(DOCS_REQUIREMENTS)')

# Browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download cannot reach its host here).
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need chromium: sudo apt-get install -y chromium"; exit 1; fi; }

# The store is tested on PostgreSQL too; the tests start a private server from Debian's binaries.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "store tests need PostgreSQL: sudo apt-get install -y postgresql"; exit 1; fi; }

# Wheels for bench/gpu_check.py on a GPU machine with Python 3.12 and torch with CUDA but no
# package index (docs/decisions/gpu.md): what the check needs from PyPI, less torch, cuda-bindings and the
# large packages that machine already has, into .whl/ (< 64 MiB). Copy the repository with .whl/
# there (with the workplace's device tool: carry [".whl"]), then run in its root, in one command:
#   python3 bench/gpu_check.py --wheels .whl
GPU_WHEEL_PLATFORMS := $(foreach v,2_28 2_27 2_24 2_17 2_12 2_5,--platform manylinux_$(v)_x86_64) \
	--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64
gpu-wheels:
	rm -rf .whl
	$(PYTHON) -m pip download --quiet --dest .whl --only-binary=:all: --python-version 3.12 \
	  --implementation cp --abi cp312 $(GPU_WHEEL_PLATFORMS) \
	  $$($(PYTHON) bench/gpu_check.py --requirements)
	$(PYTHON) bench/gpu_check.py --prune-wheels .whl

wheel:
	rm -rf lepton_lab/labextension dist
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist lepton_lab/labextension labextension/lib labextension/node_modules
