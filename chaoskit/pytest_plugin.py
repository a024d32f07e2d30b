"""pytest plugin: run chaoskit experiments from your own test suite.

    def test_my_client_survives_failover(chaoskit_run):
        result = chaoskit_run("redis-primary-kill")
        assert result.verdict.value == "pass", result.journal["checks"]

    def test_my_code_with_a_fault(chaoskit_cluster):
        c = chaoskit_cluster("redis")                 # started now, torn down after the test
        with c.fault(chaoskit.Kill("primary")):
            ...

Registered through the ``pytest11`` entry point, so installing chaoskit is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.api import Cluster
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


@pytest.fixture
def chaoskit_cluster() -> Iterator[Callable[..., Cluster[Any, Any]]]:
    """Start a running cluster (``chaoskit_cluster("redis", replicas=2)``, same arguments as
    ``chaoskit.cluster``); every cluster a test started is healed and torn down after it."""
    started: list[Cluster[Any, Any]] = []

    def _start(system: str, backend: str = "auto", **settings: Any) -> Cluster[Any, Any]:
        cluster: Cluster[Any, Any] = Cluster(system, backend, progress=lambda msg: print(f"[chaoskit] {msg}"),
                                             **settings)
        started.append(cluster)
        return cluster.start()

    yield _start
    for cluster in reversed(started):
        cluster.stop()
