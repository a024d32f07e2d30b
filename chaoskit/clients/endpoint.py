"""Clients that reach the primary through a DNS name, as applications reach RDS and ElastiCache endpoints.

- ``dns-endpoint``: resolves the name on every new connection and keeps an answer for its TTL (a
  resolver that honours TTL), with backoff; a broken connection is dropped and the next attempt
  connects to whatever the name says then.
- ``dns-cached``: the same, but keeps a resolved address for ``cache_s`` (``client.options.cache_s``,
  default 30 s -- the JVM's ``networkaddress.cache.ttl`` without a security manager, and what many
  pools do), whatever the TTL and whatever errors it sees.

Names are resolved with dnspython against the run's own DNS server (``chaoskit.dns``), never the
host's resolver. A name that does not resolve is an error before anything was sent: *fail*, retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import dns.exception
import psycopg
import redis

from chaoskit.clients.base import Outcome
from chaoskit.clients.postgres import PostgresClient
from chaoskit.clients.redis import _read, _write, classify, no_retry
from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.dns import lookup, resolver
from chaoskit.history import OpType

DNS_PATTERNS = ("dns-endpoint", "dns-cached")
DEFAULT_CACHE_S = 30.0


class NameNotResolved(OSError):
    """The name had no address (or the server did not answer): nothing was sent."""


class NameCache:
    """One client's view of a name: the address it resolved, kept for the answer's TTL (``cache_s``
    None) or for a fixed ``cache_s``. ``clock`` is injectable (unit tests)."""

    def __init__(self, server: tuple[str, int], name: str, cache_s: float | None, timeout_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 lookup_fn: Callable[[str], tuple[list[str], int]] | None = None) -> None:
        self.name, self.cache_s, self.clock = name, cache_s, clock
        res = resolver(server, timeout_s) if lookup_fn is None else None
        self._lookup = lookup_fn or (lambda n: lookup(res, n))  # type: ignore[arg-type]
        self._addr: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.lookups = 0

    def address(self) -> str:
        """The address to connect to now: the kept one, or a new answer once it expired. NameNotResolved
        if the server has none (or does not answer)."""
        with self._lock:
            now = self.clock()
            if self._addr is not None and now < self._until:
                return self._addr
            try:
                addrs, ttl = self._lookup(self.name)
            except (dns.exception.DNSException, OSError) as exc:
                raise NameNotResolved(f"could not resolve {self.name}: {type(exc).__name__}") from None
            self.lookups += 1
            if not addrs:
                raise NameNotResolved(f"could not resolve {self.name}: no address")
            self._addr = addrs[0]
            self._until = now + (ttl if self.cache_s is None else self.cache_s)
            return self._addr


def name_cache(pattern: str, server: tuple[str, int], name: str, options: dict[str, Any],
               timeout_s: float) -> NameCache:
    cache_s = float(options.get("cache_s", DEFAULT_CACHE_S)) if pattern == "dns-cached" else None
    return NameCache(server, name, cache_s, timeout_s)


class DnsPostgresClient(PostgresClient):
    """``PostgresClient`` whose one host is what the name resolves to when a connection is opened."""

    def __init__(self, names: NameCache, port: int, **kwargs: Any) -> None:
        super().__init__(kwargs.pop("pattern"), [("0.0.0.0", port)], **kwargs)  # noqa: S104 -- replaced on connect
        self.names, self.port = names, port

    def conninfo(self) -> str:
        try:  # called only when a connection is opened (inside the retried call)
            self.hosts = [(self.names.address(), self.port)]
        except NameNotResolved as exc:
            raise psycopg.OperationalError(str(exc)) from None
        return super().conninfo()


class DnsRedisClient:
    """redis-py to the address the name resolves to; a new client (so a new resolution) after an error."""

    def __init__(self, names: NameCache, port: int, *, timeout_s: float, policy: RetryPolicy,
                 name_of: Callable[[str, int], str | None]) -> None:
        self.names, self.port, self.timeout_s, self.policy, self.name_of = names, port, timeout_s, policy, name_of
        self._client: redis.Redis | None = None
        self._addr: tuple[str, int] | None = None

    def open(self) -> None:
        return None  # connect lazily, inside the retried call

    def _connected(self) -> redis.Redis:
        if self._client is None:
            try:
                self._addr = (self.names.address(), self.port)
            except NameNotResolved as exc:
                raise redis.ConnectionError(f"Error connecting to {self.names.name}: {exc}") from None
            self._client = redis.Redis(host=self._addr[0], port=self.port, socket_timeout=self.timeout_s,
                                       socket_connect_timeout=self.timeout_s, retry=no_retry())
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
                self._client.connection_pool.disconnect()
            except Exception:  # noqa: BLE001 -- a broken client is gone either way
                pass
            self._client = None

    def invoke(self, f: str, value: Any) -> Outcome:
        if f == "write":
            fn: Callable[[], Any] = lambda: _write(self._connected(), value)  # noqa: E731
        elif f == "read":
            fn = lambda: _read(self._connected(), value)  # noqa: E731
        else:
            raise ValueError(f"unknown op {f!r}")
        out = call_with_policy(fn, classify, self.policy, retry_on=(redis.RedisError,), before_retry=self._drop)
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        node = self.name_of(*self._addr) if out.type is OpType.OK and self._addr else None
        return Outcome(out.type, value_out, node, out.error, out.attempts)

    def close(self) -> None:
        self._drop()
