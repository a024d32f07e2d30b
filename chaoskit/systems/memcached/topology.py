"""Memcached 1.6, three nodes: the ElastiCache for Memcached stand-in. A cache, not a database.

Each node is a plain ``memcached`` with nothing shared: no replication, no node-to-node traffic at all
(ElastiCache Memcached has none either). Which node holds a key is the *client's* choice (pymemcache's
``HashClient``: rendezvous hashing over the servers it was given). A killed node loses everything it held
and comes back empty. So there is no primary, no failover and no acknowledged write to lose: the figures
that matter are the hit ratio, the errors the application sees and the misses on keys it had cached
(:mod:`chaoskit.cache_checks`).

The local backend runs Debian's ``memcached`` (one per network namespace); the docker backend the official
``memcached`` image (``CHAOSKIT_MEMCACHED_IMAGE``) or the one ``chaoskit images`` builds from Debian's package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymemcache.client.base import Client as NodeClient
from pymemcache.client.hash import HashClient

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.memcached import PATTERNS, PORT, MemcachedClientPattern
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import (
    ComposeNode,
    Event,
    EventSink,
    Facts,
    ImageOf,
    LocalImage,
    NodeBook,
    Progress,
    System,
    node_at,
    validate_experiment,
    wait_until,
)

SYSTEM_IMAGE = ("CHAOSKIT_MEMCACHED_IMAGE", "memcached:1.6")
ROLES = ("any", "all", "others")
LEADER_ONLY = ("failover_happened", "old_primary_demoted", "lost_writes", "lost_fraction", "stale_reads",
               "stale_fraction", "info_writes_applied")  # figures a cache of independent nodes never has
CLIENT_OPTIONS = ("keys", "retry_attempts", "retry_timeout_s", "dead_timeout_s")
DEFAULTS: dict[str, Any] = {"keys": 200, "retry_attempts": 2, "retry_timeout_s": 1.0, "dead_timeout_s": 60.0}


class MemcachedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: int = Field(3, ge=2, le=5)
    memory_mb: int = Field(64, ge=16, le=1024, description="each node's item memory (-m)")


def memcached_argv(memory_mb: int) -> tuple[str, ...]:
    """One node: TCP 11211 on every address, no UDP; ``-u nobody`` is what root needs (ignored otherwise)."""
    return ("memcached", "-l", "0.0.0.0", "-p", str(PORT), "-U", "0", "-m", str(memory_mb), "-c", "1024",
            "-u", "nobody")


def _answers(addr: tuple[str, int], timeout: float = 0.3) -> bool:
    client = NodeClient(addr, connect_timeout=timeout, timeout=timeout)
    try:
        return bool(client.version())
    finally:
        client.close()


@dataclass(frozen=True)
class MemcachedConnection:
    """How your own pymemcache reaches the nodes (``servers``: (host, port) this process reaches)."""

    servers: tuple[tuple[str, int], ...]
    nodes: dict[str, tuple[str, int]] = field(default_factory=dict)  # node name -> (host, port)

    def client(self, **kwargs: Any) -> HashClient:
        """pymemcache's ``HashClient`` over every node, the recommended way: ``ignore_exc=True`` (a dead node
        is a miss, not an error), a node marked dead after 2 failed retries 1 s apart and tried again after
        60 s; ``kwargs`` override any of its options."""
        opts: dict[str, Any] = {"ignore_exc": True, "connect_timeout": 0.5, "timeout": 0.5, "retry_attempts": 2,
                                "retry_timeout": 1.0, "dead_timeout": 60.0, "default_noreply": False, **kwargs}
        return HashClient(list(self.servers), **opts)


class MemcachedTopology(NodeBook):
    facts = Facts(detected_kinds=("node-down",), promoted_kinds=(), leaderless=True, cache=True)

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = MemcachedSettings.model_validate(exp.topology), exp
        self.names = [f"memcached-{i + 1}" for i in range(self.settings.nodes)]

    def up(self, progress: Progress) -> None:
        self.addresses = self.backend.prepare(self.names)
        for name in self.names:
            d = self.workdir / name
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o777)
            self._start(NodeSpec(name, memcached_argv(self.settings.memory_mb), d, PORT,
                                 image=MemcachedSystem().images()[0]))
        progress(f"started {len(self.names)} memcached nodes (no replication)")

    def wait_ready(self, timeout: float) -> None:
        self._check_running()
        wait_until(self._all_answer, timeout, "every memcached node to answer", log_tail=self._tail)

    def _all_answer(self) -> bool:
        return all(_answers(self.nodes[n].client_addr) for n in self.names)

    def _servers(self) -> list[tuple[str, int]]:
        return [self.nodes[n].client_addr for n in self.names]

    # -- roles -----------------------------------------------------------------------------------
    def node_for_address(self, host: str, port: int) -> str | None:
        return node_at(self.nodes, self.names, host, port)

    def roles(self) -> dict[str, str]:
        out = {}
        for name in self.names:
            try:
                out[name] = "up" if _answers(self.nodes[name].client_addr) else "down"
            except Exception:  # noqa: BLE001 -- no answer: down
                out[name] = "down"
        return out

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        """A node name; ``any`` (the first running node); ``all`` / ``others`` (every node but ``exclude``)."""
        skip = exclude or set()
        if role in self.nodes:
            names = [role]
        elif role == "any":
            names = [n for n in self.names if n not in skip and self.backend.is_running(self.nodes[n])][:1]
            if not names:
                raise InfrastructureError("no running node for 'any'")
        elif role in ("all", "others"):
            names = [n for n in self.names if n not in skip]
        else:
            raise InfrastructureError(f"unknown role {role!r}")
        return [self.nodes[n] for n in names]

    # -- workload --------------------------------------------------------------------------------
    def client(self, spec: ClientSpec, f: str) -> MemcachedClientPattern:
        o = {**DEFAULTS, **spec.options}
        return MemcachedClientPattern(spec.pattern, self._servers(), keys=int(o["keys"]), timeout_s=spec.timeout_s,
                                      retry_attempts=int(o["retry_attempts"]),
                                      retry_timeout=float(o["retry_timeout_s"]),
                                      dead_timeout=float(o["dead_timeout_s"]), name_of=self.node_for_address)

    def connection(self) -> MemcachedConnection:
        return MemcachedConnection(tuple(self._servers()), {n: self.nodes[n].client_addr for n in self.names})

    # -- events ----------------------------------------------------------------------------------
    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        """``node-down`` / ``node-up`` when a node stops / starts answering ``version`` (polled every 0.2 s)."""
        stop = threading.Event()

        def poll() -> None:
            down: set[str] = set()
            while not stop.wait(0.2):
                for name, role in self.roles().items():
                    if (role == "down") != (name in down):
                        (down.add if role == "down" else down.discard)(name)
                        sink(Event(clock(), "chaoskit", "node-down" if role == "down" else "node-up",
                                   f"{name} {'does not answer' if role == 'down' else 'answers again'}", name))

        threading.Thread(target=poll, daemon=True, name="watch-memcached").start()
        return stop.set

    def wait_settled(self, timeout: float) -> bool:
        return self._settles(self._all_answer, timeout, "every memcached node to answer", interval=0.2)

    def final_read(self) -> list[Any]:
        """What the cache holds now: the write values found under the workload's keys, node by node. A
        cache keeps no acknowledged writes, so this is informative only (lost-writes is not applicable)."""
        keys = [f"k{i}" for i in range(int({**DEFAULTS, **self.exp.client.options}["keys"]))]
        found: set[int] = set()
        for name in self.names:
            node = NodeClient(self.nodes[name].client_addr, connect_timeout=5.0, timeout=5.0)
            try:
                found |= {int(v) for v in node.get_many(keys).values() if v.isdigit()}
            finally:
                node.close()
        return sorted(found)


class MemcachedSystem(ImageOf):
    name, image = "memcached", SYSTEM_IMAGE
    run_weight = 0.5  # three small C processes
    local_image = LocalImage("chaoskit/memcached:1.6", "memcached")  # Debian's memcached 1.6
    client_patterns, roles, settings_model = PATTERNS, ROLES, MemcachedSettings
    native_faults: tuple[str, ...] = ()

    def validate(self, exp: Experiment) -> None:
        validate_experiment(exp, MemcachedSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"memcached-{i + 1}" for i in range(s.nodes)}, client_options=CLIENT_OPTIONS)
        for i, expectation in enumerate(exp.expect):
            if expectation.metric in LEADER_ONLY:
                raise ValueError(f"expect.{i}.metric: {expectation.metric} does not apply to a cache")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> MemcachedTopology:
        return MemcachedTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        return {"memcached": "apt-get install -y memcached"}

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        settings = MemcachedSettings()
        return [ComposeNode(f"memcached-{i + 1}", f"{net}.{10 + i}", memcached_argv(settings.memory_mb))
                for i in range(settings.nodes)]


SYSTEM: System = MemcachedSystem()  # typed: mypy checks it against the System protocol
