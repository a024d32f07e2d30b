"""DNS endpoints against real dnsmasq, Patroni and Sentinel: records follow the failover through the systems'
own hooks; a client honouring the TTL follows them, a client caching the address for 30 s does not; a
SIGKILLed runner's dnsmasq is ended by `chaoskit cleanup`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoskit.backends.ledger import Ledger, process_running
from chaoskit.checkers import Verdict
from chaoskit.runner import RunResult
from tests.integration.test_redis_experiments import _explain, _run, recount_lost
from tests.integration.util import (
    cleanup_cli,
    netns_names,
    runner_killed_at,
    server_pids,
)

pytestmark = pytest.mark.integration


def _ops(result: RunResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (result.out_dir / "history.jsonl").read_text().splitlines()]


def _record_changes(result: RunResult, label: str) -> list[dict[str, Any]]:
    """The dns-update events of ``label`` after the fault (what the run's dnsmasq answered, polled)."""
    fault_at = result.journal["rto"]["fault_at"]
    return [e for e in result.journal["events"] if e["kind"] == "dns-update"
            and e["detail"].startswith(f"{label} -> ") and e["time"] >= fault_at]


def _assert_followed(result: RunResult, label: str) -> None:
    """The record moved to the promoted node, after the promotion, and the client wrote there."""
    journal, rto = result.journal, result.journal["rto"]
    assert result.verdict is Verdict.PASS, _explain(result)
    old, new = journal["faults"][0]["target"], rto["new_primary"]
    assert new not in (None, old)
    changes = _record_changes(result, label)
    assert [e["node"] for e in changes] == [new], changes
    assert rto["promoted_at"] - 0.5 <= changes[0]["time"] == rto["dns_updated_at"] <= rto["recovered_at"]
    served = {op.get("node") for op in _ops(result) if op["f"] == "write" and op["type"] == "ok"}
    assert served == {old, new}, served
    m = journal["metrics"]
    assert m["lost_writes"] == 0 and recount_lost(result.out_dir) == (0, m["acked_writes"])


@pytest.mark.docker_extra
def test_postgres_writer_endpoint_follows_the_failover_and_a_cached_address_does_not(
        tmp_path: Path, backend: str) -> None:
    endpoint = _run("postgres-dns-endpoint-failover", tmp_path, attempts=2, backend=backend)
    _assert_followed(endpoint, "writer")
    # the reader name follows too: the promoted node left it (its callback), the dead one was never in it
    # (it was the primary), so it names the one remaining replica -- until the old primary rejoins
    readers = _record_changes(endpoint, "reader")
    old, new = endpoint.journal["faults"][0]["target"], endpoint.journal["rto"]["new_primary"]
    assert readers and readers[0]["node"] not in (None, old, new), readers
    assert len(readers[-1]["detail"].split(" -> ")[1].split(",")) == 2, readers  # two replicas again
    e_rto = endpoint.journal["rto"]
    ttl = 5.0
    # honouring the TTL costs at most one TTL after the record changed (the client's next lookup)
    assert e_rto["recovered_at"] - e_rto["dns_updated_at"] <= ttl + 1.0, e_rto

    cached = _run("postgres-dns-cached-client", tmp_path, attempts=2, backend=backend)
    _assert_followed(cached, "writer")
    c_rto = cached.journal["rto"]
    # each worker resolved the name at its first op and kept the address 30 s: recovery is at that expiry,
    # long after the record changed -- the extra phase the report marks between "DNS updated" and recovery
    first_op = min(op["time"] for op in _ops(cached) if op["f"] == "write")
    assert first_op + 30.0 - 0.5 <= c_rto["recovered_at"] <= first_op + 30.0 + 3.0, (first_op, c_rto)
    assert c_rto["recovered_at"] - c_rto["dns_updated_at"] > 10.0, c_rto
    extra = cached.journal["metrics"]["rto_s"] - endpoint.journal["metrics"]["rto_s"]
    remaining = first_op + 30.0 - c_rto["fault_at"]  # what was left of the cache when the primary died
    # the cached client's RTO is what remained of its cache; the endpoint client's is the failover plus at
    # most one TTL (<= 20 s by its hypothesis): the difference is what remained minus that
    assert remaining - 20.5 <= extra <= remaining - endpoint.journal["metrics"]["rto_s"] + 3.5, (extra, remaining)
    assert extra > 5.0, (extra, remaining)
    print(f"DNS figures: endpoint rto_s {endpoint.journal['metrics']['rto_s']}, cached rto_s "
          f"{cached.journal['metrics']['rto_s']} (extra {extra:.2f} s; cache left at the kill {remaining:.2f} s)")


def test_redis_primary_endpoint_follows_sentinel(tmp_path: Path, backend: str) -> None:
    """On docker too: dnsmasq in a container of the run (chaoskit/dnsmasq), Sentinel's script writing through the
    bind mount."""
    result = _run("redis-primary-endpoint-dns", tmp_path, attempts=2, backend=backend)
    _assert_followed(result, "primary")
    rto = result.journal["rto"]
    switches = [e["time"] for e in result.journal["events"] if e["kind"] == "+switch-master"]
    assert switches and rto["dns_updated_at"] >= min(switches) - 0.2  # the script runs on Sentinel's switch
    assert rto["recovered_at"] - rto["dns_updated_at"] <= 5.0 + 1.0, rto


def test_cleanup_after_sigkill_ends_dnsmasq(tmp_path: Path, state_dir: Path, no_leftovers: None) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "redis-primary-endpoint-dns") as run_id:
        (entry,) = [e for e in Ledger.load(state_dir / "runs" / f"{run_id}.json").entries if e.name == "dnsmasq"]
        assert entry.pid is not None and process_running(entry.pid, entry.start_time), "dnsmasq outlives its runner"
        cleanup_cli(state_dir)
        assert not process_running(entry.pid, entry.start_time), "cleanup must end dnsmasq"
        assert netns_names(state_dir) == set() and server_pids(state_dir) == set()
