"""Postgres experiments against real Patroni + etcd + PostgreSQL 15 on both backends (namespaces, containers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoskit.checkers import Verdict
from chaoskit.experiment import load
from chaoskit.runner import run
from tests.integration.test_redis_experiments import _run, recount_lost

pytestmark = pytest.mark.integration


def test_postgres_primary_kill_promotes_a_replica_without_loss(tmp_path: Path, backend: str) -> None:
    result = _run("postgres-primary-kill", tmp_path, attempts=2, backend=backend)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    m = journal["metrics"]
    assert m["acked_writes"] > 300 and m["lost_writes"] == 0
    assert recount_lost(result.out_dir) == (m["lost_writes"], m["acked_writes"])
    old = journal["faults"][0]["target"]
    assert journal["rto"]["new_primary"] not in (None, old)
    assert journal["roles_after"][old] == "replica", "the restarted old primary rejoined as a replica"


@pytest.mark.docker_extra
def test_postgres_async_failover_loses_acknowledged_commits(tmp_path: Path, backend: str) -> None:
    result = run(load("postgres-async-failover-loss"), backend, tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    assert recount_lost(result.out_dir) == (journal["metrics"]["lost_writes"], journal["metrics"]["acked_writes"])
    assert journal["metrics"]["lost_writes"] > 0


@pytest.mark.docker_extra
def test_postgres_switchover_pauses_briefly_without_errors(tmp_path: Path, backend: str) -> None:
    result = run(load("postgres-switchover"), backend, tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    assert journal["rto"]["new_primary"] != journal["faults"][0]["target"]


def test_postgres_sync_replication_loses_nothing_under_the_same_partition(tmp_path: Path, backend: str) -> None:
    result = run(load("postgres-sync-failover-no-loss"), backend, tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    m = journal["metrics"]
    assert m["lost_writes"] == 0 and m["acked_writes"] > 300
    assert m["write_p50_ms"] is not None  # the latency cost is reported beside the async run's


@pytest.mark.docker_extra
def test_postgres_reader_endpoint_is_stale_under_lag(tmp_path: Path, backend: str) -> None:
    result = run(load("postgres-replica-read-lag"), backend, tmp_path / "out", progress=print)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"]}, indent=1)
    m = journal["metrics"]
    assert m["stale_reads"] > 0 and m["max_lag_ms"] > 100


def test_postgres_proxy_endpoint_follows_the_failover(tmp_path: Path, backend: str) -> None:
    result = _run("postgres-proxy-failover", tmp_path, attempts=2, backend=backend)
    journal = result.journal
    assert result.verdict is Verdict.PASS, json.dumps({"checks": journal["checks"], "rto": journal["rto"]}, indent=1)
    ops = [json.loads(line) for line in (result.out_dir / "history.jsonl").read_text().splitlines()]
    served = {op.get("node") for op in ops if op["f"] == "write" and op["type"] == "ok"}
    assert served == {journal["faults"][0]["target"], journal["rto"]["new_primary"]}, served
