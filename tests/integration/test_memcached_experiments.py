"""Memcached experiments against three real memcached 1.6 nodes (Debian's package, local backend).

One run per experiment (~21 s each), every assertion about it in one test; the figures are also recounted
from history.jsonl by the second reading (conftest). The crash-safety test SIGKILLs a runner and checks
``chaoskit cleanup`` ends its memcached processes.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from chaoskit.checkers import Verdict
from chaoskit.experiment import load
from chaoskit.runner import run
from chaoskit.systems.memcached.system import SYSTEM
from tests.integration.test_redis_experiments import _run
from tests.integration.util import (
    cleanup_cli,
    completed_ops,
    netns_names,
    run_ids,
    runner_killed_at,
    server_pids,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(any(shutil.which(b) is None for b in SYSTEM.binaries()),
                                 reason="needs memcached: make setup")]



def _homes(done: list[tuple[dict[str, Any], dict[str, Any]]], t0: float) -> dict[str, str]:
    """Key -> the node that served it last before the fault."""
    return {end["value"]["key"]: end["node"] for _, end in done if end["time"] < t0 and end["type"] == "ok"}


def _explain(journal: dict[str, Any]) -> str:
    return json.dumps({"checks": journal["checks"], "metrics": journal["metrics"], "faults": journal["faults"]},
                      indent=1)


def test_memcached_node_kill_keys_on_the_dead_node_miss_then_rehash(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("memcached-node-kill", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    t0, healed, dead = fault["applied_at"], fault["healed_at"], fault["target"]
    assert m["hit_ratio_before"] >= 0.99 and m["cache_errors"] == 0 and m["ops_info"] == 0
    assert 0.45 <= m["min_hit_ratio"] <= 0.85, "about a third of the keys were on the dead node"
    assert m["hit_ratio_end"] >= 0.95 and m["unexpected_misses"] > 50 and m["sets_not_stored"] > 0
    assert 1.5 <= m["rehash_s"] <= 5.0, "marked dead after 2 retries 1 s apart"
    done = completed_ops(result.out_dir)
    homes = _homes(done, t0)
    assert set(homes.values()) == {"memcached-1", "memcached-2", "memcached-3"}
    gone = {k for k, node in homes.items() if node == dead}
    assert 0.2 <= len(gone) / len(homes) <= 0.5, "rendezvous hashing gave the dead node about a third"
    first = [(inv, end) for inv, end in done if inv["f"] == "read" and t0 + 0.1 <= inv["time"] < t0 + 1.5]
    on_dead = [end for _, end in first if end["value"]["key"] in gone]
    on_live = [end for _, end in first if end["value"]["key"] not in gone]
    assert on_dead and not [e for e in on_dead if e["type"] != "ok" or e["value"]["hit"]], "misses, not errors"
    assert sum(e["value"]["hit"] for e in on_live) >= 0.95 * len(on_live), "the live nodes' keys still hit"
    moved = [end for _, end in done if end["type"] == "ok" and t0 + m["rehash_s"] + 0.5 < end["time"] < healed]
    assert moved and dead not in {e["node"] for e in moved}, "after the rehash nothing goes to the dead node"
    assert {e["node"] for e in moved if e["value"]["key"] in gone} <= set(homes.values()) - {dead}
    back = [end for _, end in done if end["type"] == "ok" and end["time"] > healed and end["node"] == dead]
    assert back, "dead_timeout later the client put the restarted node back into its hash"
    assert set(journal["roles_after"].values()) == {"up"}
    assert journal["metrics"]["lost_writes"] is None and journal["metrics"]["stale_reads"] is None


def test_memcached_node_kill_raise_errors_reach_the_caller_until_marked_dead(tmp_path: Path,
                                                                          no_leftovers: None) -> None:
    result = _run("memcached-node-kill-raise", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    t0 = journal["faults"][0]["applied_at"]
    errors = [end for _, end in completed_ops(result.out_dir) if end["type"] != "ok" and end.get("error")]
    assert len(errors) == m["cache_errors"] and 3 <= len(errors) <= 30, errors
    assert all(t0 <= e["time"] <= t0 + m["rehash_s"] + 0.5 for e in errors), "errors stop once marked dead"
    assert {e["error"].split(":")[0] for e in errors} <= {"ConnectionRefusedError", "ConnectionResetError",
                                                          "MemcacheUnexpectedCloseError", "BrokenPipeError"}
    assert 0.45 <= m["min_hit_ratio"] <= 0.85 and m["hit_ratio_end"] >= 0.95


def test_cleanup_after_sigkill_ends_the_memcached_nodes(tmp_path: Path, state_dir: Path) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "memcached-node-kill") as run_id:
        assert len(server_pids(state_dir)) == 3, "three memcached outlive the SIGKILLed runner"
        assert f"run {run_id}" in cleanup_cli(state_dir)
        assert server_pids(state_dir) == set() and netns_names(state_dir) == set() and run_ids(state_dir) == []


@pytest.mark.docker
def test_memcached_node_kill_on_docker(tmp_path: Path, docker_clean: None) -> None:
    """The official image's stand-in (chaoskit/memcached:1.6, Debian's 1.6.18): the same hypothesis holds.
    A killed container's address does not refuse, it times out (0.5 s): the rehash takes ~3.7 s, not ~2.1."""
    result = run(load("memcached-node-kill"), "docker", tmp_path / "docker", progress=print)
    journal, m = result.journal, result.journal["metrics"]
    assert journal["backend"] == "docker"
    assert result.verdict is Verdict.PASS, _explain(journal)
    assert m["cache_errors"] == 0 and 0.4 <= m["min_hit_ratio"] <= 0.85 and m["hit_ratio_end"] >= 0.95
    fault = journal["faults"][0]
    late = [end for _, end in completed_ops(result.out_dir) if end["type"] == "ok"
            and fault["applied_at"] + m["rehash_s"] + 0.5 < end["time"] < fault["healed_at"]]
    assert late and fault["target"] not in {e["node"] for e in late}


def test_a_users_hash_client_sees_misses_not_errors_while_a_node_is_dead(state_dir: Path, no_leftovers: None) -> None:
    """The Python API: ``cluster("memcached").client()`` is the recommended HashClient (ignore_exc)."""
    import chaoskit

    with chaoskit.cluster("memcached", backend="local") as c:
        mc = c.client()
        keys = [f"user{i}" for i in range(30)]
        assert all(mc.set(k, b"v") for k in keys)
        with c.fault(chaoskit.Kill("memcached-2")):
            got = {k: mc.get(k) for k in keys}  # no exception: the dead node's keys are misses
            assert 3 <= sum(v is None for v in got.values()) <= 20, got
            assert set(got.values()) == {None, b"v"}
        deadline = time.monotonic() + 10  # healed: restarted, answering a moment later
        while set(c.roles().values()) != {"up"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.roles() == {"memcached-1": "up", "memcached-2": "up", "memcached-3": "up"}
