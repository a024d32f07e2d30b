"""A small cart service on redis-py: the kind of code chaoskit is for. It knows nothing of chaoskit.

Carts are Redis sets reached through Sentinel (as on ElastiCache / MemoryDB with a primary endpoint).
A write that meets a failover is retried with capped exponential backoff; each retry drops the pooled
connections, so the next attempt asks Sentinel for the primary again.
"""

from __future__ import annotations

import time

import redis
from redis.sentinel import Sentinel

RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)


class CartService:
    def __init__(self, sentinels: list[tuple[str, int]], service_name: str, *, deadline_s: float = 10.0) -> None:
        sentinel = Sentinel(sentinels, socket_timeout=0.5)
        self.r = sentinel.master_for(service_name, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.deadline_s = deadline_s

    def add_item(self, cart: str, item: int) -> None:
        """Add ``item``; returns once the primary acknowledged it, raises after ``deadline_s`` of retries."""
        deadline, pause = time.monotonic() + self.deadline_s, 0.05
        while True:
            try:
                self.r.sadd(f"cart:{cart}", item)
                return
            except RETRYABLE:
                if time.monotonic() + pause > deadline:
                    raise
                self.r.connection_pool.disconnect()
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def items(self, cart: str) -> set[int]:
        return {int(v) for v in self.r.smembers(f"cart:{cart}")}

    def close(self) -> None:
        self.r.close()
