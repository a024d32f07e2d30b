"""Redis's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns, and the server configuration files (the topology's and the Compose lab's)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_IMAGE = ("CHAOSKIT_REDIS_IMAGE", "redis:7.2")
ROLES = ("primary", "replica", "replicas", "sentinels", "others", "all")
# the workload client's patterns (chaoskit.clients.redis; the DNS ones are chaoskit.dns.DNS_PATTERNS)
PATTERNS = ("sentinel-backoff", "sentinel-no-retry", "pinned-retry", "sentinel-notify", "wait-all-replicas")
MASTER_NAME = "mymaster"


def redis_image() -> str:
    """Image with redis-server and redis-sentinel; CI points this at a locally built one."""
    return os.environ.get(*SYSTEM_IMAGE)


class RedisSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replicas: int = Field(2, ge=1, le=5)
    sentinels: int = Field(3, ge=1, le=5)
    quorum: int = Field(2, ge=1)
    down_after_ms: int = Field(1500, ge=100)
    failover_timeout_ms: int = Field(5000, ge=500)
    min_replicas_to_write: int = Field(0, ge=0)
    min_replicas_max_lag: int = Field(10, ge=1)


def node_names(s: RedisSettings) -> tuple[list[str], list[str]]:
    """The redis nodes (the first is the initial primary) and the sentinels."""
    return [f"redis-{i + 1}" for i in range(s.replicas + 1)], [f"sentinel-{i + 1}" for i in range(s.sentinels)]


def redis_conf(s: RedisSettings, datadir: str, primary: str | None) -> str:
    """redis-server configuration: no persistence (a restarted node comes back empty), fast diskless sync."""
    lines = ["bind 0.0.0.0", "port 6379", "protected-mode no", f"dir {datadir}", 'save ""',
             "appendonly no", "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
             f"min-replicas-to-write {s.min_replicas_to_write}", f"min-replicas-max-lag {s.min_replicas_max_lag}"]
    if primary:
        lines.append(f"replicaof {primary} 6379")
    return "\n".join(lines) + "\n"


def sentinel_conf(s: RedisSettings, datadir: str, primary: str, reconfig_script: str | None = None) -> str:
    """redis-sentinel configuration: monitors ``primary`` with the lab's down-after and failover timeout."""
    script = [f"sentinel client-reconfig-script {MASTER_NAME} {reconfig_script}"] if reconfig_script else []
    return "\n".join([
        "bind 0.0.0.0", "port 26379", "protected-mode no", f"dir {datadir}",
        f"sentinel monitor {MASTER_NAME} {primary} 6379 {s.quorum}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {s.down_after_ms}",
        f"sentinel failover-timeout {MASTER_NAME} {s.failover_timeout_ms}",
        f"sentinel parallel-syncs {MASTER_NAME} 1", *script, ""])
