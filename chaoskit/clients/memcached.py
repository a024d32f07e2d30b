"""Memcached workload client: pymemcache's ``HashClient`` over every node, cache-aside, in two patterns.

- ``hash-ignore-exc`` (the recommended ElastiCache Memcached pattern): ``ignore_exc=True``, so a dead node
  never reaches the application -- a ``get`` of a key it held returns the default (a miss) and a ``set``
  returns False (not stored). After a failure the client retries that node at most ``retry_attempts``
  times, ``retry_timeout`` apart (between them its keys are misses without a network call), then marks it
  dead and removes it from the rendezvous hash: its keys rehash to the live nodes. One to two ``dead_timeout`` later
  it puts the node back into the hash (it comes back empty after a restart: its keys miss again).
- ``hash-raise``: the same HashClient without ``ignore_exc``: each error of the dead node reaches the
  caller as an exception until the node is marked dead (and again whenever it is retried).

The workload (lazy loading / write-through over a fixed key space of ``keys`` keys):

- ``write`` value v (the writers' unique values): ``set`` key ``k<(v - 1) % keys>`` to v (write-through);
  value out ``{"key", "stored"}``. ok = stored; fail = not stored (``set`` returned False: with ignore_exc
  that is how a dead node shows) or the connection was refused; info = any other exception (maybe stored).
- ``read`` (value: the newest acknowledged write, which bounds the keys written so far): ``get`` a random key
  among those; on a miss, ``set`` it again (lazy loading: the application loads it from its database and
  caches it). Value out ``{"key", "hit", "refilled"}`` (refilled: the set after the miss stored it; None
  after a hit). ok whenever the get returned (a miss is an ok read); fail when it raised.

Sets wait for the server's reply (``noreply=False``): a noreply set to a node killed a moment ago "succeeds".
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

from pymemcache.client.hash import HashClient

from chaoskit.clients.base import Outcome
from chaoskit.history import OpType


def key_of(value: int, keys: int) -> str:
    """The key write value ``value`` sets: values 1..keys fill k0..k<keys-1>, then wrap."""
    return f"k{(int(value) - 1) % keys}"


def make_hash_client(servers: list[tuple[str, int]], *, ignore_exc: bool, timeout_s: float,
                     retry_attempts: int, retry_timeout: float, dead_timeout: float) -> HashClient:
    """pymemcache's HashClient (rendezvous hashing) over ``servers`` with these failure settings."""
    return HashClient(servers, ignore_exc=ignore_exc, connect_timeout=timeout_s, timeout=timeout_s,
                      retry_attempts=retry_attempts, retry_timeout=retry_timeout, dead_timeout=dead_timeout,
                      use_pooling=False, default_noreply=False)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class MemcachedClientPattern:
    """One worker's client: its own HashClient (its own view of which nodes are dead)."""

    def __init__(self, pattern: str, servers: list[tuple[str, int]], *, keys: int, timeout_s: float,
                 retry_attempts: int, retry_timeout: float, dead_timeout: float,
                 name_of: Callable[[str, int], str | None], seed: int | None = None) -> None:
        self.pattern, self.servers, self.keys, self.name_of = pattern, servers, keys, name_of
        self._opts = {"ignore_exc": pattern == "hash-ignore-exc", "timeout_s": timeout_s,
                      "retry_attempts": retry_attempts, "retry_timeout": retry_timeout,
                      "dead_timeout": dead_timeout}
        self._client: HashClient | None = None
        self._rng = random.Random(seed)

    def open(self) -> None:
        self._client = make_hash_client(self.servers, **self._opts)  # type: ignore[arg-type]

    def _node(self, key: str) -> str | None:
        """The node the client's hash maps ``key`` to now (dead nodes are out of the hash)."""
        assert self._client is not None
        server = self._client.hasher.get_node(key)
        if server is None:
            return None
        host, _, port = str(server).rpartition(":")
        return self.name_of(host, int(port))

    def invoke(self, f: str, value: Any) -> Outcome:
        if self._client is None:
            self.open()
        assert self._client is not None
        if f == "write":
            key = key_of(value, self.keys)
            node = self._node(key)
            try:
                stored = bool(self._client.set(key, str(value).encode()))
            except ConnectionRefusedError as exc:
                return Outcome(OpType.FAIL, {"key": key, "stored": False}, node, _error(exc))
            except Exception as exc:  # noqa: BLE001 -- an error mid-call: maybe stored
                return Outcome(OpType.INFO, {"key": key, "stored": None}, node, _error(exc))
            return Outcome(OpType.OK if stored else OpType.FAIL, {"key": key, "stored": stored}, node)
        if f == "read":
            key = f"k{self._rng.randrange(max(1, min(int(value), self.keys)))}"
            node = self._node(key)
            try:
                hit = self._client.get(key) is not None
                refilled = None if hit else bool(self._client.set(key, b"loaded"))
            except Exception as exc:  # noqa: BLE001 -- a read changes nothing: it failed
                return Outcome(OpType.FAIL, {"key": key, "hit": None, "refilled": None}, node, _error(exc))
            return Outcome(OpType.OK, {"key": key, "hit": hit, "refilled": refilled}, node)
        raise ValueError(f"unknown op {f!r}")

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._client.close()
            self._client = None
