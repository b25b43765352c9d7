# One entry point. Every target creates and fills .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extra index for CPU-only torch wheels on machines whose pip does not already find
# them, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (see README).
TORCH_INDEX_URL ?=
PIP_EXTRA := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
EXTRAS ?= trainer,serving,server,infra,dev
STAMP := $(VENV)/.installed-$(shell echo '$(EXTRAS)' | tr ',' '-')
ARGS ?=

.PHONY: help venv demo test test-fast bench bench-serving load load-tracking benchmark-local report images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv and install the project (idempotent)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(PIP_EXTRA) -e '.[$(EXTRAS)]'
	@touch $@

demo: venv ## train on a built-in default against a local MLflow server (ARGS="-- --epochs 10" to change it)
	$(PY) -m devstack.demo $(ARGS)

test: venv ## run the test suite
	$(PY) -m pytest $(ARGS)

test-fast: venv ## the tests that start no server and train nothing
	$(PY) -m pytest -m 'not slow' $(ARGS)

bench: venv ## training throughput per precision option; writes bench-results.json
	$(PY) -m trainer.bench $(ARGS)

bench-serving: venv ## POST /predict requests/s and p50/p99 at 8 clients for 20 s; writes bench-serving.json
	$(PY) -m devstack.bench_serving $(ARGS)

load: venv ## the long load and fault tests: 32 clients for 30 s, 2000 fuzz examples per strategy, the fault scenarios
	LOAD_SECONDS=30 FUZZ_EXAMPLES=2000 $(PY) -m pytest -s tests/test_load.py tests/test_serving_fuzz.py tests/test_faults.py $(ARGS)

load-tracking: venv ## RUNS (default 8) short trainer runs at once against one server on PostgreSQL; writes load-tracking.json
	$(PY) -m devstack.load_tracking --runs $(or $(RUNS),8) $(ARGS)

benchmark-local: venv ## train RUNS times (default 3, cloud=local) against a local server, then build the report in report-out/local
	$(PY) -m devstack.benchmark_local --runs $(or $(RUNS),3) $(ARGS)

report: venv ## the cloud comparison: make report ARGS="--tracking-uri http://... --tracking-uri http://..."
	$(PY) -m report $(ARGS)

images: ## build and push the three images: make images REGISTRY=<stack output registryUrl> [TAG=v1]
	REGISTRY='$(REGISTRY)' TAG='$(or $(TAG),latest)' scripts/build-images.sh

clean: ## remove the virtual environment and local run outputs
	rm -rf $(VENV) .demo .pytest_cache bench-results.json bench-serving.json load-tracking.json .hypothesis test-artifacts .benchmark report-out
