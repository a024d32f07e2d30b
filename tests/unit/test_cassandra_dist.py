"""The Cassandra jar fetch: once, atomic (nothing half-done after a failure), a one-line exit-3 error without tools."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from chaoskit.errors import InfrastructureError, MissingDependencyError
from chaoskit.systems.cassandra import dist
from chaoskit.systems.cassandra.settings import PARTITION_0_TOKEN, first_replica


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSKIT_CASSANDRA_HOME", str(tmp_path / "cache" / "cassandra-5.0.9"))
    monkeypatch.setattr(dist.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return tmp_path / "cache" / "cassandra-5.0.9"


def _maven(jars: list[str], code: int = 0) -> Any:
    """Stands in for ``mvn``: writes ``jars`` into -DoutputDirectory, exits ``code``."""
    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        out = Path(next(a for a in argv if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
        out.mkdir(parents=True)
        for jar in jars:
            (out / jar).write_text("jar")
        return subprocess.CompletedProcess(argv, code, "", "[ERROR] Could not resolve" if code else "")
    return run


def test_fetch_renames_a_complete_directory_into_place_once(home: Path) -> None:
    said: list[str] = []
    lib = dist.ensure_jars(said.append, run=_maven(["cassandra-all-5.0.9.jar", "jamm-0.4.0.jar"]))
    assert lib == home / "lib"
    assert sorted(p.name for p in lib.iterdir()) == ["cassandra-all-5.0.9.jar", "jamm-0.4.0.jar"]
    assert dist.fetched() and "Maven Central (67 MB, ~60 s, once)" in said[0]
    assert sorted(p.name for p in home.parent.iterdir()) == ["cassandra-5.0.9", "cassandra-5.0.9.lock"], \
        "no temporary directory left"
    assert dist.ensure_jars(said.append, run=_maven([], code=1)) == lib and len(said) == 2, "fetched only once"


@pytest.mark.parametrize("maven", [_maven(["guava.jar"], code=1), _maven(["guava.jar"])],
                         ids=["maven-fails", "no-cassandra-jar"])
def test_a_failed_fetch_leaves_nothing_behind(home: Path, maven: Any) -> None:
    with pytest.raises(InfrastructureError, match="fetching Cassandra 5.0.9 with Maven failed"):
        dist.ensure_jars(lambda _: None, run=maven)
    assert not dist.fetched() and [p.name for p in home.parent.iterdir()] == ["cassandra-5.0.9.lock"]


def test_missing_tools_are_one_line_exit_3(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist.shutil, "which", lambda tool: None if tool == "mvn" else f"/usr/bin/{tool}")
    with pytest.raises(MissingDependencyError, match=r"^`mvn` not found: apt-get install") as err:
        dist.ensure_jars(lambda _: None)
    assert err.value.exit_code == 3 and "\n" not in str(err.value)


def test_tokens_are_evenly_spaced_murmur3_tokens() -> None:
    assert dist.tokens(3) == [-(2**63), -(2**63) + 2**64 // 3, -(2**63) + 2 * (2**64 // 3)]
    assert all(-(2**63) <= t < 2**63 for t in dist.tokens(5))


def test_partition_0_token_is_the_drivers_murmur3_of_the_key() -> None:
    """The constant that lets validation find the first replica without the driver is the driver's token."""
    from cassandra.murmur3 import murmur3

    assert murmur3((0).to_bytes(4, "big", signed=True)) == PARTITION_0_TOKEN
    assert first_replica(dist.tokens(3)) == 1  # cassandra-2, the probe_node of the hinted-handoff experiments
    assert first_replica([10, -(2**63), 0]) == 2  # the first token at or after the key's, in ring order
    assert first_replica([-(2**63), PARTITION_0_TOKEN - 1]) == 0  # none after it: wraps round to the lowest
