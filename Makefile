# FedImpute developer commands. Needs only Python 3.11+ and make: `make install` bootstraps uv
# into .tools/ and every dependency into .venv/ from the committed lock file.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never

# Real GA4GH WES servers for the tests against real peers (sandbox/src/sandbox/real_wes.py), each
# in its own virtualenv: their pins clash with ours. Both run CWL with the cwltool installed beside.
SAPPORO_PINS := sapporo==2.4.0 cwltool==3.3.20260925135507
WES_SERVICE_PINS := 'wes-service[cwltool]==5.0' cwltool==3.3.20260925135507
WES_PEERS := .tools/wes/sapporo/.installed .tools/wes/wes-service/.installed

.PHONY: install wes-peers node-install up test lint format typecheck check bench bench-imputation seed clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode compiled at install: the dependencies by uv, the workspace's own sources by compileall.
# Otherwise each of the ~20 processes `make up` starts compiles every module it imports from
# source (all of them, every time, when PYTHONDONTWRITEBYTECODE is set): seconds of CPU and
# megabytes of memory per process.
$(VENV)/.installed: $(UV) uv.lock pyproject.toml */pyproject.toml Makefile
	$(UV) sync --all-packages --frozen --compile-bytecode --python $(PYTHON)
	$(PY) -m compileall -q -j 0 $(wildcard */src) scripts bench
	touch $@

.tools/wes/sapporo/.installed: $(UV) Makefile
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .tools/wes/sapporo
	$(UV) pip install --quiet --python .tools/wes/sapporo/bin/python $(SAPPORO_PINS)
	touch $@

.tools/wes/wes-service/.installed: $(UV) Makefile
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .tools/wes/wes-service
	$(UV) pip install --quiet --python .tools/wes/wes-service/bin/python $(WES_SERVICE_PINS)
	touch $@

wes-peers: $(WES_PEERS) ## the real WES servers (sapporo, wes-service) under .tools/wes/

install: $(VENV)/.installed $(WES_PEERS) node-install ## .venv, .tools/ and the imputation node

# The imputation node (imputation-node/): Debian's beagle, bcftools, tabix, Java and jq when one is
# missing, and its own virtualenv (imputation-node/.venv: sapporo and cwltool pin libraries the
# platform also uses, so they never enter .venv).
node-install: $(UV)
	$(MAKE) --no-print-directory -C imputation-node install UV=$(CURDIR)/$(UV) PYTHON=$(PYTHON)

up: install ## start the whole fleet (embedded Postgres/Redis unless DATABASE_URL/REDIS_URL are set)
	$(PY) scripts/fleet.py up

test: install ## run every test against real Postgres and Redis
	PY=$(PY) PYTEST_ARGS="$(PYTEST_ARGS)" scripts/test.sh

lint: install ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test ## everything CI runs

seed: install ## register the real public imputation services (inactive) in the registry database
	$(PY) -m service_registry.seed

bench: install ## every benchmark, one after the other; rewrites docs/benchmarks.md's summary (BENCH_ARGS="--only gateway", "--full")
	command -v wrk >/dev/null || scripts/install-system-packages.sh --bench
	$(PY) bench/run_all.py $(BENCH_ARGS)

bench-imputation: install ## accuracy and node overhead of the imputation node (see docs/benchmarks.md)
	$(PY) bench/imputation.py

clean:
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache imputation-node/.venv imputation-node/var
