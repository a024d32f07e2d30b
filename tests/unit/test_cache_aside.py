"""Cache-aside over a database: the ``cache:`` spec, the client's strategies (fake cache and database: pure
logic), the register/divergence figures on hand-made histories, and their second reading (recount)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from chaoskit.cache_aside_checks import CacheDivergence, divergence
from chaoskit.catalog import parse
from chaoskit.checkers import LostWrites, RunFacts, StaleReads, Valid
from chaoskit.clients.cache_aside import CacheAsideClient, key_of
from chaoskit.clients.retry import RetryPolicy
from chaoskit.errors import UsageError
from chaoskit.experiment import CacheSpec
from chaoskit.history import History, Op, OpType
from chaoskit.recount import disagreements, recount
from tests.unit.test_recount import write_run

FACTS = RunFacts(fault_at=2.0, healed_at=6.0, cache_aside=True)


# ---- the spec ---------------------------------------------------------------------------------

def test_cache_spec_defaults_and_strictness() -> None:
    spec = CacheSpec()
    assert (spec.strategy, spec.invalidate, spec.keys, spec.ttl_s) == ("write-through", "never", 100, 0)
    for bad in ({"strategy": "write-back"}, {"invalidate": "always"}, {"keys": 0}, {"ttl_s": -1}, {"nodes": 2}):
        with pytest.raises(ValidationError):
            CacheSpec.model_validate(bad)


EXP = """
name: x
system: {system}
purpose: p
hypothesis: h
client: {client}
cache: {{strategy: lazy, keys: 10}}
expect: [{{metric: cache_ahead, max: 0}}]
"""


def test_cache_is_postgres_only_and_builtin_clients_only() -> None:
    exp = parse(yaml.safe_load(EXP.format(system="postgres", client="{pattern: multihost-backoff}")), "x.yaml")
    assert exp.cache is not None and exp.cache.strategy == "lazy"
    with pytest.raises(UsageError, match="cache: no cache-aside workload for this system"):
        parse(yaml.safe_load(EXP.format(system="redis", client="{pattern: sentinel-backoff}")), "x.yaml")
    with pytest.raises(UsageError, match="does not wrap your own client"):
        parse(yaml.safe_load(EXP.format(system="postgres", client="{factory: 'app.db:make'}")), "x.yaml")


# ---- the client (fakes: the strategies' logic only) --------------------------------------------------

class FakeCache:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.flushes = 0
        self.broken = False

    def get(self, key: str) -> bytes | None:
        if self.broken:
            raise ConnectionRefusedError("cache down")
        return self.data.get(key)

    def set(self, key: str, value: bytes, expire: int = 0) -> bool:
        if self.broken:
            raise ConnectionRefusedError("cache down")
        self.data[key] = value
        return True

    def flush_all(self, noreply: bool = False) -> bool:
        self.flushes += 1
        self.data.clear()
        return True

    def close(self) -> None:
        return None


class FakeDb:
    """A PostgresClient's surface the wrapper uses: ``execute``, ``server``, ``policy``, ``close``."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.server: str | None = "pg-1"
        self.policy = RetryPolicy.none()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if sql.startswith("INSERT"):
            key, value = params
            self.rows[key] = max(self.rows.get(key, 0), value)
            return []
        return [(self.rows[params[0]],)] if params[0] in self.rows else []

    def close(self) -> None:
        return None


def _client(strategy: str, invalidate: str = "never") -> tuple[CacheAsideClient, FakeCache, FakeDb]:
    cache, db = FakeCache(), FakeDb()
    client = CacheAsideClient(db, ("127.0.0.1", 1), strategy=strategy, invalidate=invalidate, keys=4, ttl_s=0,
                              timeout_s=0.5, cache_factory=lambda: cache, seed=1)  # type: ignore[arg-type]
    return client, cache, db


def test_write_through_sets_the_cache_lazy_does_not_and_a_miss_loads() -> None:
    client, cache, db = _client("write-through")
    out = client.invoke("write", 5)
    assert out.type is OpType.OK and out.value == {"key": "k0", "value": 5, "cached": True}
    assert db.rows == {"k0": 5} and cache.data == {"k0": b"5"}
    lazy, lcache, ldb = _client("lazy")
    lazy.invoke("write", 1)
    assert ldb.rows == {"k0": 1} and lcache.data == {}
    reads = [lazy.invoke("read", 1).value for _ in range(6)]
    assert reads[0]["source"] == "db" and lcache.data == {"k0": b"1"}  # the miss loaded it
    assert all(r["source"] == "cache" and r["value"] == 1 for r in reads[1:])
    lazy.invoke("write", 5)  # lazy: the database only; the cache keeps serving 1
    checked = [r for r in (lazy.invoke("read", 5).value for _ in range(20)) if r["found"] is not None]
    assert checked and all(r == {"key": "k0", "value": 1, "source": "cache", "found": False} for r in checked)


def test_flush_when_the_connection_moved_and_cache_errors_are_best_effort() -> None:
    client, cache, db = _client("write-through", "on-failover")
    client.invoke("write", 1)
    db.server = "pg-2"
    out = client.invoke("write", 2)
    assert out.value["flushed"] is True and cache.flushes == 1 and cache.data == {"k1": b"2"}
    client.invoke("write", 3)
    assert cache.flushes == 1, "no move, no flush"
    cache.broken = True
    out = client.invoke("write", 4)
    assert out.type is OpType.OK and out.value["cached"] is False and "cache down" in out.value["cache_error"]
    read = client.invoke("read", 4)
    assert read.type is OpType.OK and read.value["source"] == "db" and read.value["cache_error"]
    never, ncache, ndb = _client("write-through")
    never.invoke("write", 1)
    ndb.server = "pg-2"
    assert "flushed" not in never.invoke("write", 2).value and ncache.flushes == 0
    assert key_of(5, 4) == "k0" and key_of(4, 4) == "k3"


# ---- the figures ------------------------------------------------------------------------------

def _run() -> History:
    """Keys of 4 registers. Acked writes: 1 (k0), 2 (k1), 3 (k2) before the fault; 5 (k0), 6 (k1) during it
    on the isolated primary (lost: the database ends with k0=1, k1=2); 7 (k2) after, kept. An info write 8 (k3)
    that was applied and a failed write 9. The cache ends with k0=5 (ahead: lost), k1=2 (same), k2=3 (behind).
    Reads after heal (6.0): k0 from the cache -> 5 (a lost value served), k2 -> 3 (checked: stale for want 7)."""
    ops: list[Op] = []

    def op(p: int, f: str, t: float, inv: Any, type_: OpType, value: Any) -> None:
        node = "pg-1" if f == "write" else None
        ops.extend([Op(p, OpType.INVOKE, f, inv, t), Op(p, type_, f, value, t + 0.01, node)])

    for v, t in ((1, 0.1), (2, 0.2), (3, 0.3), (5, 3.0), (6, 3.1), (7, 5.0)):
        op(0, "write", t, v, OpType.OK, {"key": f"k{(v - 1) % 4}", "value": v, "cached": True})
    op(0, "write", 5.5, 8, OpType.INFO, {"key": "k3", "value": 8, "cached": None})
    op(0, "write", 5.6, 9, OpType.FAIL, {"key": "k0", "value": 9, "cached": None})
    op(1, "read", 6.5, 7, OpType.OK, {"key": "k0", "value": 5, "source": "cache", "found": None})
    op(1, "read", 6.6, 7, OpType.OK, {"key": "k2", "value": 3, "source": "cache", "found": False})
    op(1, "read", 6.7, 7, OpType.OK, {"key": "k1", "value": 2, "source": "db", "found": None, "flushed": True})
    ops.append(Op(9, OpType.INVOKE, "final-read", None, 9.0))
    ops.append(Op(9, OpType.OK, "final-read", {"db": {"k0": 1, "k1": 2, "k2": 7, "k3": 8},
                                               "cache": {"k0": 5, "k1": 2, "k2": 3}}, 9.1))
    return History(ops)


def test_register_lost_writes_divergence_and_served_lost() -> None:
    h = _run()
    lost = LostWrites().check(h, FACTS)
    assert lost.metrics["lost_writes"] == 2 and lost.metrics["acked_writes"] == 6
    assert lost.metrics["info_writes_applied"] == 1 and lost.metrics["duplicates"] is None
    assert lost.valid is Valid.FALSE
    div = CacheDivergence().check(h, FACTS)
    assert {k: div.metrics[k] for k in ("cache_ahead", "cache_behind", "divergent_keys", "served_lost",
                                        "cache_flushes")} == {"cache_ahead": 1, "cache_behind": 1,
                                                              "divergent_keys": 2, "served_lost": 1,
                                                              "cache_flushes": 1}
    assert div.valid is Valid.FALSE and "k0 5>1" in div.detail
    stale = StaleReads().check(h, FACTS)
    assert stale.metrics["reads_checked"] == 1 and stale.metrics["stale_reads"] == 1, "found None is not checked"
    assert divergence({"k0": 3}, {"k0": 3, "k9": 1}) == (["k9"], [])  # a key the database lacks: ahead


def test_recount_agrees_on_a_cache_aside_run_and_catches_a_difference(tmp_path: Path) -> None:
    write_run(tmp_path, _run(), FACTS)
    assert disagreements(tmp_path) == []
    again = recount(tmp_path)
    assert (again["lost_writes"], again["cache_ahead"], again["served_lost"]) == (2, 1, 1)
    journal = tmp_path / "journal.json"
    journal.write_text(journal.read_text().replace('"cache_ahead": 1', '"cache_ahead": 0'))
    assert disagreements(tmp_path) == ["cache_ahead: journal 0, recount 1"]


def test_no_final_read_is_unknown() -> None:
    h = History([op for op in _run().snapshot() if op.f != "final-read"])
    assert CacheDivergence().check(h, FACTS).valid is Valid.UNKNOWN
