"""How a user's own redis-py reaches a running Redis topology (no driver until ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class RedisConnection:
    """How your own redis-py reaches the topology: through Sentinel, as on ElastiCache / MemoryDB.

    ``sentinels`` and ``nodes`` (name -> address) are reachable from this process. ``announced`` maps
    the addresses Sentinel announces to where this process reaches them, where the two differ (Docker
    Desktop's published ports); it is empty on Linux, where ``redis.sentinel.Sentinel(sentinels)`` works as is.
    """

    sentinels: list[tuple[str, int]]
    service_name: str
    nodes: dict[str, tuple[str, int]]
    announced: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def translate(self, addr: tuple[str, int]) -> tuple[str, int]:
        """Where this process reaches an address Sentinel announces (itself, unless ``announced`` maps it)."""
        return self.announced.get((addr[0], int(addr[1])), addr)

    def client(self, **kwargs: Any) -> redis.Redis:
        """redis-py's client for the current primary, the recommended way: ``Sentinel(...).master_for(
        service_name)`` with retries and exponential backoff, so a failover is followed on reconnect.
        ``kwargs`` override the connection options (e.g. ``socket_timeout``, ``retry``, ``decode_responses``).
        Raises ImportError without redis-py (``pip install 'chaoskit[redis]'``)."""
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        from chaoskit.clients.redis import MappedSentinel

        opts: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0,
                                "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 20),
                                "retry_on_error": [redis.ConnectionError, redis.TimeoutError], **kwargs}
        sentinel_opts = {"socket_timeout": opts["socket_timeout"], "socket_connect_timeout": 1.0}
        sentinel = MappedSentinel(self.sentinels, self.translate, sentinel_kwargs=sentinel_opts)
        return sentinel.master_for(self.service_name, **opts)
