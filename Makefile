# chaoskit -- `make chaos-redis` runs the Redis experiments, `make test` runs the test suite.
# Both do all their own set-up: OS packages (as root, via apt), a virtualenv and Python deps.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
BACKEND ?= auto
SYSTEMS = redis

.PHONY: setup system-deps chaos-redis test test-unit lint bench cleanup clean

setup: system-deps $(VENV)/.installed

system-deps:
	@scripts/setup-system.sh $(SYSTEMS)

$(VENV)/.installed: pyproject.toml
	@echo "creating virtualenv $(VENV) and installing chaoskit with test deps"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

chaos-redis: setup
	$(BIN)/chaoskit run --system redis --backend $(BACKEND)

test: setup
	CHAOSKIT_REQUIRE_INTEGRATION=1 $(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

lint: setup
	$(BIN)/ruff check chaoskit tests benchmarks
	$(BIN)/mypy chaoskit

bench: setup
	$(BIN)/python benchmarks/bench_redis.py

cleanup: setup
	$(BIN)/chaoskit cleanup

clean:
	rm -rf $(VENV) runs *.egg-info
