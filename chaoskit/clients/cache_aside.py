"""The cache-aside workload: registers ``k0..k<keys-1>`` in Postgres, read through one memcached node.

The database side is the experiment's own Postgres client pattern (``chaoskit.clients.postgres``: its
routing, retries and classification); this client wraps it with the cache the application keeps:

- ``write`` v (the writers' unique, increasing values) puts v into register ``key_of(v)``: an UPSERT
  into ``chaoskit_kv`` that only ever raises a register (``... DO UPDATE ... WHERE kv.v < EXCLUDED.v``: a
  max-register, so two writers racing on one key cannot move it backwards and an acknowledged v that the
  final database value is below was *lost*). ``write-through``: after the commit, ``set`` the cache to v.
  ``lazy``: the database only -- the cached value stays until it expires (``ttl_s``) or is flushed;
  nothing deletes it (the material's lazy loading leaves the cache to TTL and misses).
  Value out ``{"key", "value", "cached"}`` (cached: the write-through set stored it; None: not tried).
- ``read`` (value: the newest acknowledged write ``want``) reads, every other op at random, register
  ``key_of(want)`` or a random register among those written so far: ``get`` from the cache; a hit is
  served; on a miss the database is read and its value ``set`` into the cache (both strategies load on
  a miss). Value out ``{"key", "value", "source": "cache"|"db", "found"}`` where ``found`` (for
  ``key_of(want)`` only; None for a random key: not checked) = the value served is at least ``want``
  (False: the read missed a write acknowledged before it began -- a stale read).
- ``invalidate: on-failover``: after each database call the client compares the node its connection
  is on with the one it was on before; when it moved, it flushes the whole cache (``flush_all``) and the
  op's value says ``"flushed": true``. Every worker does this when its *own* connection moves, so a
  worker that kept writing through the old primary flushes again once it moves too. The race that
  remains: a worker still connected to the old primary may set a value after another worker's flush,
  and that value is served until the late worker itself moves and flushes.

The cache is best effort: a cache error (the node down, a timeout) never fails the op -- a failed get
is a miss, a failed set leaves the cache as it was; the op's value carries ``"cache_error"``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import psycopg
from pymemcache.client.base import Client as MemcacheClient

from chaoskit.clients.base import Outcome
from chaoskit.clients.postgres import PostgresClient, classify
from chaoskit.clients.retry import call_with_policy
from chaoskit.history import OpType

TABLE = "chaoskit_kv"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (k text PRIMARY KEY, v bigint NOT NULL)"
UPSERT = (f"INSERT INTO {TABLE} (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v "
          f"WHERE {TABLE}.v < EXCLUDED.v")
SELECT = f"SELECT v FROM {TABLE} WHERE k = %s"


def key_of(value: int, keys: int) -> str:
    """The register write value ``value`` goes to: values 1..keys fill k0..k<keys-1>, then wrap."""
    return f"k{(int(value) - 1) % keys}"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class CacheAsideClient:
    """One worker: its database client (the experiment's pattern) and its own connection to the cache."""

    def __init__(self, db: PostgresClient, cache_addr: tuple[str, int], *, strategy: str, invalidate: str,
                 keys: int, ttl_s: int, timeout_s: float,
                 cache_factory: Callable[[], Any] | None = None, seed: int | None = None) -> None:
        self.db, self.strategy, self.invalidate, self.keys, self.ttl_s = db, strategy, invalidate, keys, ttl_s
        self._make_cache = cache_factory or (lambda: MemcacheClient(
            cache_addr, connect_timeout=timeout_s, timeout=timeout_s, default_noreply=False))
        self._cache: Any = None
        self._last_server: str | None = None  # the database node of this worker's previous op
        self._rng = random.Random(seed)

    def open(self) -> None:
        self._cache = self._make_cache()

    # -- the cache, best effort ------------------------------------------------------------------
    def _cache_call(self, out: dict[str, Any], fn: Callable[[Any], Any]) -> Any:
        if self._cache is None:
            self.open()
        try:
            return fn(self._cache)
        except Exception as exc:  # noqa: BLE001 -- the cache is best effort: an error is a miss / no set
            out["cache_error"] = _error(exc)
            return None

    def _moved(self, out: dict[str, Any]) -> None:
        """Flush the cache when this worker's database connection is on another node than before."""
        now = self.db.server
        if now is None:
            return
        if self.invalidate == "on-failover" and self._last_server is not None and now != self._last_server:
            out["flushed"] = bool(self._cache_call(out, lambda c: c.flush_all(noreply=False)))
        self._last_server = now

    def _db(self, fn: Callable[[], Any]) -> Outcome:
        return call_with_policy(fn, classify, self.db.policy, retry_on=(psycopg.Error,))

    # -- ops -------------------------------------------------------------------------------------
    def _write(self, value: int) -> Outcome:
        key = key_of(value, self.keys)
        out: dict[str, Any] = {"key": key, "value": value, "cached": None}
        res = self._db(lambda: self.db.execute(UPSERT, (key, value)))
        self._moved(out)
        if res.type is OpType.OK and self.strategy == "write-through":
            out["cached"] = bool(self._cache_call(out, lambda c: c.set(key, str(value).encode(), expire=self.ttl_s)))
        return Outcome(res.type, out, self.db.server if res.type is OpType.OK else None, res.error, res.attempts)

    def _read(self, want: int) -> Outcome:
        checked = self._rng.random() < 0.5
        key = key_of(want, self.keys) if checked else f"k{self._rng.randrange(min(want, self.keys))}"

        def found(v: int | None) -> bool | None:
            return (v is not None and v >= want) if checked else None

        out: dict[str, Any] = {"key": key, "value": None, "source": "cache", "found": found(None)}
        got = self._cache_call(out, lambda c: c.get(key))
        if got is not None:
            out.update(value=int(got), found=found(int(got)))
            return Outcome(OpType.OK, out)
        out["source"] = "db"
        res = self._db(lambda: self.db.execute(SELECT, (key,)))
        self._moved(out)
        if res.type is not OpType.OK:
            return Outcome(res.type, out, None, res.error, res.attempts)
        rows = res.value or []
        value = int(rows[0][0]) if rows else None
        out.update(value=value, found=found(value))
        if value is not None:
            self._cache_call(out, lambda c: c.set(key, str(value).encode(), expire=self.ttl_s))
        return Outcome(OpType.OK, out, self.db.server, None, res.attempts)

    def invoke(self, f: str, value: Any) -> Outcome:
        if f == "write":
            return self._write(int(value))
        if f == "read":
            return self._read(int(value))
        raise ValueError(f"unknown op {f!r}")

    def close(self) -> None:
        self.db.close()
        if self._cache is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._cache.close()
            self._cache = None
