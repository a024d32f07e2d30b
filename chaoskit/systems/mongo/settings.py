"""MongoDB's settings and names (no driver): the ``topology:`` knobs, the fault targets, the client
patterns, mongod's command line and the replica set's configuration (the topology's and the Compose lab's)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_IMAGE = ("CHAOSKIT_MONGO_IMAGE", "mongo:6.0")
ROLES = ("primary", "replica", "replicas", "others", "all")
PORT = 27017
# the workload client's patterns (chaoskit.clients.mongo)
PATTERNS = ("retry-writes-majority", "retry-writes-w1", "driver-retry-only", "no-retry-writes")
REPLICA_SET, DATABASE, COLLECTION = "rs0", "chaoskit", "writes"


class MongoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    members: int = Field(3, ge=3, le=7)
    election_timeout_ms: int = Field(2000, ge=500)
    heartbeat_interval_ms: int = Field(500, ge=100)
    catch_up_timeout_ms: int = Field(2000, ge=0)
    oplog_network_buffer_s: int = Field(1, ge=0, description="added to a secondary's oplog-fetch timeout "
                                        "(default 5 s): how long it keeps waiting on a partitioned sync source")
    cache_gb: float = Field(0.25, gt=0, description="WiredTiger cache per member")


def mongod_argv(binary: str, bind: tuple[str, ...], dbpath: str, s: MongoSettings) -> tuple[str, ...]:
    """--nounixsocket: on the local backend every member shares /tmp; small oplog and cache for a laptop;
    test commands on for the replication-pause fail point."""
    return (binary, "--replSet", REPLICA_SET, *bind, "--port", str(PORT), "--dbpath", dbpath, "--nounixsocket",
            "--oplogSize", "64", "--wiredTigerCacheSizeGB", f"{s.cache_gb:g}",
            "--setParameter", "enableTestCommands=1", "--setParameter", "diagnosticDataCollectionEnabled=false",
            "--setParameter", f"oplogNetworkTimeoutBufferSeconds={s.oplog_network_buffer_s}")


def set_config(addresses: list[str], s: MongoSettings) -> dict[str, Any]:
    """The replica set's configuration (``replSetInitiate``): one member per address, the lab's timings."""
    return {"_id": REPLICA_SET, "members": [{"_id": i, "host": f"{a}:{PORT}"} for i, a in enumerate(addresses)],
            "settings": {"electionTimeoutMillis": s.election_timeout_ms,
                         "heartbeatIntervalMillis": s.heartbeat_interval_ms,
                         "catchUpTimeoutMillis": s.catch_up_timeout_ms}}
