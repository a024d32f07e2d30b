"""Redis workload client: redis-py through Sentinel, in five resilience patterns (and the DNS endpoint one).

- ``sentinel-backoff``: Sentinel-managed pool + tenacity exponential backoff with jitter; before each
  retry the pool is disconnected so the next connection re-resolves the primary (the recommended
  ElastiCache/MemoryDB pattern).
- ``sentinel-no-retry``: same pool, one attempt per op: every failover error reaches the caller.
- ``pinned-retry``: resolves the primary once at start and keeps retrying *that address* (a cached
  endpoint): it never follows a failover.
- ``sentinel-notify``: ``sentinel-backoff`` plus a subscription to Sentinel's ``+switch-master``
  channel (what Jedis and Lettuce do): on a switch the pool is dropped before the next op, so the
  client leaves an old primary that still accepts writes instead of waiting for an error.
- ``wait-all-replicas``: ``sentinel-backoff`` whose write is acknowledged only once ``WAIT`` reports
  every replica has it (MemoryDB acknowledges after its Multi-AZ log has a write; ElastiCache as soon
  as the primary has it). A write ``WAIT`` could not confirm in ``wait_timeout_ms`` is on the primary
  but maybe nowhere else: *info*, retried (SADD is idempotent) through a re-resolved primary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel, SlaveNotFoundError

from chaoskit.clients.base import Outcome
from chaoskit.clients.endpoint import NameCache, NameNotResolved
from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.history import OpType
from chaoskit.systems.redis.settings import MASTER_NAME

RERESOLVING = ("sentinel-backoff", "sentinel-notify", "wait-all-replicas")
KEY = "chaoskit:writes"
LAST = "chaoskit:last"  # the newest value, so a read can tell how old the replica's data is

_NOT_SENT = ("connecting to", "Connection refused", "previous master is now a slave", "No master found",
             "No slave found", "Timeout connecting")


def classify(exc: BaseException) -> OpType:
    """fail = certainly not applied (refused, READONLY, NOREPLICAS...); info = maybe applied."""
    if isinstance(exc, MasterNotFoundError | SlaveNotFoundError):
        return OpType.FAIL
    if isinstance(exc, redis.TimeoutError):
        return OpType.FAIL if "Timeout connecting" in str(exc) else OpType.INFO
    if isinstance(exc, redis.ConnectionError):
        return OpType.FAIL if any(s in str(exc) for s in _NOT_SENT) else OpType.INFO
    if isinstance(exc, redis.ResponseError):
        return OpType.FAIL
    return OpType.INFO


def no_retry() -> Retry:
    """One attempt per command. redis-py 5 made that the default; 6+ retries connection errors
    several times with backoff, which would hide failover errors from our own retry policy."""
    return Retry(NoBackoff(), 0)


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def sentinel_state(reply: Any) -> dict[str, Any]:
    """``SENTINEL MASTER`` as a dict, whatever shape the redis-py in use returns: a dict (parsed,
    or a RESP3 map -- redis-py 8 speaks RESP3 by default) or a flat ``[key, value, ...]`` list (raw RESP2)."""
    if isinstance(reply, dict):
        return {str(_text(k)): _text(v) for k, v in reply.items()}
    if isinstance(reply, list | tuple) and len(reply) % 2 == 0:
        items = [_text(v) for v in reply]
        return {str(k): v for k, v in zip(items[::2], items[1::2], strict=True)}
    raise TypeError(f"unexpected SENTINEL MASTER reply: {type(reply).__name__}")


class NotReplicated(redis.RedisError):
    """``WAIT`` returned fewer replicas than asked for: applied on the primary, maybe nowhere else (info)."""


def _write(client: redis.Redis, value: int, wait: tuple[int, int] | None = None) -> Any:
    """SADD + SET in one transaction; with ``wait`` = (replicas, timeout ms), then ``WAIT`` for them."""
    pipe = client.pipeline(transaction=True)
    pipe.sadd(KEY, value)
    pipe.set(LAST, value)
    out = pipe.execute()
    if wait is not None:
        got = int(client.execute_command("WAIT", *wait))
        if got < wait[0]:
            raise NotReplicated(f"WAIT {wait[0]} {wait[1]}: {got} replica(s) acknowledged")
    return out


def _read(client: redis.Redis, want: int) -> dict[str, Any]:
    pipe = client.pipeline(transaction=False)
    pipe.sismember(KEY, str(want))
    pipe.get(LAST)
    found, seen = pipe.execute()
    return {"want": want, "found": bool(found), "seen": int(seen) if seen is not None else None}


class MappedSentinel(Sentinel):
    """Sentinel that translates announced (in-network) addresses to where this host reaches them."""

    def __init__(self, sentinels: list[tuple[str, int]], translate: Callable[[tuple[str, int]], tuple[str, int]],
                 **kwargs: Any) -> None:
        super().__init__(sentinels, **kwargs)
        self.translate = translate
        self.announced: tuple[str, int] | None = None  # last +switch-master seen (sentinel-notify)

    def discover_master(self, service_name: str) -> tuple[str, int]:
        if self.announced is not None:  # like Jedis: trust the newest announcement over a lagging sentinel
            return self.translate(self.announced)
        return self.translate(super().discover_master(service_name))

    def discover_slaves(self, service_name: str) -> list[tuple[str, int]]:
        # redis-py types each address as a pair of any encodable values: they are (host, port)
        return [self.translate((str(_text(host)), int(_text(port))))
                for host, port in super().discover_slaves(service_name)]


class RedisClient:
    """One worker's client. ``f`` is "write" (SADD to the primary) or "read" (SISMEMBER on a replica/primary)."""

    def __init__(self, pattern: str, sentinels: list[tuple[str, int]], *, f: str, read_from: str,
                 timeout_s: float, policy: RetryPolicy, name_of: Callable[[str, int], str | None],
                 translate: Callable[[tuple[str, int]], tuple[str, int]] = lambda addr: addr,
                 socket_timeout: bool = True, wait: tuple[int, int] | None = None) -> None:
        self.pattern, self.sentinels, self.f, self.read_from = pattern, sentinels, f, read_from
        self.timeout_s, self.socket_timeout = timeout_s, socket_timeout
        self.policy = RetryPolicy.none() if pattern == "sentinel-no-retry" else policy
        self.name_of, self.translate = name_of, translate
        self.wait = wait if pattern == "wait-all-replicas" else None  # (replicas, timeout ms) for WAIT
        self._client: redis.Redis | None = None
        self._pinned: tuple[str, int] | None = None
        self._switched, self._closed = threading.Event(), threading.Event()
        self._sentinel: MappedSentinel | None = None

    def _kwargs(self) -> dict[str, Any]:
        """Connection options of the data nodes: without ``socket_timeout`` a read waits for ever
        (``timeout_s`` then bounds only the connect)."""
        return {"socket_timeout": self.timeout_s if self.socket_timeout else None,
                "socket_connect_timeout": self.timeout_s, "retry": no_retry()}

    def open(self) -> None:
        sentinel_kwargs = {**self._kwargs(), "socket_timeout": self.timeout_s}  # Sentinel is never proxied
        self._sentinel = sentinel = MappedSentinel(self.sentinels, self.translate, sentinel_kwargs=sentinel_kwargs,
                                                   **self._kwargs())
        if self.f == "read" and self.read_from == "replica":
            self._client = sentinel.slave_for(MASTER_NAME, **self._kwargs())
        elif self.pattern == "pinned-retry":
            self._pinned = sentinel.discover_master(MASTER_NAME)
            self._client = redis.Redis(host=self._pinned[0], port=self._pinned[1], **self._kwargs())
        else:
            self._client = sentinel.master_for(MASTER_NAME, **self._kwargs())
        if self.pattern == "sentinel-notify" and self.f == "write":  # the first sentinel to announce wins
            for host, port in self.sentinels:
                threading.Thread(target=self._listen, args=(host, port), daemon=True, name="switch-master").start()

    def _node(self) -> str | None:
        if self._pinned:
            return self.name_of(*self._pinned)
        pool = self._client.connection_pool if self._client else None
        addr = getattr(pool, "master_address", None)
        return self.name_of(*addr) if addr else None

    def _reresolve(self) -> None:
        if self._client is not None and self.pattern in RERESOLVING:
            self._client.connection_pool.disconnect()

    def _listen(self, host: str, port: int) -> None:
        """Watch ``+switch-master`` on one sentinel until closed; flag a switch for the worker."""
        while not self._closed.is_set():
            try:
                pubsub = redis.Redis(host=host, port=port, socket_timeout=1.0, socket_connect_timeout=0.5,
                                     decode_responses=True, retry=no_retry()).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe("+switch-master")
                while not self._closed.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    words = str(msg["data"]).split() if msg else []
                    if len(words) == 5 and words[0] == MASTER_NAME and self._sentinel is not None:
                        self._sentinel.announced = (words[3], int(words[4]))
                        self._switched.set()
            except redis.RedisError:
                self._closed.wait(0.2)

    def invoke(self, f: str, value: Any) -> Outcome:
        if self._client is None:
            self.open()
        client = self._client
        assert client is not None
        if self._switched.is_set():  # told of a new primary: drop connections to the old one now
            self._switched.clear()
            client.connection_pool.disconnect()
        if f == "write":
            fn: Callable[[], Any] = lambda: _write(client, value, self.wait)  # noqa: E731
        elif f == "read":
            fn = lambda: _read(client, value)  # noqa: E731
        else:
            raise ValueError(f"unknown op {f!r}")
        out = call_with_policy(fn, classify, self.policy, retry_on=(redis.RedisError,),
                               before_retry=self._reresolve)
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        node = self._node() if f == "write" else None
        return Outcome(out.type, value_out, node, out.error, out.attempts)

    def close(self) -> None:
        self._closed.set()
        if self._client is not None:
            try:
                self._client.close()
                self._client.connection_pool.disconnect()
            except Exception:  # noqa: BLE001 -- close never raises
                pass


class DnsRedisClient:
    """``dns-endpoint`` / ``dns-cached`` (:mod:`chaoskit.clients.endpoint`): redis-py to the address the name
    resolves to; a new client (so a new resolution) after an error."""

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
