"""The Memcached topology: independent nodes, polled for who answers; the workload's clients (imports
pymemcache)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymemcache.client.base import Client as NodeClient

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.memcached import MemcachedClientPattern
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import Event, EventSink, Facts, NodeBook, Progress, node_at, wait_until
from chaoskit.systems.memcached.connection import MemcachedConnection
from chaoskit.systems.memcached.settings import DEFAULTS, PORT, MemcachedSettings, memcached_argv, memcached_image


def _answers(addr: tuple[str, int], timeout: float = 0.3) -> bool:
    client = NodeClient(addr, connect_timeout=timeout, timeout=timeout)
    try:
        return bool(client.version())
    finally:
        client.close()


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
                                 image=memcached_image()))
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
