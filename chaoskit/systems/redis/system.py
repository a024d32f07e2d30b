"""The Redis system (no driver): validation, images, binaries, the Compose lab; the topology on demand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chaoskit.backends.base import Backend
from chaoskit.dns import DNS_PATTERNS, validate_dns_client
from chaoskit.drivers import Driver
from chaoskit.experiment import Experiment
from chaoskit.faults import kind_of
from chaoskit.systems.base import ComposeNode, ImageOf, LocalImage, System, validate_experiment
from chaoskit.systems.redis.faults import ClientPause, SentinelFailover
from chaoskit.systems.redis.settings import (
    PATTERNS,
    ROLES,
    SYSTEM_IMAGE,
    RedisSettings,
    node_names,
    redis_conf,
    sentinel_conf,
)
from chaoskit.toxics import TOXIC_KINDS

if TYPE_CHECKING:
    from chaoskit.systems.redis.topology import RedisTopology


class RedisSystem(ImageOf):
    name, image = "redis", SYSTEM_IMAGE
    drivers = (Driver("redis", "redis"),)  # the DNS endpoints' dnspython: chaoskit.dns.DRIVER
    run_weight = 1.0
    local_image = LocalImage("chaoskit/redis:7", "redis")  # Debian's redis-server + redis-sentinel
    client_patterns, roles, settings_model = (*PATTERNS, *DNS_PATTERNS), ROLES, RedisSettings
    native_faults = (kind_of(SentinelFailover), kind_of(ClientPause), *TOXIC_KINDS)  # toxics: the client path

    def validate(self, exp: Experiment) -> None:
        """Raise ValueError (one line, naming the field) if the experiment does not fit Redis."""
        def names(s: RedisSettings) -> set[str]:
            redis_nodes, sentinels = node_names(s)
            return {*redis_nodes, *sentinels}

        validate_experiment(exp, RedisSettings, self.client_patterns, self.native_faults, ROLES, names,
                            client_options=("socket_timeout", "wait_replicas", "wait_timeout_ms", "cache_s"), dns=True)
        validate_dns_client(exp)
        if exp.client.pattern in DNS_PATTERNS and exp.workload.read_from != "primary":
            raise ValueError("workload.read_from: the DNS patterns reach the primary endpoint only")
        if not isinstance(exp.client.options.get("socket_timeout", True), bool):
            raise ValueError("client.options.socket_timeout: true (timeout_s bounds every read) or false (none)")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> RedisTopology:
        """The topology (not started); imports redis-py."""
        from chaoskit.systems.redis.topology import RedisTopology

        return RedisTopology(exp, backend, workdir)

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        """The default topology as Compose services: the redis nodes, then the sentinels."""
        settings, primary = RedisSettings(), f"{net}.10"
        redis_nodes, sentinels = node_names(settings)
        nodes = []
        for i, name in enumerate([*redis_nodes, *sentinels]):
            binary, conf = ("redis-server", redis_conf(settings, "/data", None if i == 0 else primary)) \
                if name.startswith("redis") else ("redis-sentinel", sentinel_conf(settings, "/data", primary))
            nodes.append(ComposeNode(name, f"{net}.{10 + i}", (binary, f"/data/{name}.conf"),
                                     files=((f"/data/{name}.conf", conf),)))
        return nodes

    def binaries(self) -> dict[str, str]:
        """redis-server and redis-sentinel, from apt."""
        return {binary: f"apt-get install -y {binary}" for binary in ("redis-server", "redis-sentinel")}


SYSTEM: System = RedisSystem()  # typed: mypy checks it against the System protocol
