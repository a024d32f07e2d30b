"""Integration fixtures: an isolated ledger directory and a check that nothing is left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.util import chaoskit_containers, chaoskit_networks, netns_names, server_pids

DOCKER = pytest.param("docker", marks=pytest.mark.skipif(os.environ.get("CHAOSKIT_DOCKER_TESTS") != "1",
                                                        reason="set CHAOSKIT_DOCKER_TESTS=1"))


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(d))
    return d


@pytest.fixture
def no_leftovers(state_dir: Path) -> Iterator[None]:
    """Fail the test if it leaves a namespace, a server process or a ledger entry behind."""
    ns_before = netns_names()
    yield
    assert netns_names() - ns_before == set(), "network namespaces left behind"
    assert server_pids(state_dir) == set(), "server processes left behind"
    assert not list((state_dir / "runs").glob("*.json")), "ledger entries left behind"


@pytest.fixture
def docker_clean(state_dir: Path) -> Iterator[None]:
    """Fail the test if it leaves a chaoskit container or network behind."""
    before = (chaoskit_containers(), chaoskit_networks())
    yield
    assert (chaoskit_containers(), chaoskit_networks()) == before, "containers or networks left behind"


@pytest.fixture(params=["local", DOCKER])
def backend(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[str]:
    """Run the test on each backend (docker only with CHAOSKIT_DOCKER_TESTS=1), checking nothing is left."""
    name: str = request.param
    fixture = "no_leftovers" if name == "local" else "docker_clean"
    request.getfixturevalue(fixture)
    yield name
