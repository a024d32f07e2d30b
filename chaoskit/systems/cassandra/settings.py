"""Cassandra's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns, the keyspace and table, and which node holds the first copy of the workload's partition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chaoskit.jdk import server_version

ROLES = ("any", "two", "all", "others")
SYSTEM_IMAGE = ("CHAOSKIT_CASSANDRA_IMAGE", "cassandra:5.0")
IMAGE_LIB = Path("/opt/cassandra/lib")  # the official image's (and chaoskit/cassandra:5.0's) jars
LEADER_ONLY = ("failover_happened", "old_primary_demoted")  # figures a ring without a primary never has
JMX_PORT = 7199
# the workload client's patterns (chaoskit.clients.cassandra)
PATTERNS = ("quorum", "one", "quorum-write-one-read", "downgrading")
KEYSPACE, TABLE, PORT = "chaoskit", "writes", 9042
# Murmur3 token of partition key 0 (``p int``, 4 bytes big-endian): cassandra.murmur3.murmur3(b"\0\0\0\0"),
# computed once so that validating ``probe_node`` needs no driver (tests/unit/test_cassandra_dist.py checks it)
PARTITION_0_TOKEN = -3485513579396041028


VERSION = "5.0.9"  # the default version
VERSION_PATTERN = r"^(4\.1|5\.0)\.\d+$"  # 5.0.x (Java 11 or 17) and 4.1.x (Java 8 or 11): cassandra.yaml's syntax


class CassandraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(VERSION, description="the Cassandra version (5.0.x or 4.1.x), "
                         "its jars fetched once from Maven Central")
    nodes: int = Field(3, ge=3, le=5)
    replication_factor: int = Field(3, ge=1, le=5)
    phi_convict_threshold: float = Field(8.0, ge=1, le=16, description="failure detector: lower = faster, "
                                         "more false positives (default 8)")
    read_timeout_ms: int = Field(5000, ge=100)
    write_timeout_ms: int = Field(2000, ge=100)
    speculative_retry: str = Field("99p", pattern=r"^(?i:none|always|\d+(\.\d+)?(p|percentile|ms))$",
                                   description="the table's speculative_retry ('99p', '50ms', 'NONE')")
    parallel_start: bool = Field(True, description="start the non-seed nodes together once the seed answers")
    hinted_handoff: bool = Field(True, description="hinted_handoff_enabled: coordinators keep writes for an "
                                 "unreachable replica and replay them when it is back")
    dynamic_snitch: bool = Field(True, description="rank replicas by latency (false: ring order)")
    probe_node: str = Field("", description="sample this node's own copy until the final read: events "
                            "replica-behind / replica-caught-up (metrics caught_up_s, behind_at_end)")

    @field_validator("version", mode="before")
    @classmethod
    def _known(cls, value: Any) -> str:
        return server_version(value, VERSION_PATTERN, "5.0.x or 4.1.x, e.g. 5.0.9")


def first_replica(tokens: list[int]) -> int:
    """Index of the node that is the first replica of partition 0 (``p int``): the first token at or
    after the key's Murmur3 token, wrapping round the ring."""
    ordered = sorted(range(len(tokens)), key=lambda i: tokens[i])
    return next((i for i in ordered if tokens[i] >= PARTITION_0_TOKEN), ordered[0])
