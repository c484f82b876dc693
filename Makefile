# fastapi-operator: two commands on a fresh machine.
#   make run    the operator on a local control plane, with the examples applied
#   make test   every test: unit, integration (real control plane), data path, chart
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
CLUSTER := $(PY) tests/controlplane/cluster.py

.PHONY: setup test unit run down crd lint e2e-kind kind-up kind-down bench fuzz

$(VENV)/.installed: pyproject.toml
	scripts/venv.sh

setup: $(VENV)/.installed
	scripts/install-debian-packages.sh
	bash tests/controlplane/build.sh >/dev/null

# Two workers: the kind tier on one, everything else on the other (tests/conftest.py).
test: setup
	$(PY) -m pytest -ra -n 2

unit: $(VENV)/.installed
	$(PY) -m pytest -ra tests/unit

crd: $(VENV)/.installed
	$(VENV)/bin/fastapi-operator crd > crds/fastapiapps.fastapi-operator.dev.yaml
	$(VENV)/bin/fastapi-operator crd --kind HostClaim > crds/hostclaims.fastapi-operator.dev.yaml
	$(VENV)/bin/fastapi-operator crd --helm-template > charts/fastapi-operator/templates/crd.yaml
	$(VENV)/bin/fastapi-operator rbac > charts/fastapi-operator/templates/_namespaced_rules.tpl
	$(VENV)/bin/fastapi-operator reference > docs/api.md

run: setup
	scripts/run-local.sh

down: $(VENV)/.installed
	scripts/run-local.sh down

lint:
	shellcheck -x scripts/*.sh tests/controlplane/build.sh .ci/run

# The kind tier alone (`make test` runs it too): real pods, Traefik, cert-manager, Pebble.
e2e-kind: setup
	$(PY) -m pytest -ra tests/e2e

# The same kind cluster, left up for you (KUBECONFIG=~/.cache/fastapi-operator/e2e/cluster/kubeconfig).
kind-up: setup
	$(PY) -m tests.e2e.rig up

kind-down: $(VENV)/.installed
	$(PY) -m tests.e2e.rig down

# Numbers, not pass/fail: render time, startup, convergence of 100 apps, steady-state requests, drift repair.
bench: setup
	$(PY) -m tests.benchmarks.benchmark $(ARGS)

# Many more generated specs than `make test` runs (120, the same ones every time), new ones each run.
FUZZ_EXAMPLES ?= 3000
fuzz: setup
	FASTAPI_OPERATOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FASTAPI_OPERATOR_FUZZ_RANDOM=1 \
		$(PY) -m pytest -ra tests/unit/test_fuzz.py tests/integration/test_fuzz.py
