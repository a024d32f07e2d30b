"""OpenSearch experiments against a real 3-node cluster (OpenSearch 2.19.6 from Maven Central, local backend;
one on the docker backend too).

Each cluster takes ~10-40 s to be green on this 2-core machine (more under other tests' load): one run per
experiment, every assertion about it in one test. The crash-safety test SIGKILLs a runner and checks
``chaoskit cleanup`` ends its JVMs and removes their data directories.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from opensearchpy.exceptions import TransportError

import chaoskit
from chaoskit.catalog import load
from chaoskit.checkers import Verdict
from chaoskit.clients.opensearch import attempt_outcome
from chaoskit.errors import InfrastructureError
from chaoskit.history import History, OpType
from chaoskit.images import build_local
from chaoskit.report_evidence import WINDOW_TITLE
from chaoskit.runner import run
from chaoskit.systems.opensearch import node as opensearch_node
from chaoskit.systems.opensearch.faults import CloseIndex, ExcludeNode
from chaoskit.systems.opensearch.system import SYSTEM
from tests.integration.test_redis_experiments import _run, recount_lost
from tests.integration.util import (
    CHAOSKIT,
    chaoskit_containers,
    chaoskit_networks,
    cleanup_cli,
    cli_env,
    completed_ops,
    netns_names,
    run_ids,
    runner_killed_at,
    server_pids,
)

# one cluster at a time under pytest-xdist (--dist loadgroup), next to the Cassandra rings' worker
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("opensearch"),
              pytest.mark.skipif(any(shutil.which(b) is None for b in SYSTEM.binaries()),
                                 reason="needs java 17 (and mvn until the zip is fetched): make setup")]


# what the isolated node logs as the cluster takes it back (ClusterApplierService on a node that follows)
REJOINED = re.compile(r"cluster-manager node changed|added \{|master node changed", re.IGNORECASE)
SERVER_STAMP = re.compile(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d),(\d{3})\]")  # the image's console pattern


def _explain(journal: dict[str, Any]) -> str:
    return json.dumps({"checks": journal["checks"], "rto": journal["rto"], "events": journal["events"][:30]}, indent=1)



def _events(journal: dict[str, Any], kind: str, after: float = 0.0) -> list[dict[str, Any]]:
    return [e for e in journal["events"] if e["kind"] == kind and e["time"] >= after]


def _no_loss(result: Any) -> None:
    m = result.journal["metrics"]
    assert m["lost_writes"] == 0 and recount_lost(result.out_dir) == (0, m["acked_writes"])


def test_primary_holder_kill_promotes_replicas_and_loses_nothing(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("opensearch-primary-holder-kill", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    t0, dead = fault["applied_at"], fault["target"]
    promoted = _events(journal, "primary-promoted", t0)
    assert promoted and all(f"(was on {dead})" in e["detail"] for e in promoted), promoted
    yellow, green = _events(journal, "health-yellow", t0), _events(journal, "health-green", fault["healed_at"])
    assert yellow and yellow[0]["time"] - t0 < 5, "a killed node is noticed at once: yellow"
    assert green, "green again once the restarted node's copies are recovered"
    assert _events(journal, "node-left", t0)[0]["node"] == dead
    assert m["acked_writes"] > 300 and m["ops_fail"] == 0
    oks = [end for _, end in completed_ops(result.out_dir)
           if end["type"] == "ok" and t0 + 2 <= end["time"] <= fault["healed_at"]]
    assert len(oks) > 100 and dead not in {e.get("node") for e in oks}, "writes go on through the other nodes"
    _no_loss(result)


def test_cluster_manager_kill_re_elects_and_writes_go_on(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("opensearch-cluster-manager-kill", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    t0 = fault["applied_at"]
    assert fault["role"] == "cluster-manager"
    lost, elected = _events(journal, "cluster-manager-lost", t0), _events(journal, "cluster-manager-elected", t0)
    assert lost and lost[0]["node"] == fault["target"]
    assert elected and elected[0]["time"] - t0 < 5, "re-elected within seconds"
    assert fault["target"] not in elected[0]["detail"].split(" elected")[0]
    assert m["ops_fail"] == 0 and m["unavailable_s"] <= 10
    assert journal["roles_after"][fault["target"]] in ("data", "cluster-manager"), "it rejoined"
    _no_loss(result)


def test_search_before_refresh_is_stale_where_wait_for_and_realtime_get_are_not(tmp_path: Path,
                                                                                no_leftovers: None) -> None:
    """The material's "typically eventual": a search right after an acknowledged write misses it; with
    refresh=wait_for, or reading by a realtime GET, it never does."""
    before = _run("opensearch-search-before-refresh", tmp_path)
    m = before.journal["metrics"]
    assert before.verdict is Verdict.PASS, _explain(before.journal)
    assert m["stale_reads"] > 0 and m["reads_checked"] > 30 and m["max_lag_ms"] < 5000
    for name in ("opensearch-search-after-refresh-wait-for", "opensearch-realtime-get"):
        fresh = _run(name, tmp_path)
        assert fresh.verdict is Verdict.PASS, _explain(fresh.journal)
        assert fresh.journal["metrics"]["stale_reads"] == 0 and fresh.journal["metrics"]["reads_checked"] > 30
        _no_loss(fresh)
    _no_loss(before)


def test_single_host_client_is_down_for_the_whole_window(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("opensearch-single-host-client", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    window = [end for _, end in completed_ops(result.out_dir)
              if fault["applied_at"] + 0.5 <= end["time"] <= fault["healed_at"]]
    assert window and not [e for e in window if e["type"] == "ok"], "no write succeeds while its one node is down"
    refused = [e for e in window if e["type"] == "fail"]
    assert refused and all("refused" in e["error"].lower() for e in refused), refused[:3]
    assert _events(journal, "health-yellow", fault["applied_at"]), "while the cluster itself carries on"
    assert m["unavailable_s"] >= fault["healed_at"] - fault["applied_at"] - 1
    _no_loss(result)


def test_disk_flood_stage_refuses_writes_definitely(tmp_path: Path, no_leftovers: None) -> None:
    result = _run("opensearch-disk-full", tmp_path)
    journal, m = result.journal, result.journal["metrics"]
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    blocked = _events(journal, "index-blocked", fault["applied_at"])
    assert blocked and blocked[0]["time"] <= fault["healed_at"], "the block comes within one disk sample"
    fails = [end for _, end in completed_ops(result.out_dir) if end["type"] == "fail"]
    assert fails and all("429" in e["error"] or "TOO_MANY_REQUESTS" in e["error"] for e in fails), fails[:3]
    assert min(e["time"] for e in fails) >= blocked[0]["time"] - 1.0, "refused only once blocked"
    assert m["ops_info"] == 0
    after = [end for _, end in completed_ops(result.out_dir)
             if end["type"] == "ok" and end["time"] > fault["healed_at"]]
    assert after, "writes resume once the block is lifted"
    _no_loss(result)


def test_partition_of_the_primary_holder(tmp_path: Path, no_leftovers: None) -> None:
    """A silent failure: the cluster notices after its follower checks fail. Lost writes are reported, not
    asserted to be 0: the isolated node's stale primary can acknowledge, just after the heal, a write only it
    holds (see the experiment's hypothesis). Asserted: every acknowledged write carries its attempts on the
    wire; none is acknowledged by a bare version conflict (that is confirmed by a replicated write); and a
    lost one was acknowledged by OpenSearch itself (its last reply a 2xx)."""
    result = _run("opensearch-partition-primary-holder", tmp_path)
    journal = result.journal
    assert result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    left = _events(journal, "node-left", fault["applied_at"])
    assert left and left[0]["node"] == fault["target"]
    noticed = left[0]["time"] - fault["applied_at"]
    assert 3 < noticed < 14, f"noticed after {noticed:.1f} s: not at once (silent), within ~3 x (1 + 2) s"
    assert journal["metrics"]["max_op_ms"] > 3000, "writes to the isolated node's shards wait"
    m = journal["metrics"]
    lost, acked = recount_lost(result.out_dir)
    assert (lost, acked) == (m["lost_writes"], m["acked_writes"]) and acked >= 100
    ops = History.read_jsonl(result.out_dir / "history.jsonl").snapshot()
    final = set(next(op.value for op in ops if op.f == "final-read" and op.type is OpType.OK))
    wires = {op.value: op.wire or () for op in ops if op.f == "write" and op.type is OpType.OK}
    assert all(wires.values()), "every acknowledged write records its attempts on the wire"
    last = {v: _status(w[-1]) for v, w in wires.items() if w}
    assert not [v for v, st in last.items() if st == "409"], "a version conflict alone is not an acknowledgement"
    confirmed = [w[-1] for w in wires.values() if any(" 409 " in line for line in w)]
    assert all(" index 20" in line for line in confirmed), confirmed  # confirmed by a replicated index write
    gone = [wires[v][-1] for v in wires if v not in final]
    assert all(_status(line).startswith("20") for line in gone), gone  # lost: OpenSearch's own acknowledgement
    print(f"opensearch-partition-primary-holder: {lost} of {acked} acknowledged writes lost {gone}; "
          f"{len(confirmed)} conflicts confirmed")
    _assert_heal_evidence(result.out_dir, journal, fault)


def _window_entries(run_dir: Path, journal: dict[str, Any], fault: dict[str, Any]) -> list[dict[str, Any]]:
    """The faulted node's log entries kept around the heal (evidence.jsonl), checked against the journal's
    window: run-clock times inside it; another node's entry only when it matches a pattern."""
    section = journal["server_logs"]
    window = section["windows"][0]
    assert window["nodes"] == [fault["target"]] and window["healed_at"] == fault["healed_at"], section
    entries = [json.loads(line) for line in (run_dir / "evidence.jsonl").read_text().splitlines()]
    assert len(entries) == section["kept"] and not section.get("error"), section
    own = [e for e in entries if e["node"] == fault["target"]]
    assert own and all(e["faulted"] for e in own), "the faulted node's lines are kept, marked as the faulted node's"
    assert all(window["start"] <= e["time"] <= window["end"] for e in entries), "run-clock times inside the window"
    others = [e for e in entries if e["node"] != fault["target"]]
    assert all(e["matches"] for e in others), "another node's line is kept only when it matches a pattern"
    html = (run_dir / "report.html").read_text()
    assert WINDOW_TITLE in html and html.count('<tr class="') >= len(own)
    return own


def _assert_heal_evidence(run_dir: Path, journal: dict[str, Any], fault: dict[str, Any]) -> None:
    """The isolated node's own log around the heal is kept on the run clock: it always logs rejoining the
    cluster manager just after the heal; and report.html shows the window."""
    section, own = journal["server_logs"], _window_entries(run_dir, journal, fault)
    rejoined = [e for e in own if fault["healed_at"] <= e["time"] <= fault["healed_at"] + 15
                and REJOINED.search(e["text"])]
    assert rejoined, [e["text"][:160] for e in own][:40]
    print(f"evidence: {section['kept']} of {section['lines_read']} log lines kept in {section['took_s']} s; "
          f"rejoined at +{rejoined[0]['time'] - fault['healed_at']:.2f} s: {rejoined[0]['text'][:200]}")


def test_stale_primary_on_opensearch_3_8_0(tmp_path: Path, no_leftovers: None) -> None:
    """The one 3.x experiment the suite runs (the 2.19.6 and 3.6.0 ones are for `chaoskit run`): the server
    reports 3.8.0 on Java 21 or newer, the replicas were promoted, writes went on, and the lost-writes checker
    counted (whatever the count: the experiment claims none)."""
    t = time.monotonic()
    result = _run("opensearch-stale-primary-3-8-0", tmp_path)
    journal = result.journal
    server = journal["server"]
    assert server["version"] == "3.8.0" and server["java"] >= 21, server
    assert journal["settings"]["topology"]["version"] == "3.8.0"
    checks = {c["name"]: c for c in journal["checks"]}
    assert checks["failover-happened"]["valid"] is True, _explain(journal)
    m = journal["metrics"]
    lost, acked = recount_lost(result.out_dir)
    assert acked >= 100 and (lost, acked) == (m["lost_writes"], m["acked_writes"]), (lost, acked, m)
    assert result.verdict is Verdict.PASS, _explain(journal)
    # log_replica_failures: the bulk action's trace lines are filtered down to a replica's failure
    traces = [line for f in (result.out_dir / "logs").glob("opensearch-*.log")
              for line in f.read_text(errors="replace").splitlines() if "[TRACE]" in line]
    assert all(opensearch_node.REPLICA_FAILURES in line for line in traces), traces[:3]
    print(f"opensearch-stale-primary-3-8-0: {lost} of {acked} acknowledged writes lost, {m['ops_info']} info, "
          f"{len(traces)} replica failures logged; "
          f"{time.monotonic() - t:.0f} s")


def _status(line: str) -> str:
    """The HTTP status of one recorded attempt: ``opensearch-2 [index ]201 created seq=.. term=..``."""
    parts = line.split()
    return parts[2] if parts[1] == "index" else parts[1]


def test_cleanup_after_sigkill_ends_the_opensearch_jvms(tmp_path: Path, state_dir: Path) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "opensearch-primary-holder-kill", timeout=300) as run_id:
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        assert len(server_pids(state_dir)) == 3, "three JVMs outlive the SIGKILLed runner"
        assert (workdir / "opensearch-1" / "data").is_dir()
        assert f"run {run_id}" in cleanup_cli(state_dir)
        assert server_pids(state_dir) == set() and netns_names(state_dir) == set() and run_ids(state_dir) == []
        assert not workdir.exists(), "the nodes' data directories are gone"


@pytest.mark.docker
def test_primary_holder_kill_on_docker(tmp_path: Path, docker_clean: None) -> None:
    """The same cluster in containers (CHAOSKIT_OPENSEARCH_IMAGE: chaoskit/opensearch:2.19.6, built from the
    zip the local backend runs): docker kill, the container started again, its copies recovered."""
    result = run(load("opensearch-primary-holder-kill"), "docker", tmp_path / "docker", progress=print)
    journal, m = result.journal, result.journal["metrics"]
    assert journal["backend"] == "docker" and result.verdict is Verdict.PASS, _explain(journal)
    fault = journal["faults"][0]
    t0, dead = fault["applied_at"], fault["target"]
    promoted = _events(journal, "primary-promoted", t0)
    assert promoted and all(f"(was on {dead})" in e["detail"] for e in promoted), promoted
    assert _events(journal, "health-yellow", t0) and _events(journal, "health-green", fault["healed_at"])
    assert m["acked_writes"] > 300 and m["ops_fail"] == 0
    assert set(journal["roles_after"].values()) <= {"data", "cluster-manager"}, "the killed container rejoined"
    _no_loss(result)
    own = _window_entries(result.out_dir, journal, fault)
    assert any(e["time"] > fault["healed_at"] for e in own), "the started container's JVM logs at once"
    clock_t0 = dt.datetime.fromisoformat(journal["server_logs"]["clock_t0"]).timestamp()
    stamped = [(m.groups(), e) for e in own if (m := SERVER_STAMP.match(e["text"]))]  # not the entrypoint's lines
    assert stamped, own
    for (day, ms), e in stamped:  # docker's stamp put it on the run clock; the server's own (UTC in there) agrees
        server = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() + int(ms) / 1000
        assert abs(server - (clock_t0 + e["time"])) < 1.0, e


@pytest.mark.docker
def test_a_3x_stand_in_builds_and_its_cluster_is_green_on_docker(docker_clean: None) -> None:
    """``chaoskit/opensearch:3.8.0`` builds from the cached 3.8.0 zip with a Java 21+ runtime from this host
    (Debian bookworm has only 17), and three containers of it (or of the official image, where a registry
    gives it) come up green reporting 3.8.0 on Java 21 or newer."""
    t = time.monotonic()
    build_local(opensearch_node.local_image("3.8.0"), force=False, say=print)
    built = time.monotonic() - t
    with chaoskit.cluster("opensearch", backend="docker", version="3.8.0", ready_timeout=240,
                          log_replica_failures=True) as c:
        green = time.monotonic() - t - built
        server = c.topology.server()
        assert server is not None and server["version"] == "3.8.0" and server["java"] >= 21, server
        node = c.topology.nodes["opensearch-1"]
        image = node.extra["image"]
        assert image in ("chaoskit/opensearch:3.8.0", "opensearchproject/opensearch:3.8.0"), image
        # log_replica_failures on docker: the lines added to the image's log4j2.properties, the node started
        # with them (green above), and writes leave no trace line but a replica's failure
        code, conf = c.topology.backend.exec(node, ["cat", f"{opensearch_node.IMAGE_HOME}/config/log4j2.properties"])
        assert code == 0 and "logger.replica_failures.level = trace" in conf, conf[-500:]
        client = c.client()
        for i in range(20):
            client.index(index="chaoskit", id=str(i), body={"v": i}, params={"wait_for_active_shards": "all"})
        traces = [ln.text for n in c.topology.nodes.values() for ln in c.topology.backend.log_lines(n)
                  if "[TRACE]" in ln.text]
        assert all(opensearch_node.REPLICA_FAILURES in t for t in traces), traces[:3]
    print(f"3.8.0 stand-in: built in {built:.0f} s (cached: ~0), cluster green in {green:.0f} s on {image}")


@pytest.mark.docker
@pytest.mark.docker_extra  # the local SIGKILL test covers cleanup's paths but the containers
def test_cleanup_after_sigkill_removes_the_opensearch_containers_and_data(tmp_path: Path, state_dir: Path) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "opensearch-primary-holder-kill", timeout=300,
                          backend="docker") as run_id:
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        assert len(chaoskit_containers(state_dir)) == 3, "three containers outlive the SIGKILLed runner"
        assert (workdir / "opensearch-1" / "data" / "nodes").is_dir(), "the nodes' data is in the run's directory"
        assert f"run {run_id}" in cleanup_cli(state_dir)
        assert chaoskit_containers(state_dir) == set() and chaoskit_networks(state_dir) == set()
        assert run_ids(state_dir) == [] and not workdir.exists(), "the nodes' data directories are gone"


def _copies_on(client: Any, node: str) -> int:
    rows = client.cat.shards(index="chaoskit", format="json")
    return sum(1 for r in rows if r.get("node") == node and r.get("state") == "STARTED")


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_native_faults_exclude_node_and_close_index(no_leftovers: None) -> None:
    """exclude-node drains a node of every shard copy (and heal lets them back); close-index refuses every
    write (400, certainly not applied) until heal opens the index again."""
    with chaoskit.cluster("opensearch", backend="local", ready_timeout=180) as c:
        client = c.client(timeout=30)
        with c.fault(ExcludeNode("replica-holder")) as applied:
            (drained,) = applied.node_names
            _until(lambda: _copies_on(client, drained) == 0, 120, f"every copy to leave {drained}")
            client.create(index="chaoskit", id="1", body={"v": 1}, params={"wait_for_active_shards": "all"})
        _until(lambda: _copies_on(client, drained) > 0, 120, f"copies to come back to {drained}")
        with c.fault(CloseIndex()):
            with pytest.raises(TransportError) as refused:
                client.create(index="chaoskit", id="2", body={"v": 2})
            assert refused.value.status_code == 400 and attempt_outcome(refused.value) == "refused"
        _until(lambda: client.cluster.health(index="chaoskit")["status"] == "green", 120, "green after open")
        client.create(index="chaoskit", id="3", body={"v": 3}, params={"refresh": "wait_for"})
        ids = {h["_id"] for h in client.search(index="chaoskit", body={"size": 10})["hits"]["hits"]}
        assert ids == {"1", "3"}, "the write refused while closed was not applied"


def test_missing_java_is_exit_3_in_one_line(tmp_path: Path, state_dir: Path) -> None:
    res = subprocess.run([*CHAOSKIT, "run", "opensearch-primary-holder-kill", "--backend", "local"],
                         env={**cli_env(state_dir), "PATH": "/nonexistent"}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, (res.stdout, res.stderr)
    (line,) = res.stderr.strip().splitlines()
    assert "`java` not found" in line and "openjdk-17" in line
    assert run_ids(state_dir) == []


def test_a_node_that_cannot_start_is_exit_3_with_its_log_tail(tmp_path: Path, no_leftovers: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = opensearch_node.node_yml
    monkeypatch.setattr(opensearch_node, "node_yml", lambda *a: real(*a) + "chaoskit.no_such_setting: 1\n")
    with pytest.raises(InfrastructureError) as err:
        run(load("opensearch-primary-holder-kill"), "local", tmp_path / "out", progress=print)
    assert err.value.exit_code == 3 and "exited during start-up" in str(err.value)
    assert "unknown setting [chaoskit.no_such_setting]" in err.value.log_tail, err.value.log_tail
