"""Which work directories a non-root docker run must hand back before removing them (no daemon needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaoskit.backends.docker_workdir import foreign_paths, hand_back, workdir_of
from chaoskit.backends.ledger import Ledger


def test_own_files_are_not_foreign_and_one_of_another_user_is(tmp_path: Path) -> None:
    data = tmp_path / "pg-1" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15")
    assert not foreign_paths(tmp_path)
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    os.chown(data, 4242, 4242)  # what the postgres container leaves: its data directory, its uid
    assert foreign_paths(tmp_path)


def test_the_work_directory_is_the_ledgers_first_dir_and_root_never_hands_back(tmp_path: Path) -> None:
    ledger = Ledger.create("wd0001", "docker", "10.250.1.0/24")
    assert workdir_of(ledger) is None
    ledger.record("dir", str(tmp_path))
    ledger.record("container", "ck-wd0001-redis-1")
    ledger.record("dir", str(tmp_path / "later"))
    assert workdir_of(ledger) == tmp_path
    if os.geteuid() == 0:  # root removes anything itself: no client is even asked
        assert hand_back(object(), ledger, "io.chaoskit.run") is False
    ledger.forget()
