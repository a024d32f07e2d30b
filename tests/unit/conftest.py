"""Unit tests never touch the user's chaoskit state: every test gets its own state directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def tmp_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHAOSKIT_SUBNET_CLAIMS", str(tmp_path / "claims"))
    return tmp_path / "state"
