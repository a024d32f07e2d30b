"""pytest plugin: run chaoskit experiments from your own test suite.

    def test_my_client_survives_failover(chaoskit_run):
        result = chaoskit_run("redis-primary-kill")
        assert result.verdict.value == "pass", result.journal["checks"]

    def test_my_code_with_a_fault(chaoskit_cluster):
        c = chaoskit_cluster("redis")                 # started now, torn down after the test
        with c.fault(chaoskit.Kill("primary")):
            ...

Registered through the ``pytest11`` entry point, so installing chaoskit is enough. Every pytest session
of a project that installs chaoskit loads this module: it imports nothing of chaoskit's own (nor any
driver) until a test uses one of its fixtures (``benchmarks/bench_import.py`` measures what it costs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chaoskit.api import Cluster
    from chaoskit.clients.user import Factory
    from chaoskit.experiment import Experiment
    from chaoskit.runner import RunResult


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaoskit-backend", default="auto", choices=("auto", "local", "docker"),
                     help="where chaoskit fixtures start their topologies (default: auto)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaoskit: runs a chaoskit experiment against real servers")


@pytest.fixture
def chaoskit_backend(request: pytest.FixtureRequest) -> str:
    """The backend named by ``--chaoskit-backend`` (auto | local | docker)."""
    return str(request.config.getoption("--chaoskit-backend"))


@pytest.fixture
def chaoskit_run(tmp_path: Path, chaoskit_backend: str) -> Callable[..., RunResult]:
    """Run an experiment (a built-in name, a path or an ``Experiment``), optionally with your own client
    (``client=make_client``, see :mod:`chaoskit.clients.user`); outputs go under the test's tmp_path.

    A hypothesis that does not hold fails the test with the check table (``expect_pass=False`` returns the
    result instead), and so does a figure that the second reading (:mod:`chaoskit.recount`) counts
    otherwise from history.jsonl; bad input (a factory that does not import, a client without the protocol) fails it
    with one line.
    """

    def _run(experiment: str | Experiment, backend: str | None = None, *, client: Factory | None = None,
             expect_pass: bool = True) -> RunResult:
        from chaoskit.catalog import load
        from chaoskit.checkers import Verdict
        from chaoskit.console import check_table
        from chaoskit.errors import UsageError
        from chaoskit.recount import disagreements
        from chaoskit.runner import run

        try:
            exp = load(experiment) if isinstance(experiment, str) else experiment
            result = run(exp, backend or chaoskit_backend, tmp_path / exp.name,
                         progress=lambda msg: print(f"[chaoskit] {msg}"), client=client)
        except UsageError as exc:
            raise pytest.fail.Exception(f"chaoskit: {exc}", pytrace=False) from None  # the one line, no chain
        if differ := disagreements(result.out_dir):  # every figure is recounted from history.jsonl
            pytest.fail(f"{exp.name}: the second reading disagrees with the journal: {'; '.join(differ)}",
                        pytrace=False)
        if expect_pass and result.verdict is not Verdict.PASS:
            pytest.fail(f"{exp.name}: {result.verdict.value.upper()} ({result.out_dir}/report.html)\n"
                        f"{check_table(result.checks, color=False)}", pytrace=False)
        return result

    return _run


@pytest.fixture
def chaoskit_cluster(chaoskit_backend: str) -> Iterator[Callable[..., Cluster[Any, Any]]]:
    """Start a running cluster (``chaoskit_cluster("redis", replicas=2)``, same arguments as
    ``chaoskit.cluster``); every cluster a test started is healed and torn down after it."""
    started: list[Cluster[Any, Any]] = []

    def _start(system: str, backend: str | None = None, **settings: Any) -> Cluster[Any, Any]:
        from chaoskit.api import Cluster
        from chaoskit.errors import UsageError

        try:  # bad input (an unknown system or setting, a driver not installed): one line, no traceback
            cluster: Cluster[Any, Any] = Cluster(system, backend or chaoskit_backend,
                                                 progress=lambda msg: print(f"[chaoskit] {msg}"), **settings)
        except UsageError as exc:
            raise pytest.fail.Exception(f"chaoskit: {exc}", pytrace=False) from None  # the one line, no chain
        started.append(cluster)
        return cluster.start()

    try:
        yield _start
    finally:
        for cluster in reversed(started):
            cluster.stop()
