"""OpenSearch's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns and options, the index, and the cluster settings each node gets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chaoskit.jdk import server_version
from chaoskit.systems.opensearch.dist import VERSION, VERSION_PATTERN

ROLES = ("cluster-manager", "primary-holder", "replica-holder", "all", "others")
ONE_PRIMARY_ONLY = ("old_primary_demoted",)  # a primary per shard, on several nodes: no one old primary
# the workload client's patterns and options (chaoskit.clients.opensearch)
PATTERNS = ("all-hosts-retry", "single-host")
OPTIONS = ("wait_for_active_shards", "refresh", "read", "sniff", "max_retries", "host", "shard_timeout_s")
INDEX, PORT = "chaoskit", 9200


class OpenSearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(VERSION, description="the OpenSearch version: 2.x (Java 11-21) "
                         "or 3.x (Java 21 or newer), fetched once from Maven Central")
    nodes: int = Field(3, ge=3, le=5)
    heap_mb: int = Field(256, ge=128, le=4096)
    shards: int = Field(3, ge=1, le=12)
    replicas: int = Field(1, ge=0, le=4)
    refresh_interval: str = Field("1s", pattern=r"^(-1|\d+(ms|s|m))$", description="the index's refresh interval")
    fault_detection_timeout_s: float = Field(10.0, gt=0, description="follower/leader check timeout (default 10)")
    fault_detection_retries: int = Field(3, ge=1, le=10, description="failed checks before a node is removed "
                                         "(default 3)")
    cluster_info_interval_s: float = Field(10.0, ge=10, description="how often disk usage is sampled (default 30, "
                                           "at least 10)")
    log_replica_failures: bool = Field(False, description="log each failure of a write on a replica, with its "
                                       "exception, on the primary (the one trace line of the bulk action kept)")

    @field_validator("version", mode="before")
    @classmethod
    def _known(cls, value: Any) -> str:
        return server_version(value, VERSION_PATTERN, "2.x.y or 3.x.y, e.g. 3.6.0")


def node_settings(s: OpenSearchSettings) -> dict[str, str]:
    """The settings each node gets from the experiment's topology, and the lab's disk watermarks."""
    return {"cluster.fault_detection.follower_check.timeout": f"{s.fault_detection_timeout_s:g}s",
            "cluster.fault_detection.follower_check.retry_count": str(s.fault_detection_retries),
            "cluster.fault_detection.leader_check.timeout": f"{s.fault_detection_timeout_s:g}s",
            "cluster.fault_detection.leader_check.retry_count": str(s.fault_detection_retries),
            "cluster.info.update.interval": f"{s.cluster_info_interval_s:g}s",
            # lab disks are shared and may be fuller than a server's: block only when nearly out of space
            "cluster.routing.allocation.disk.watermark.low": "1gb",
            "cluster.routing.allocation.disk.watermark.high": "500mb",
            "cluster.routing.allocation.disk.watermark.flood_stage": "200mb"}
