"""chaoskit: chaos engineering for databases, checked through real drivers.

The public Python surface: :func:`cluster` (a running topology for your own code), the fault model
(every fault kind the experiment files use, as typed objects) and each system's connection type::

    import chaoskit
    with chaoskit.cluster("redis") as c:
        with c.fault(chaoskit.Kill("primary")):
            ...
"""

from chaoskit.api import Cluster, cluster
from chaoskit.errors import ChaoskitError, InfrastructureError, MissingDependencyError, UsageError
from chaoskit.faults import Applied, Fault, Kill, NativeFault, PacketLoss, Partition, Pause, Restart
from chaoskit.systems.cassandra_faults import DisableBinary, DisableGossip, Drain
from chaoskit.systems.mongo import MongoConnection, ReplicationPause, StepDown
from chaoskit.systems.postgres import PostgresConnection, Switchover
from chaoskit.systems.redis import ClientPause, RedisConnection, SentinelFailover
from chaoskit.toxics import Bandwidth, Latency, LimitData, ResetPeer, Slicer, SlowClose, Timeout

__version__ = "0.1.0"

__all__ = [
    "Applied", "Bandwidth", "ChaoskitError", "ClientPause", "Cluster", "DisableBinary",
    "DisableGossip", "Drain", "Fault", "InfrastructureError", "Kill",
    "Latency", "LimitData", "MissingDependencyError", "MongoConnection", "NativeFault", "PacketLoss", "Partition",
    "Pause", "PostgresConnection", "RedisConnection", "ReplicationPause", "ResetPeer", "Restart", "SentinelFailover",
    "Slicer", "SlowClose", "StepDown", "Switchover", "Timeout", "UsageError", "cluster",
]
