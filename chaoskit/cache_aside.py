"""Cache-aside over a database: one memcached node beside the system, the run's own topology part.

An experiment with ``cache: {strategy: write-through, invalidate: never, keys: 100}`` gets one memcached
node (the memcached system's own command and image, so the local and docker backends both run it) on
the run's network, in front of the database: the workload reads through it and, with write-through,
writes into it (:mod:`chaoskit.clients.cache_aside`). Faults never target it (it is not one of the
system's nodes). It is started and ledgered through the run's backend like any node, so ``chaoskit
cleanup`` ends it, and killed through the runner's ExitStack.

The final read takes both sides after recovery: every register from the database (the truth) and every
key from the cache (what the application would serve); :mod:`chaoskit.cache_aside_checks` compares them.
Postgres only for now (``validate_experiment(..., cache=True)``). The drivers (psycopg, pymemcache) are
imported where they are used, not with this module: the runner imports it for every run.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.base import Client
from chaoskit.errors import InfrastructureError, MissingDependencyError, UsageError
from chaoskit.experiment import CacheSpec, Experiment
from chaoskit.systems.base import Topology, wait_until
from chaoskit.systems.memcached.settings import PORT, memcached_argv, memcached_image

if TYPE_CHECKING:
    import psycopg
    from pymemcache.client.base import Client as MemcacheClient

NAME = "cache"
MEMORY_MB = 64


def refuse(exp: Experiment, backend_name: str) -> None:
    """Before anything starts: the built-in cache-aside workload only (UsageError, exit 2); memcached
    on PATH for the local backend (exit 3)."""
    if exp.client.factory:
        raise UsageError("cache: the cache-aside workload is built in; it does not wrap your own client")
    if backend_name == "local" and shutil.which("memcached") is None:
        raise MissingDependencyError("`memcached` not found: apt-get install -y memcached (or run `make setup`)")


def images() -> list[str]:
    """The cache node's image on docker: the Memcached system's (``CHAOSKIT_MEMCACHED_IMAGE``)."""
    return [memcached_image()]


class CacheNode:
    """The run's memcached: started after the system is up, on the address ``up()`` gave ``aside``."""

    def __init__(self, backend: Backend, workdir: Path, spec: CacheSpec) -> None:
        self.backend, self.workdir, self.spec = backend, workdir, spec
        self.node: Node | None = None

    def start(self, timeout: float = 20.0) -> None:
        d = self.workdir / NAME
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o777)
        self.node = self.backend.start(NodeSpec(NAME, memcached_argv(MEMORY_MB), d, PORT, image=memcached_image()))
        wait_until(self._answers, timeout, "the cache (memcached) to answer",
                   log_tail=lambda: self.backend.log_tail(self.node) if self.node else "")  # type: ignore[arg-type]

    @property
    def addr(self) -> tuple[str, int]:
        assert self.node is not None
        return self.node.client_addr

    def _client(self, timeout: float) -> MemcacheClient:
        from pymemcache.client.base import Client as MemcacheClient

        return MemcacheClient(self.addr, connect_timeout=timeout, timeout=timeout)

    def _answers(self) -> bool:
        client = self._client(0.3)
        try:
            return bool(client.version())
        except OSError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Kill the node. Never raises (the backend's teardown removes what is left)."""
        if self.node is not None:
            with contextlib.suppress(Exception):  # best effort here; backend.teardown follows
                self.backend.kill(self.node)

    def read_all(self, keys: int) -> dict[str, int]:
        """What the cache serves now: key -> value for every register it holds."""
        client = self._client(5.0)
        got: dict[str, int] = {}
        try:
            for start in range(0, keys, 200):  # a multi-get per 200 keys (one line each)
                batch = [f"k{i}" for i in range(start, min(keys, start + 200))]
                got.update({k: int(v) for k, v in client.get_many(batch).items()})
        finally:
            client.close()
        return got


def _primary_conn(topology: Topology) -> psycopg.Connection[Any]:
    import psycopg

    conninfo = topology.connection().conninfo  # type: ignore[attr-defined]  # Postgres: every node, read-write
    return psycopg.connect(conninfo, autocommit=True)


def create_table(topology: Topology) -> None:
    """Create the registers' table (``chaoskit_kv``) on the primary, if missing."""
    from chaoskit.clients.cache_aside import CREATE

    with _primary_conn(topology) as conn:
        conn.execute(CREATE)


def wrap(make_client: Callable[[Any], Client], cache: CacheNode, exp: Experiment) -> Callable[[Any], Client]:
    """Each worker's client: the experiment's database client pattern behind the cache."""
    from chaoskit.clients.cache_aside import CacheAsideClient
    from chaoskit.clients.postgres import PostgresClient

    spec = cache.spec

    def make(worker: Any) -> Client:
        db = make_client(worker)
        if not isinstance(db, PostgresClient):
            raise InfrastructureError(f"cache: no cache-aside workload over {type(db).__name__}")
        return CacheAsideClient(db, cache.addr, strategy=spec.strategy, invalidate=spec.invalidate, keys=spec.keys,
                                ttl_s=spec.ttl_s, timeout_s=exp.client.timeout_s)

    return make


def final_read(topology: Topology, cache: CacheNode) -> Callable[[], Any]:
    """The final read of a cache-aside run: ``{"db": {key: value}, "cache": {key: value}}``."""
    from chaoskit.clients.cache_aside import TABLE

    def read() -> Any:
        with _primary_conn(topology) as conn:
            db = {str(k): int(v) for k, v in conn.execute(f"SELECT k, v FROM {TABLE}").fetchall()}
        return {"db": db, "cache": cache.read_all(cache.spec.keys)}

    return read
