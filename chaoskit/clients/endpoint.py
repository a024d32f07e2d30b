"""Clients that reach the primary through a DNS name, as applications reach RDS and ElastiCache endpoints.

- ``dns-endpoint``: resolves the name on every new connection and keeps an answer for its TTL (a
  resolver that honours TTL), with backoff; a broken connection is dropped and the next attempt
  connects to whatever the name says then.
- ``dns-cached``: the same, but keeps a resolved address for ``cache_s`` (``client.options.cache_s``,
  default 30 s -- the JVM's ``networkaddress.cache.ttl`` without a security manager, and what many
  pools do), whatever the TTL and whatever errors it sees.

Names are resolved with dnspython against the run's own DNS server (``chaoskit.dns``), never the
host's resolver. A name that does not resolve is an error before anything was sent: *fail*, retried.
This module is the name cache both share; the clients are ``DnsRedisClient`` (:mod:`chaoskit.clients.redis`)
and ``DnsPostgresClient`` (:mod:`chaoskit.clients.postgres`), so each needs only its own driver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from chaoskit.dns import lookup, resolver

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
            except OSError as exc:  # the server did not answer (chaoskit.dns.LookupFailed), or the socket failed
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
