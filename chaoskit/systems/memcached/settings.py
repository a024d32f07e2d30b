"""Memcached's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns and options, and a node's command line (also the cache-aside workload's cache node)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_IMAGE = ("CHAOSKIT_MEMCACHED_IMAGE", "memcached:1.6")
ROLES = ("any", "all", "others")
LEADER_ONLY = ("failover_happened", "old_primary_demoted", "lost_writes", "lost_fraction", "stale_reads",
               "stale_fraction", "info_writes_applied")  # figures a cache of independent nodes never has
# the workload client's patterns and options (chaoskit.clients.memcached)
PATTERNS = ("hash-ignore-exc", "hash-raise")
PORT = 11211
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


def memcached_image() -> str:
    """The image a node runs on docker (``CHAOSKIT_MEMCACHED_IMAGE``, else the official one)."""
    return os.environ.get(*SYSTEM_IMAGE)
