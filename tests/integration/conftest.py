"""Integration fixtures: an isolated ledger directory, a check that nothing is left behind, and a second
reading of every run a test makes (its figures recounted from history.jsonl by ``chaoskit.recount``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoskit.recount import KEYS, disagreements, recount
from tests.integration.util import chaoskit_containers, chaoskit_networks, netns_names, server_pids

# the docker parameter of a test run on both backends (it runs with CHAOSKIT_DOCKER_TESTS=1 or all; a test
# marked docker_extra runs it only with all: tests/docker_tests.py)
DOCKER = pytest.param("docker", marks=pytest.mark.docker)


SECOND_READINGS: list[str] = []
_WORKER_READINGS: list[int] = []  # under pytest-xdist: what each worker recounted


@pytest.fixture(autouse=True)
def second_reading(tmp_path: Path) -> Iterator[None]:
    """After the test, recount every run it wrote and fail on any figure the journal states otherwise."""
    yield
    problems = []
    for journal in sorted(tmp_path.rglob("journal.json")):
        run_dir = journal.parent
        SECOND_READINGS.append(str(run_dir))
        if differ := disagreements(run_dir):
            metrics = json.loads(journal.read_text())["metrics"]
            problems.append(f"{run_dir}: {'; '.join(differ)}\n  journal: {({k: metrics.get(k) for k in KEYS})}"
                            f"\n  recount: {recount(run_dir)}")
    assert not problems, "the second reading disagrees with the journal:\n" + "\n".join(problems)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["second_readings"] = len(SECOND_READINGS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _WORKER_READINGS.append(int(getattr(node, "workeroutput", {}).get("second_readings", 0)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if count := len(SECOND_READINGS) + sum(_WORKER_READINGS):
        terminalreporter.write_line(f"second reading: {count} run(s) recounted from history.jsonl; "
                                    "any disagreement fails its test")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(d))
    return d


@pytest.fixture
def no_leftovers(state_dir: Path) -> Iterator[None]:
    """Fail the test if a run it made leaves a namespace, a server process or a ledger entry behind.
    Only this test's runs count (those ledgered in its own state directory), so tests can run side by side."""
    yield
    assert netns_names(state_dir) == set(), "network namespaces left behind"
    assert server_pids(state_dir) == set(), "server processes left behind"
    assert not list((state_dir / "runs").glob("*.json")), "ledger entries left behind"


@pytest.fixture
def docker_clean(state_dir: Path) -> Iterator[None]:
    """Fail the test if a run it made leaves a chaoskit container or network behind."""
    yield
    assert chaoskit_containers(state_dir) == set() and chaoskit_networks(state_dir) == set(), \
        "containers or networks left behind"


@pytest.fixture(params=["local", DOCKER])
def backend(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[str]:
    """Run the test on each backend (docker per CHAOSKIT_DOCKER_TESTS), checking nothing is left."""
    name: str = request.param
    fixture = "no_leftovers" if name == "local" else "docker_clean"
    request.getfixturevalue(fixture)
    yield name
