"""pytest plugin: run chaoskit experiments from your own test suite.

    def test_my_client_survives_failover(chaoskit_run):
        result = chaoskit_run("redis-primary-kill")
        assert result.verdict.value == "pass", result.journal["checks"]

Registered through the ``pytest11`` entry point, so installing chaoskit is enough.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaoskit.catalog import load
from chaoskit.experiment import Experiment
from chaoskit.runner import RunResult, run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaoskit: runs a chaoskit experiment against real servers")


@pytest.fixture
def chaoskit_run(tmp_path: Path) -> Callable[..., RunResult]:
    """Run an experiment (name, path or Experiment); outputs go under the test's tmp_path."""

    def _run(experiment: str | Experiment, backend: str = "auto") -> RunResult:
        exp = load(experiment) if isinstance(experiment, str) else experiment
        return run(exp, backend, tmp_path / exp.name, progress=lambda msg: print(f"[chaoskit] {msg}"))

    return _run
