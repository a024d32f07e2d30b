# chaoskit -- `make chaos-redis` runs the Redis experiments, `make test` runs the test suite.
# Both do all their own set-up: a virtualenv and Python deps, and what their backend needs -- as root the OS
# packages via apt; as a user with Docker only the locally built images where no registry answers.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
BACKEND ?= auto
JOBS    ?= auto
TEST_JOBS ?= 2
# every system has scripts/setup.d/<system>.sh (its OS packages) and chaoskit/systems/<system>.py
SYSTEMS = $(basename $(notdir $(wildcard scripts/setup.d/*.sh)))
# how long each set-up step took (scripts/timed.sh appends to it; `make test` prints it at the end)
export CHAOSKIT_TIMINGS ?= $(CURDIR)/.make-timings
T = scripts/timed.sh

.PHONY: setup system-deps venv-deps docker images postgres-image test test-unit lint bench cleanup clean
# (chaos-%, deps-% and bench-% are pattern rules: make does not search pattern rules for .PHONY targets)

setup: system-deps $(VENV)/.installed

system-deps:
	@$(T) "OS packages (apt, if missing)" scripts/setup-system.sh $(SYSTEMS)

# what the venv alone needs (python3-venv): the unit tests and lint need nothing else
venv-deps:
	@scripts/setup-system.sh --backend venv

# Docker engine (installed and started when missing) and locally built images (cached).
docker:
	@$(T) "docker engine" scripts/ensure-docker.sh

# `chaoskit images` (chaoskit/images.py; FORCE=1 rebuilds all): cached, rebuilt when a Dockerfile changes.
images: docker $(VENV)/.installed
	@$(T) "local images (cached)" $(BIN)/chaoskit images $(if $(filter 1,$(FORCE)),--force)

$(VENV)/.installed: pyproject.toml
	@echo "creating virtualenv $(VENV) and installing chaoskit with test deps"
	@$(T) "virtualenv + Python deps" sh -c '$(PYTHON) -m venv $(VENV) && \
	  $(BIN)/pip install -q --disable-pip-version-check --upgrade pip && \
	  $(BIN)/pip install -q --disable-pip-version-check -e ".[all,mongo-local,test]"'
	@touch $@

# `make chaos-<system>`: that system's experiments with the default backend, side by side (JOBS=auto: from
# the machine's cores and memory; JOBS=1 one after another), a verdict table and the suite report.
# Set-up per backend (scripts/setup-system.sh --path): as root, or with BACKEND=local, the local backend's OS
# packages (apt); as a user whose Docker daemon answers, or with BACKEND=docker, only the venv and the images
# `chaoskit images --system` builds where no registry gives the official ones; neither: one line, exit 3.
deps-%:
	@MAKE_TARGET=chaos-$* $(T) "OS packages for $* ($(BACKEND) backend)" scripts/setup-system.sh --backend $(BACKEND) $*

chaos-%: deps-% $(VENV)/.installed
	@if [ "$$(scripts/setup-system.sh --path $(BACKEND))" = docker ]; then \
	  $(T) "local images for $* (where no registry answers)" $(BIN)/chaoskit images --system $*; fi
	$(BIN)/chaoskit run --system $* --backend $(BACKEND) -j $(JOBS)

# There is no official image with Patroni: with a Docker daemon and a registry, build one on the
# official postgres:15 image (chaoskit/images/postgres); without, `chaoskit images` builds it on Debian.
PG_IMAGE ?= $${CHAOSKIT_POSTGRES_IMAGE:-chaoskit/postgres-patroni:15}
postgres-image:
	@if docker info >/dev/null 2>&1 && ! docker image inspect $(PG_IMAGE) >/dev/null 2>&1; then \
	  echo "building $(PG_IMAGE) on the official postgres:15 image (adds Debian's Patroni, etcd, HAProxy)"; \
	  docker build -q --force-rm --build-arg BASE=postgres:15 -t $(PG_IMAGE) chaoskit/images/postgres >/dev/null 2>&1 \
	    || echo "could not build it on postgres:15 (no registry?): chaoskit images builds it on Debian's PostgreSQL"; \
	fi
chaos-postgres: postgres-image

# The suite runs every experiment on the local backend and the Docker parity tests on images
# built here (CI has no registry), pointed to by the CHAOSKIT_*_IMAGE variables. It runs on TEST_JOBS
# pytest-xdist workers side by side (default 2; each test's runs have their own subnets, leftover checks look
# at their own runs; tests marked xdist_group("cassandra") / ("opensearch") each keep to one worker): one at a
# time (TEST_JOBS=0) it takes ~54 min of tests with every system, on 2 workers ~28 min (see README).
test: setup images
	@status=0; $(T) "tests (pytest, TEST_JOBS=$(TEST_JOBS))" env $$($(BIN)/chaoskit images --env) \
	  CHAOSKIT_REQUIRE_INTEGRATION=1 CHAOSKIT_DOCKER_TESTS=1 \
	  $(BIN)/pytest -n $(TEST_JOBS) --dist loadgroup --durations=15 || status=$$?; \
	  echo "make test, step by step:"; cat $(CHAOSKIT_TIMINGS) 2>/dev/null; rm -f $(CHAOSKIT_TIMINGS); exit $$status

# the fast tier: no root, no Docker, no server binaries (the venv only)
test-unit: venv-deps $(VENV)/.installed
	$(BIN)/pytest tests/unit

lint: venv-deps $(VENV)/.installed
	$(BIN)/ruff check chaoskit tests benchmarks examples
	$(BIN)/mypy chaoskit

# `make bench-<system>` runs benchmarks/bench_<system>.py on both backends (local images unless overridden).
bench: bench-redis
bench-%: setup images
	env $$($(BIN)/chaoskit images --env) $(BIN)/python benchmarks/bench_$*.py --backends local docker

cleanup: venv-deps $(VENV)/.installed
	$(BIN)/chaoskit cleanup

clean:
	rm -rf $(VENV) runs *.egg-info build dist .make-timings
