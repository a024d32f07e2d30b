"""Cache-aside over Postgres (chaoskit.cache_aside): Patroni + one real memcached, local backend.

One run per experiment (~40 s each with the failover, ~17 s without), every assertion about it in one
test; the figures are also recounted from history.jsonl by the second reading (conftest) and compared
here too. The crash-safety test SIGKILLs a runner of a cache run and checks ``chaoskit cleanup`` ends its
memcached with the rest. The docker run is marked docker_extra (CHAOSKIT_DOCKER_TESTS=all).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from chaoskit.checkers import Verdict
from chaoskit.experiment import load
from chaoskit.recount import disagreements, recount
from chaoskit.runner import run
from chaoskit.systems.postgres.system import SYSTEM
from tests.integration.test_redis_experiments import _run
from tests.integration.util import cleanup_cli, completed_ops, netns_names, run_ids, runner_killed_at, server_pids

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(any(shutil.which(b) is None for b in [*SYSTEM.binaries(), "memcached"]),
                                 reason="needs Patroni/Postgres and memcached: make setup")]


def _explain(journal: dict[str, Any]) -> str:
    return json.dumps({"checks": journal["checks"], "metrics": journal["metrics"], "faults": journal["faults"]},
                      indent=1)


def _final(run_dir: Path) -> dict[str, dict[str, int]]:
    lines = [json.loads(s) for s in (run_dir / "history.jsonl").read_text().splitlines()]
    (final,) = [x["value"] for x in lines if x["f"] == "final-read" and x["type"] == "ok"]
    return final


def _old_primary_acks(run_dir: Path, old: str, t0: float) -> set[int]:
    """Values of writes acknowledged by the isolated old primary after the fault."""
    return {inv["value"] for inv, end in completed_ops(run_dir)
            if inv["f"] == "write" and end["type"] == "ok" and end["node"] == old and end["time"] > t0}


def test_failover_loss_the_cache_keeps_serving_lost_values(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("cache-aside-after-failover-loss", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    final = _final(result.out_dir)
    db, cache = final["db"], final["cache"]
    ahead = {k: v for k, v in cache.items() if v > db.get(k, 0)}
    assert len(ahead) == m["cache_ahead"] >= 1
    assert set(ahead.values()) <= _old_primary_acks(result.out_dir, fault["target"], fault["applied_at"]), \
        "every value the cache is ahead with was acknowledged by the isolated primary"
    assert m["lost_writes"] >= m["cache_ahead"], "write-through cached every acked write (no cache errors)"
    assert m["cache_aside_errors"] == 0 and m["cache_flushes"] == 0
    assert m["served_lost"] >= 1, "reads after heal were served lost values from the cache"
    again = recount(result.out_dir)
    assert (again["lost_writes"], again["cache_ahead"], again["served_lost"]) == \
        (m["lost_writes"], m["cache_ahead"], m["served_lost"])
    assert disagreements(result.out_dir) == []
    report = (result.out_dir / "report.html").read_text()
    assert "Cache vs database at the end" in report and "Reads over time" in report
    bar = re.search(r"<title>cache ahead — serves a value the database lost[^<]*: (\d+)</title>", report)
    assert bar is not None and int(bar.group(1)) == m["cache_ahead"], "the report's bar shows the checker's count"
    assert f"reads after heal served a lost value <b>{m['served_lost']:,}</b>" in report


def test_failover_invalidate_the_database_loses_them_the_cache_does_not_serve_them(tmp_path: Path,
                                                                                   no_leftovers: None) -> None:
    result = _run("cache-aside-after-failover-invalidate", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    final = _final(result.out_dir)
    assert final["cache"] and not [k for k, v in final["cache"].items() if v > final["db"].get(k, 0)]
    assert m["lost_writes"] >= 1 and m["cache_ahead"] == 0
    flushed = [end for _, end in completed_ops(result.out_dir) if end["value"].get("flushed")]
    assert len(flushed) == m["cache_flushes"] >= 1
    assert all(end["time"] > fault["applied_at"] for end in flushed), "no flush before the failover"
    assert m["served_lost"] <= 2, "at most a read racing a late writer's flush"
    assert recount(result.out_dir)["cache_ahead"] == 0 and disagreements(result.out_dir) == []


def test_lazy_loading_serves_stale_values_write_through_does_not(tmp_path: Path, no_leftovers: None) -> None:
    """No fault: 20 registers, lazy loading (ttl 0) vs write-through."""
    lazy = _run("cache-aside-lazy-stale", tmp_path)
    fresh = _run("cache-aside-write-through-fresh", tmp_path)
    for result in (lazy, fresh):
        assert result.verdict is Verdict.PASS, _explain(result.journal)
        assert disagreements(result.out_dir) == []
    lm, fm = lazy.journal["metrics"], fresh.journal["metrics"]
    assert lm["stale_reads"] >= 0.5 * lm["reads_checked"] > 0, "most checked reads were served an old value"
    final = _final(lazy.out_dir)
    behind = [k for k, v in final["cache"].items() if v < final["db"][k]]
    assert len(behind) == lm["cache_behind"] >= 1
    stale = [end for _, end in completed_ops(lazy.out_dir) if end["f"] == "read" and end["value"]["found"] is False]
    assert stale and all(e["value"]["source"] == "cache" for e in stale), "the stale values came from the cache"
    assert fm["stale_reads"] == 0 and fm["reads_checked"] > 0 and fm["divergent_keys"] == 0


def test_cleanup_after_sigkill_ends_the_cache_node(tmp_path: Path, state_dir: Path) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "cache-aside-after-failover-loss") as run_id:
        comms = {Path(f"/proc/{p}/comm").read_text().strip() for p in server_pids(state_dir)}
        assert "memcached" in comms, "the cache outlives the SIGKILLed runner"
        assert f"run {run_id}" in cleanup_cli(state_dir)
        assert server_pids(state_dir) == set() and netns_names(state_dir) == set() and run_ids(state_dir) == []


@pytest.mark.docker
@pytest.mark.docker_extra  # the cache container beside Patroni's (~50 s)
def test_failover_loss_on_docker(tmp_path: Path, docker_clean: None) -> None:
    """The cache runs the Memcached system's image (CHAOSKIT_MEMCACHED_IMAGE) on the run's network."""
    result = run(load("cache-aside-after-failover-loss"), "docker", tmp_path / "docker", progress=print)
    journal, m = result.journal, result.journal["metrics"]
    assert journal["backend"] == "docker" and result.verdict is Verdict.PASS, _explain(journal)
    assert m["cache_ahead"] >= 1 and m["served_lost"] >= 1 and disagreements(result.out_dir) == []
