"""Integration fixtures: an isolated ledger directory and a check that nothing is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.util import netns_names, server_pids


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(d))
    return d


@pytest.fixture
def no_leftovers(state_dir: Path) -> Iterator[None]:
    """Fail the test if it leaves a namespace, a server process or a ledger entry behind."""
    ns_before, pids_before = netns_names(), server_pids()
    yield
    assert netns_names() - ns_before == set(), "network namespaces left behind"
    assert server_pids() - pids_before == set(), "server processes left behind"
    assert not list((state_dir / "runs").glob("*.json")), "ledger entries left behind"
