# prompt-rollouts developer entry points. Every target sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# Debian packages of the real servers integration tests start (installed when run as root).
SYSTEM_PACKAGES ?= redis-server prometheus
# The chart tests run the real Helm engine (helm-sdkpy), which needs Python >= 3.12.
HELM_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12 2>/dev/null))

.PHONY: help install system-deps run test test-chart lint typecheck format check crds lock bench bench-quality image e2e-cluster clean eval

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/.installed ## Create the virtualenv from the pinned lock.

system-deps: ## Install the Debian packages integration tests need (as root; else say why not).
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "note: cannot install$$missing (not root or no apt-get): tests that need them will be skipped"; \
	fi

run: install ## Run the service with its embedded defaults on http://127.0.0.1:8000.
	$(BIN)/python -m service --host $(HOST) --port $(PORT)

test: install system-deps ## Run the whole test suite (the chart tests too when Python 3.12 exists).
	$(BIN)/python -m pytest $(PYTEST_ARGS) || { status=$$?; \
		echo "FAILED: pytest exited $$status; the chart tests (tests/chart, make test-chart) did NOT run"; \
		exit $$status; }
	@if [ -n "$(HELM_PYTHON)" ]; then \
		$(MAKE) --no-print-directory test-chart; \
	elif [ "$$PROMPT_ROLLOUTS_FORBID_SKIPS" = 1 ]; then \
		echo "FAILED: the chart tests need Python >= 3.12 (none found; set HELM_PYTHON)"; exit 1; \
	else \
		echo "SKIPPED: chart tests (tests/chart): no Python >= 3.12 found; set HELM_PYTHON to run them"; \
	fi

.venv-helm/.installed: requirements/helm.lock
	$(HELM_PYTHON) -m venv .venv-helm
	.venv-helm/bin/python -m pip install --quiet --upgrade pip
	.venv-helm/bin/python -m pip install --quiet -r requirements/helm.lock
	@touch $@

test-chart: .venv-helm/.installed ## Chart tests with the real Helm engine (Python 3.12).
	.venv-helm/bin/python -m pytest tests/chart -p no:cacheprovider

lint: install ## ruff (lint + format check).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict.
	$(BIN)/mypy

check: lint typecheck test ## Everything CI runs.

format: install ## Apply ruff's fixes and formatting.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

crds: install ## Regenerate crds/ from the Python models; refresh the chart's copies.
	$(BIN)/promptctl crd > crds/promptversion.yaml
	cp crds/promptversion.yaml crds/kopf-peering.yaml charts/prompt-rollouts/crds/
	cp observability/prometheus/recording-rules.yaml observability/prometheus/alerts.yaml charts/prompt-rollouts/files/prometheus/
	cp observability/grafana/prompt-rollouts.json charts/prompt-rollouts/files/grafana/
	cp prompts/*.yaml charts/prompt-rollouts/files/examples/

lock: ## Re-resolve the pinned locks from pyproject.toml.
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e .
	.lockenv/bin/pip freeze --exclude-editable | sort > requirements/runtime.lock
	.lockenv/bin/pip install --quiet -c requirements/runtime.lock -e '.[dev]'
	.lockenv/bin/pip freeze --exclude-editable | sort > requirements/dev.lock
	rm -rf .lockenv

BASE_REF ?= origin/main
eval: install ## Prompt CI locally: lint and eval the prompts changed against BASE_REF (default origin/main).
	BASE_REF=$(BASE_REF) PYTHON=$(BIN)/python scripts/prompt-ci.sh

# A smaller run for a loaded machine, e.g. BENCH_ARGS="--requests 150 --throughput-requests 640".
BENCH_ARGS ?=
bench: install ## Measure the service's overhead over a direct model call; writes docs/benchmarks.md.
	$(BIN)/python -m bench.overhead $(BENCH_ARGS)

bench-quality: install ## Simulate canaries: detection time and false rollbacks; writes docs/benchmarks-quality.md.
	$(BIN)/python -m bench.quality

image: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t prompt-rollouts:$(VERSION) .

e2e-cluster: ## Real-cluster end to end on kind (needs docker, kind, kubectl, helm).
	scripts/e2e-cluster.sh

clean: ## Remove the virtualenv, caches and the local vector store.
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var
