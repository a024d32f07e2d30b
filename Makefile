# chaoskit -- `make chaos-redis` runs the Redis experiments, `make test` runs the test suite.
# Both do all their own set-up: OS packages (as root, via apt), a virtualenv and Python deps.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
BACKEND ?= auto
SYSTEMS = redis postgres

.PHONY: setup system-deps docker images chaos-redis chaos-postgres test test-unit lint bench cleanup clean

setup: system-deps $(VENV)/.installed

system-deps:
	@scripts/setup-system.sh $(SYSTEMS)

# Docker engine (installed and started when missing) and locally built images (cached).
docker:
	@scripts/ensure-docker.sh

images: docker
	@scripts/build-images.sh

$(VENV)/.installed: pyproject.toml
	@echo "creating virtualenv $(VENV) and installing chaoskit with test deps"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

chaos-redis: setup
	$(BIN)/chaoskit run --system redis --backend $(BACKEND)

chaos-postgres: setup
	$(BIN)/chaoskit run --system postgres --backend local

# The suite runs every experiment on the local backend and the Docker parity tests on images
# built here (CI has no registry), pointed to by CHAOSKIT_REDIS_IMAGE.
test: setup images
	CHAOSKIT_REQUIRE_INTEGRATION=1 CHAOSKIT_DOCKER_TESTS=1 CHAOSKIT_REDIS_IMAGE=chaoskit/redis:7 \
	  CHAOSKIT_POSTGRES_IMAGE=chaoskit/postgres-patroni:15 $(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

lint: setup
	$(BIN)/ruff check chaoskit tests benchmarks
	$(BIN)/mypy chaoskit

bench: setup images
	CHAOSKIT_REDIS_IMAGE=$${CHAOSKIT_REDIS_IMAGE:-chaoskit/redis:7} $(BIN)/python benchmarks/bench_redis.py --backends local docker

cleanup: setup
	$(BIN)/chaoskit cleanup

clean:
	rm -rf $(VENV) runs *.egg-info
