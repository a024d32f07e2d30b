"""Toxiproxy on the client path, for real: toxiproxy-server (built by chaoskit) in front of real Redis
nodes on the local backend, its toxics felt by the workload's pooled connections, the toxic
experiments' outcomes, and crash safety (a SIGKILLed runner's proxy is ended by `chaoskit cleanup`)."""

from __future__ import annotations

import collections
import contextlib
import json
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chaoskit import toxiproxy
from chaoskit.backends.ledger import Ledger, process_running
from chaoskit.backends.local import LocalBackend
from chaoskit.catalog import load, parse
from chaoskit.checkers import Verdict
from chaoskit.clients.redis import RedisClient, no_retry
from chaoskit.faults import parse_fault
from chaoskit.history import OpType
from chaoskit.recount import recount
from chaoskit.runner import run
from chaoskit.systems.mongo.topology import MongoTopology
from chaoskit.systems.postgres.topology import PostgresTopology
from chaoskit.systems.redis.topology import RedisTopology
from chaoskit.toxics import TOXIC_KINDS, Latency, ResetPeer, Timeout, ToxicFault
from tests.integration.util import (
    cleanup_cli,
    netns_names,
    runner_killed_at,
    server_pids,
)

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def _proxied(factory: pytest.TempPathFactory, system_cls: Any, ready_s: float,
             **exp: Any) -> Iterator[tuple[Any, toxiproxy.LocalToxiproxy, toxiproxy.ClientPath]]:
    """A topology of ``system_cls`` on the local backend with a proxy in front of each data node;
    afterwards every toxic is reset and the proxy is ended (asserted)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHAOSKIT_STATE_DIR", str(factory.mktemp("state")))
        spec = parse({"purpose": "-", "hypothesis": "-", "expect": [{"metric": "lost_writes"}], **exp}, "test")
        run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
        backend = LocalBackend(run_id, str(workdir))
        server = toxiproxy.LocalToxiproxy(backend, toxiproxy.server_binary())
        try:
            topology = system_cls(spec, backend, workdir)
            topology.up(print)
            topology.wait_ready(ready_s)
            path = server.start()
            topology.route_clients(path)
            yield topology, server, path
        finally:
            server.stop()
            backend.teardown()
        assert server.proc is not None and server.proc.poll() is not None, "the proxy must be ended"


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTopology]:
    """One Redis topology on the local backend with a proxy in front of each redis node."""
    with _proxied(tmp_path_factory, RedisTopology, 60, name="toxics", system="redis",
                  topology={"down_after_ms": 60000}, client={"pattern": "sentinel-no-retry"}) as (topology, _, _):
        yield topology


def _client(topo: RedisTopology, timeout_s: float = 2.0) -> RedisClient:
    spec = topo.exp.client.model_copy(update={"timeout_s": timeout_s})
    client = topo.client(spec, "write")
    client.open()
    return client


def _op_ms(client: RedisClient, n: int, start: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        outcome = client.invoke("write", start + i)
        out.append((time.perf_counter() - t) * 1000)
        assert outcome.type is OpType.OK, outcome.error
    return out


def _pool_connections(client: RedisClient) -> set[int]:
    assert client._client is not None
    pool = client._client.connection_pool
    return {id(c) for c in pool._available_connections + list(pool._in_use_connections)}  # type: ignore[attr-defined]


def test_a_toxic_added_mid_run_slows_the_open_pooled_connection_and_heal_removes_it(topo: RedisTopology) -> None:
    client = _client(topo)
    try:
        before = _op_ms(client, 30, 1_000_000)
        conns = _pool_connections(client)
        applied = Latency(latency_ms=100).apply(topo, topo.backend)
        try:
            assert applied.fault.in_force(topo, topo.backend, applied.nodes)
            slowed = _op_ms(client, 10, 2_000_000)
        finally:
            applied.heal()
        assert not applied.fault.in_force(topo, topo.backend, applied.nodes)
        after = _op_ms(client, 30, 3_000_000)
        assert _pool_connections(client) == conns, "the same pooled connection must have carried every op"
    finally:
        client.close()
    print(f"\nwrite (MULTI/SADD/SET/EXEC) through the proxy, ms: before p50 {statistics.median(before):.2f}, "
          f"with a 100 ms latency toxic p50 {statistics.median(slowed):.1f} "
          f"(min {min(slowed):.1f}, max {max(slowed):.1f}), healed p50 {statistics.median(after):.2f}")
    assert min(slowed) >= 100 and statistics.median(slowed) < 150
    assert statistics.median(before) < 20 and statistics.median(after) < 20
    assert topo.client_path is not None and all(not p.toxics for p in topo.client_path.api.proxies().values())


def test_every_toxic_kind_is_taken_by_the_real_server_as_sent(topo: RedisTopology) -> None:
    path = topo.client_path
    assert path is not None
    for kind in TOXIC_KINDS:
        fault = parse_fault({"kind": kind, "target": "primary", "toxicity": 0.5, "direction": "upstream"})
        assert isinstance(fault, ToxicFault)
        applied = fault.apply(topo, topo.backend)
        try:
            (got,) = path.api.toxics(applied.node_names[0])
            assert got == fault.toxic(), f"{kind}: the server took {got}, chaoskit sent {fault.toxic()}"
        finally:
            applied.heal()
        assert path.api.toxics(applied.node_names[0]) == []


def test_reset_peer_breaks_the_open_connection(topo: RedisTopology) -> None:
    client = _client(topo, timeout_s=0.5)
    try:
        assert client.invoke("write", 9_000_000).type is OpType.OK
        applied = ResetPeer().apply(topo, topo.backend)
        try:
            out = client.invoke("write", 9_000_001)
        finally:
            applied.heal()
        assert out.type is not OpType.OK and out.error and "Connection" in out.error, out
        assert client.invoke("write", 9_000_002).type is OpType.OK, "healed: a new connection works"
    finally:
        client.close()


def _from_proxy(topo: RedisTopology, node: str) -> int:
    """Client connections the node holds from the proxy's address."""
    assert topo.client_path is not None
    host, port = topo.nodes[node].client_addr
    clients = redis.Redis(host, port, socket_timeout=2).client_list()
    return sum(c["addr"].rsplit(":", 1)[0] == topo.client_path.host for c in clients)


def test_no_client_connection_bypasses_the_proxy(topo: RedisTopology) -> None:
    path = topo.client_path
    assert path is not None
    primary = topo.resolve("primary")[0].name
    held = _from_proxy(topo, primary)
    workload = _client(topo, timeout_s=0.5)
    user = topo.connection().client(socket_timeout=0.5, retry=no_retry())
    try:
        assert workload.invoke("write", 4_000_000).type is OpType.OK and user.sadd("x", 1) is not None
        assert _from_proxy(topo, primary) >= held + 2, "both clients' connections must come from the proxy"
        for name in path.api.proxies():
            path.api.set_enabled(name, False)  # every proxy down: a client that bypassed one would still work
        outcome = workload.invoke("write", 4_000_001)
        assert outcome.type is not OpType.OK, "the workload client reached the primary without its proxy"
        with pytest.raises(redis.RedisError):
            user.sadd("x", 2)
        fresh = _client(topo, timeout_s=0.5)  # a new client, resolving the primary through Sentinel now
        try:
            assert fresh.invoke("write", 4_000_002).type is not OpType.OK
        finally:
            fresh.close()
    finally:
        path.reset()  # re-enables every proxy
        workload.close()
        user.close()
    assert _client_ok(topo)


def _client_ok(topo: RedisTopology) -> bool:
    client = _client(topo, timeout_s=0.5)
    try:
        return client.invoke("write", 5_000_000).type is OpType.OK
    finally:
        client.close()


def test_black_hole_holds_a_client_without_socket_timeout_for_the_window(topo: RedisTopology) -> None:
    spec = topo.exp.client.model_copy(update={"options": {"socket_timeout": False}})
    client = topo.client(spec, "write")
    client.open()
    try:
        assert client.invoke("write", 6_000_000).type is OpType.OK
        applied = Timeout().apply(topo, topo.backend)
        try:
            result: dict[str, Any] = {}
            t0 = time.monotonic()
            worker = threading.Thread(target=lambda: result.update(out=client.invoke("write", 6_000_001)))
            worker.start()
            worker.join(1.5)
            assert worker.is_alive(), "without a socket timeout the op must still be waiting"
        finally:
            applied.heal()
        worker.join(5)
        held = time.monotonic() - t0
    finally:
        client.close()
    assert not worker.is_alive() and held >= 1.5
    assert result["out"].type is OpType.INFO, "the held connection is closed on heal: outcome unknown"


# ---- the experiments ---------------------------------------------------------------------------

def _metrics(name: str, tmp_path: Path, **client: Any) -> dict[str, Any]:
    exp = load(name)
    if client:
        exp = exp.model_copy(update={"client": exp.client.model_copy(update=client)})
    result = run(exp, "local", tmp_path / f"{name}-{'-'.join(map(str, client)) or 'as-is'}", progress=print)
    m = result.journal["metrics"]
    print(f"{name} {client or ''}: " + ", ".join(f"{k}={m[k]}" for k in (
        "ops_ok", "ops_info", "ops_fail", "info_writes_applied", "max_op_ms", "failover_happened", "lost_writes")))
    assert result.verdict is Verdict.PASS or client, result.journal["checks"]
    return dict(m)


def test_primary_latency_ends_ops_info_without_failover_or_loss(tmp_path: Path, no_leftovers: None) -> None:
    m = _metrics("redis-primary-latency", tmp_path)
    assert m["ops_info"] > 0 and m["ops_fail"] == 0 and m["lost_writes"] == 0 and m["failover_happened"] is False
    assert 450 <= m["max_op_ms"] < 900, "the 0.5 s socket timeout bounds the longest op"
    # a timeout above the latency: every op succeeds, slowly (1 s a reply)
    slow = _metrics("redis-primary-latency", tmp_path, timeout_s=2.0)
    assert slow["ops_info"] == 0 and slow["ops_fail"] == 0 and slow["lost_writes"] == 0
    assert 1000 <= slow["max_op_ms"] < 2000 and slow["failover_happened"] is False


def test_blackhole_holds_a_client_without_timeout_for_the_window(tmp_path: Path, no_leftovers: None) -> None:
    m = _metrics("redis-blackhole-primary", tmp_path)
    assert m["max_op_ms"] >= 2500 and 1 <= m["ops_info"] <= 2 and m["lost_writes"] == 0
    assert m["failover_happened"] is False
    # with a socket timeout and retries: each attempt times out (0.5 s), is retried, and the op ends ok
    # once the link heals -- the client waited as long, but was never left with an unknown outcome
    retried = _metrics("redis-blackhole-primary", tmp_path, pattern="sentinel-backoff", options={})
    assert retried["ops_info"] == 0 and retried["ops_fail"] == 0 and retried["lost_writes"] == 0
    assert retried["max_op_ms"] >= 2000 and retried["failover_happened"] is False


@pytest.mark.docker
def test_primary_latency_on_docker(tmp_path: Path, state_dir: Path, docker_clean: None) -> None:
    """Parity: the proxy is one more container of the run, of Toxiproxy's image (the official one, or
    chaoskit/toxiproxy built here where it cannot be pulled): nothing of the host's."""
    result = run(load("redis-primary-latency"), "docker", tmp_path / "docker", progress=print)
    m = result.journal["metrics"]
    assert result.verdict is Verdict.PASS, result.journal["checks"]
    assert m["ops_info"] > 0 and m["lost_writes"] == 0 and m["failover_happened"] is False


# ---- crash safety ------------------------------------------------------------------------------

def test_cleanup_after_sigkill_mid_toxic_ends_the_proxy(tmp_path: Path, state_dir: Path, no_leftovers: None) -> None:
    with runner_killed_at(state_dir, tmp_path / "out", "redis-primary-latency", "fault: latency") as run_id:
        (entry,) = [e for e in Ledger.load(state_dir / "runs" / f"{run_id}.json").entries if e.name == "toxiproxy"]
        assert entry.pid is not None and process_running(entry.pid, entry.start_time), "the proxy outlives its runner"
        cleanup_cli(state_dir)
        assert not process_running(entry.pid, entry.start_time), "cleanup must end the proxy"
        assert netns_names(state_dir) == set() and server_pids(state_dir) == set()


# ---- Postgres: libpq multi-host conninfo through the proxies --------------------------------------

@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresTopology]:
    with _proxied(tmp_path_factory, PostgresTopology, 90, name="toxics-pg", system="postgres",
                  client={"pattern": "multihost-backoff", "timeout_s": 2.0}) as (topology, _, _):
        yield topology


def test_postgres_multihost_client_goes_through_the_proxy_and_feels_a_toxic(pg: PostgresTopology) -> None:
    path = pg.client_path
    assert path is not None
    client = pg.client(pg.exp.client, "write")
    try:
        before = []
        for i in range(20):
            t = time.perf_counter()
            assert client.invoke("write", 7_000_000 + i).type is OpType.OK
            before.append((time.perf_counter() - t) * 1000)
        conn = client._conn
        assert conn is not None
        peer = conn.execute("SELECT host(client_addr) FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
        assert peer is not None and peer[0] == path.host, "the client's connection must come from the proxy"
        assert client._server == pg.resolve("primary")[0].name, "the node behind the proxy is named"
        applied = Latency(latency_ms=100).apply(pg, pg.backend)
        try:
            slowed = []
            for i in range(5):
                t = time.perf_counter()
                assert client.invoke("write", 7_100_000 + i).type is OpType.OK
                slowed.append((time.perf_counter() - t) * 1000)
            assert client._conn is conn, "the open connection carried the slowed writes"
        finally:
            applied.heal()
        print(f"\npostgres INSERT through the proxy: p50 {statistics.median(before):.2f} ms, with a 100 ms "
              f"latency toxic {min(slowed):.1f}-{max(slowed):.1f} ms")
        assert min(slowed) >= 100 and statistics.median(before) < 50
        for name in path.api.proxies():
            path.api.set_enabled(name, False)
        try:
            fresh = pg.client(pg.exp.client.model_copy(update={"op_deadline_s": 1.0, "timeout_s": 1.0}), "write")
            assert fresh.invoke("write", 7_200_000).type is not OpType.OK, "a client reached Postgres without its proxy"
            fresh.close()
        finally:
            path.reset()
    finally:
        client.close()


# ---- MongoDB: pymongo discovers the set from the members' own addresses --------------------------

def test_mongo_driver_goes_through_the_proxy_and_feels_a_toxic(tmp_path_factory: pytest.TempPathFactory) -> None:
    with _proxied(tmp_path_factory, MongoTopology, 90, name="toxics-mongo", system="mongo",
                  client={"pattern": "retry-writes-majority", "timeout_s": 2.0}) as (mongo, _, path):
        _mongo_checks(mongo, path)


def _mongo_checks(mongo: MongoTopology, path: toxiproxy.ClientPath) -> None:
    primary = mongo.resolve("primary")[0]
    client = mongo.client(mongo.exp.client, "write")
    user = mongo.connection().client(serverSelectionTimeoutMS=3000)
    try:
        before = []
        for i in range(20):
            t = time.perf_counter()
            out = client.invoke("write", 8_000_000 + i)
            assert out.type is OpType.OK and out.node == primary.name, out
            before.append((time.perf_counter() - t) * 1000)
        user["chaoskit"]["user"].insert_one({"_id": 1})
        ops = mongo.command(primary, {"currentOp": {"$all": True}}, 5.0)["inprog"]  # idle connections too
        peers = [str(op["client"]).rsplit(":", 1)[0] for op in ops if op.get("appName") == mongo.appname]
        assert len(peers) >= 2 and set(peers) == {path.host}, f"connections not from the proxy: {peers}"
        applied = Latency(latency_ms=100).apply(mongo, mongo.backend)
        try:
            t = time.perf_counter()
            assert client.invoke("write", 8_100_000).type is OpType.OK
            slowed = (time.perf_counter() - t) * 1000
        finally:
            applied.heal()
        print(f"\nmongo insert (w: majority) through the proxy: p50 {statistics.median(before):.2f} ms, "
              f"with a 100 ms latency toxic {slowed:.1f} ms")
        assert slowed >= 100 and statistics.median(before) < 50
    finally:
        client.close()
        user.close()



# ---- slow networks: retry storms, slow primaries, resets (figures recounted from history.jsonl) -----

def _run_recounted(name: str, tmp_path: Path, backend: str = "local") -> dict[str, Any]:
    """Run a built-in experiment; its figures as recounted from history.jsonl (the journal must agree:
    the autouse second reading checks it), with the verdict."""
    result = run(load(name), backend, tmp_path / name, progress=print)
    got = recount(result.out_dir)
    print(f"{name}: " + ", ".join(f"{k}={got[k]}" for k in (
        "ops_ok", "ops_info", "ops_fail", "attempts_per_op_before", "attempts_per_op_during", "op_p99_ms_during",
        "op_max_ms_during", "max_op_ms", "lost_writes", "duplicates")))
    return {**got, "verdict": result.verdict, "checks": result.journal["checks"],
            "failover_happened": result.journal["metrics"]["failover_happened"]}


def test_retry_storm_jittered_backoff_amplifies_less(tmp_path: Path, no_leftovers: None) -> None:
    storm = _run_recounted("redis-retry-storm", tmp_path)
    calm = _run_recounted("redis-retry-storm-backoff", tmp_path)
    for m in (storm, calm):
        assert m["verdict"] is Verdict.PASS, m["checks"]
        assert m["lost_writes"] == 0 and m["ops_fail"] == 0 and m["failover_happened"] is False
        assert m["attempts_per_op_before"] == 1.0, "no retries before the spike"
        assert m["ops_ok"] > 100
    assert storm["attempts_per_op_during"] >= 7, "without backoff each op is re-sent every ~0.2 s timeout"
    assert calm["attempts_per_op_during"] < storm["attempts_per_op_during"] - 1.5, \
        "jittered, capped backoff must send fewer attempts per op than the storm"


def test_postgres_slow_primary_needs_a_client_side_deadline(tmp_path: Path, no_leftovers: None) -> None:
    bounded = _run_recounted("postgres-slow-primary", tmp_path)
    held = _run_recounted("postgres-slow-primary-no-timeout", tmp_path)
    for m in (bounded, held):
        assert m["verdict"] is Verdict.PASS, m["checks"]
        assert m["lost_writes"] == 0 and m["ops_fail"] == 0 and m["failover_happened"] is False
    # statement_timeout (0.5 s) alone: the op in flight is held for the whole 4 s window, and ends ok
    assert held["max_op_ms"] >= 3500 and held["ops_info"] == 0
    # the client's own deadline: cut attempts, given up after the 2 s op deadline -- indeterminate, not held
    assert bounded["ops_info"] >= 1 and bounded["max_op_ms"] < 3500


def test_mongo_slow_primary_socket_timeout_bounds_the_op(tmp_path: Path, no_leftovers: None) -> None:
    bounded = _run_recounted("mongo-slow-primary", tmp_path)
    held = _run_recounted("mongo-slow-primary-no-timeout", tmp_path)
    for m in (bounded, held):
        assert m["verdict"] is Verdict.PASS, m["checks"]
        assert m["lost_writes"] == 0 and m["failover_happened"] is False
    assert held["max_op_ms"] >= 3500, "without socketTimeoutMS the op in flight is held for the whole window"
    assert bounded["ops_info"] >= 1 and bounded["max_op_ms"] < 3500


def _retried_and_repeated(run_dir: Path) -> tuple[set[int], set[int]]:
    """From history.jsonl: the write values sent more than once, and the values the final read holds twice."""
    lines = [json.loads(s) for s in (run_dir / "history.jsonl").read_text().splitlines() if s.strip()]
    retried = {x["value"] for x in lines if x["f"] == "write" and x["type"] != "invoke" and x.get("attempts", 1) > 1}
    (final,) = [x["value"] for x in lines if x["f"] == "final-read" and x["type"] == "ok"]
    return retried, {v for v, n in collections.Counter(final).items() if n > 1}


def test_postgres_connection_reset_retries_are_safe_only_when_idempotent(tmp_path: Path, no_leftovers: None) -> None:
    keyed = _run_recounted("postgres-connection-reset", tmp_path)
    unkeyed = _run_recounted("postgres-connection-reset-no-key", tmp_path)
    for m in (keyed, unkeyed):
        assert m["verdict"] is Verdict.PASS, m["checks"]
        assert m["lost_writes"] == 0 and m["ops_fail"] == 0 and m["failover_happened"] is False
        assert m["attempts_per_op_during"] >= 2, "the reset writes were retried"
    retried, repeated = _retried_and_repeated(tmp_path / "postgres-connection-reset")
    assert retried and not repeated and keyed["duplicates"] == 0
    retried, repeated = _retried_and_repeated(tmp_path / "postgres-connection-reset-no-key")
    assert unkeyed["duplicates"] == len(repeated) >= 1
    assert repeated <= retried, "only a retried write can be in the table twice"


@pytest.mark.docker
def test_postgres_connection_reset_on_docker(tmp_path: Path, state_dir: Path, docker_clean: None) -> None:
    """Parity: the resets land after the commit on docker too -- the table without a key shows the duplicates."""
    m = _run_recounted("postgres-connection-reset-no-key", tmp_path, "docker")
    assert m["verdict"] is Verdict.PASS, m["checks"]
    retried, repeated = _retried_and_repeated(tmp_path / "postgres-connection-reset-no-key")
    assert m["duplicates"] == len(repeated) >= 1 and repeated <= retried
    assert m["lost_writes"] == 0 and m["failover_happened"] is False
