# Switchboard: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GEN := proto/gen
PROTOS := $(shell find proto/switchboard -name '*.proto')
SERVICES := common router auth billing guardrails memory

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	@# The generated code and each service's sources go on the path through one .pth file.
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  { echo "$(CURDIR)/$(GEN)"; for s in $(SERVICES); do echo "$(CURDIR)/services/$$s/src"; done; \
	    echo "$(CURDIR)/deploy/local"; echo "$(CURDIR)"; } > $$site/switchboard-dev.pth
	touch $@

venv: $(VENV)/.installed ## create the virtual environment with the locked dependencies

$(GEN)/.built: $(VENV)/.installed $(PROTOS)
	$(PY) -m switchboard_common.protogen proto $(GEN)
	touch $@

proto: $(GEN)/.built ## generate Python code and Envoy's descriptor set from proto/

run: proto ## start NATS, the five services and Envoy on loopback (Ctrl-C stops them)
	$(PY) -m switchboard_stack

test: proto ## run every test: unit, contract and end-to-end (real Envoy, NATS, gRPC, SQLite, PostgreSQL)
	$(PY) -m pytest

bench: proto ## measure latency, throughput and CPU per request through the edge vs the upstream fake
	$(PY) -m bench

lint: proto ## check the proto contracts compile and the code byte-compiles
	$(PY) -m compileall -q services tests bench deploy edge

clean: ## remove the environment, generated code and local data
	rm -rf $(VENV) $(GEN) .data

.PHONY: help venv proto run test bench lint clean
