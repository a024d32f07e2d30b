"""The Redis topology: starts the nodes, watches Sentinel, serves the workload's clients (imports redis-py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.endpoint import name_cache
from chaoskit.clients.redis import KEY, DnsRedisClient, RedisClient, no_retry, sentinel_state
from chaoskit.clients.retry import RetryPolicy
from chaoskit.dns import DNS_PATTERNS, sentinel_hook
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import (
    Event,
    EventSink,
    Facts,
    NodeBook,
    Progress,
    node_at,
    resolve_role,
    wait_until,
)
from chaoskit.systems.redis.connection import RedisConnection
from chaoskit.systems.redis.settings import (
    MASTER_NAME,
    RedisSettings,
    node_names,
    redis_conf,
    redis_image,
    sentinel_conf,
)


def _rc(node: Node, timeout: float = 0.5) -> redis.Redis:
    """A connection to ``node`` the way this host reaches it (its client address). One attempt per
    call, on every redis-py major (6+ retries 3-10 times with backoff unless told otherwise)."""
    host, port = node.client_addr
    return redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       decode_responses=True, retry=no_retry())


def _replication(node: Node, timeout: float = 0.5) -> dict[str, Any]:
    """``INFO replication`` of a node (redis-py's sync/async union typed away)."""
    return cast(dict[str, Any], _rc(node, timeout).info("replication"))


# ---- topology --------------------------------------------------------------------------------

class RedisTopology(NodeBook):
    facts = Facts(detected_kinds=("+odown",), promoted_kinds=("+switch-master",))

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = RedisSettings.model_validate(exp.topology), exp
        self.redis_names, self.sentinel_names = node_names(self.settings)

    # -- start-up ------------------------------------------------------------------------------
    def up(self, progress: Progress) -> None:
        self.addresses = self.backend.prepare(self.redis_names + self.sentinel_names)
        primary = self.addresses[self.redis_names[0]]
        for i, name in enumerate(self.redis_names):
            conf = redis_conf(self.settings, str(self.workdir / name), None if i == 0 else primary)
            self._start_server(name, 6379, "redis-server", conf)
        # Sentinel learns a primary's replicas from INFO, which it asks for once at start and then every
        # 10 s: started before the replicas had linked, it saw too few and the topology took ~10 s to be
        # ready (1 start in 10). Sentinels start once every replica is linked, and see them all at once.
        wait_until(lambda: self._replicas_linked(self.redis_names[0]), 30, "every replica to link to the primary",
                   interval=0.02, log_tail=self._tail)
        script = None
        if self.dns is not None:  # Sentinel points the primary endpoint at the promoted replica after a failover
            hook = self.workdir / "dns-reconfig.sh"
            hook.write_text(sentinel_hook(self.dns))
            hook.chmod(0o755)
            script = str(hook)
        for name in self.sentinel_names:
            conf = sentinel_conf(self.settings, str(self.workdir / name), primary, script)
            self._start_server(name, 26379, "redis-sentinel", conf)
        progress(f"started {len(self.redis_names)} redis + {len(self.sentinel_names)} sentinels")

    def _start_server(self, name: str, port: int, binary: str, conf: str) -> None:
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.conf").write_text(conf)
        (d / f"{name}.conf").chmod(0o666)  # the server rewrites it, possibly as another user in a container
        self._start(NodeSpec(name, (binary, str(d / f"{name}.conf")), d, port, image=redis_image()))

    def wait_ready(self, timeout: float) -> None:
        self._check_running()
        want_replicas, want_sentinels = self.settings.replicas, self.settings.sentinels - 1

        def sentinels_see_all() -> bool:
            for name in self.sentinel_names:
                info = sentinel_state(_rc(self.nodes[name]).sentinel_master(MASTER_NAME))
                if int(info["num-slaves"]) < want_replicas or int(info["num-other-sentinels"]) < want_sentinels:
                    return False
            return self._replicas_linked(self.redis_names[0])

        wait_until(sentinels_see_all, timeout, "every sentinel to see all replicas and sentinels",
                   log_tail=self._tail)

    def _replicas_linked(self, primary: str, caught_up: bool = False) -> bool:
        p = self.nodes[primary]
        info = _replication(p)
        if info.get("role") != "master" or int(info.get("connected_slaves", 0)) < self.settings.replicas:
            return False
        offsets = [info[f"slave{i}"]["offset"] for i in range(int(info["connected_slaves"]))]
        if caught_up and any(int(o) != int(info["master_repl_offset"]) for o in offsets):
            return False
        for name in self.redis_names:
            if name == primary:
                continue
            n = self.nodes[name]
            rinfo = _replication(n)
            if rinfo.get("master_host") != p.address or rinfo.get("master_link_status") != "up":
                return False
        return True

    def client_nodes(self) -> list[str]:
        return list(self.redis_names)

    # -- what the native faults (chaoskit.systems.redis.faults) do ------------------------------
    def command(self, node: Node, *args: Any) -> Any:
        """Send one command to ``node`` (one attempt); its reply. Raises redis.RedisError."""
        return _rc(node).execute_command(*args)

    def sentinel_failover(self) -> None:
        """``SENTINEL FAILOVER`` through the first sentinel that accepts it; InfrastructureError if none does."""
        for s in self.resolve("sentinels"):
            try:
                _rc(s).execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
                return
            except redis.RedisError:
                continue
        raise InfrastructureError("no sentinel accepted SENTINEL FAILOVER")

    # -- roles ---------------------------------------------------------------------------------
    def node_for_address(self, host: str, port: int) -> str | None:
        """The redis node announced as, or reached at (directly or through its proxy), ``host:port``."""
        if self.client_path is not None and (name := self.client_path.node_at(host, port)) is not None:
            return name
        return node_at(self.nodes, self.redis_names, host, port)

    def _reach(self, node: Node) -> tuple[str, int]:
        """Where clients reach ``node``: its proxy, if it has one, else its client address."""
        routed = self.client_path.route((node.address, node.port)) if self.client_path is not None else None
        return routed or node.client_addr

    def client_addr_of(self, addr: tuple[str, int]) -> tuple[str, int]:
        """Translate an address Sentinel announces (in-network) to where the workload client reaches it:
        the node's proxy when toxic faults put one on the client path, else its client address."""
        if self.client_path is not None and (routed := self.client_path.route(addr)) is not None:
            return routed
        name = self.node_for_address(*addr)
        return self.nodes[name].client_addr if name else addr

    def _sentinel_primary(self) -> str | None:
        votes: dict[str, int] = {}
        for name in self.sentinel_names:
            s = self.nodes[name]
            try:
                addr = _rc(s, 0.3).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            # redis-py's hints union in a bool (it is a (host, port) pair, or None when unknown)
            pair = cast(tuple[Any, Any] | None, addr)
            node = self.node_for_address(str(pair[0]), int(pair[1])) if pair else None
            if node:
                votes[node] = votes.get(node, 0) + 1
        return max(votes, key=lambda k: votes[k]) if votes else None

    def roles(self) -> dict[str, str]:
        out = {}
        for name in self.redis_names:
            n = self.nodes[name]
            try:
                role = _replication(n, 0.3).get("role")
                out[name] = "primary" if role == "master" else "replica"
            except redis.RedisError:
                out[name] = "down"
        return out

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        def primary() -> str | None:
            return self._sentinel_primary() or next((n for n, r in self.roles().items() if r == "primary"), None)

        return resolve_role(role, self.nodes, self.redis_names, primary, {"sentinels": self.sentinel_names}, exclude)

    def publish_dns(self) -> tuple[str, ...]:
        """``primary`` -> the primary Sentinel names now (ElastiCache's primary endpoint)."""
        assert self.dns is not None
        self.dns.write("primary", [(self.resolve("primary")[0].address, "primary")])
        return ("primary",)

    # -- workload --------------------------------------------------------------------------------
    def client(self, spec: ClientSpec, f: str) -> RedisClient | DnsRedisClient:
        if spec.pattern in DNS_PATTERNS:
            assert self.dns is not None
            names = name_cache(spec.pattern, self.dns.server, self.dns.name("primary"), spec.options, spec.timeout_s)
            return DnsRedisClient(names, 6379, timeout_s=spec.timeout_s, policy=RetryPolicy.from_spec(spec),
                                  name_of=self.node_for_address)
        sentinels = [self.nodes[n].client_addr for n in self.sentinel_names]
        return RedisClient(spec.pattern, sentinels, f=f, read_from=self.exp.workload.read_from,
                           translate=self.client_addr_of, timeout_s=spec.timeout_s,
                           socket_timeout=bool(spec.options.get("socket_timeout", True)),
                           policy=RetryPolicy.from_spec(spec), name_of=self.node_for_address,
                           wait=(int(spec.options.get("wait_replicas", self.settings.replicas)),
                                 int(spec.options.get("wait_timeout_ms", 500))))

    def connection(self) -> RedisConnection:
        reach = {name: self._reach(node) for name, node in self.nodes.items()}
        nodes = {n: reach[n] for n in self.redis_names}
        announced = {(n.address, n.port): reach[name] for name, n in self.nodes.items()
                     if (n.address, n.port) != reach[name]}
        return RedisConnection([self.nodes[n].client_addr for n in self.sentinel_names], MASTER_NAME, nodes,
                               announced)

    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        stop = threading.Event()
        for name in self.sentinel_names:
            threading.Thread(target=self._watch_one, args=(name, sink, clock, stop), daemon=True,
                             name=f"watch-{name}").start()
        return stop.set

    def _watch_one(self, name: str, sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
        node = self.nodes[name]
        while not stop.is_set():
            try:
                pubsub = _rc(node, 1.0).pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe("*")
                while not stop.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg and msg["type"] == "pmessage":
                        sink(self._event(clock(), name, str(msg["channel"]), str(msg["data"])))
            except (redis.RedisError, OSError):
                stop.wait(0.2)

    def _event(self, time: float, source: str, kind: str, detail: str) -> Event:
        words = detail.split()  # +switch-master: "<name> <old-ip> <old-port> <new-ip> <new-port>"
        node = self.node_for_address(words[3], int(words[4])) if kind == "+switch-master" and len(words) == 5 else None
        return Event(time, source, kind, detail, node)

    def wait_settled(self, timeout: float) -> bool:
        def settled() -> bool:
            primary = self._sentinel_primary()
            return primary is not None and self._replicas_linked(primary, caught_up=True)

        return self._settles(settled, timeout, "the topology to settle", interval=0.2)

    def final_read(self) -> list[Any]:
        primary = self.resolve("primary")[0]
        members = cast(set[str], _rc(primary, 5.0).smembers(KEY))
        return sorted(int(v) for v in members)
