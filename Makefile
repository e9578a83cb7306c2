# Lepton Lab: `make demo` and `make test` set up everything they need in ./.venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lepton-lab-installed
SOURCES := pyproject.toml $(shell find lepton_lab kernels jupyter-config labextension/src \
	labextension/style labextension/schema -type f -not -path '*/__pycache__/*' \
	-not -path 'lepton_lab/labextension/*' 2>/dev/null) labextension/package.json

.PHONY: demo test lab bench-deps browser-deps postgres-deps wheel clean

demo: $(STAMP)  ## the end-to-end demo on the embedded local cluster
	$(BIN)/lepton-lab demo

test: $(STAMP) browser-deps postgres-deps  ## every suite: TS lint + jest, then unit, server, kernel, training, fault, browser
	cd labextension && { test -d node_modules/jest || npm ci; } && npm run lint && npm test
	$(BIN)/pytest

lab: $(STAMP)  ## JupyterLab with the Lepton Lab extension
	$(BIN)/jupyter lab

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

wheel:
	rm -rf lepton_lab/labextension dist
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist lepton_lab/labextension labextension/lib labextension/node_modules
