"""chaoskit: chaos engineering for databases, checked through real drivers.

The public Python surface: :func:`cluster` (a running topology for your own code), the fault model
(every fault kind the experiment files use, as typed objects) and each system's connection type::

    import chaoskit
    with chaoskit.cluster("redis") as c:
        with c.fault(chaoskit.Kill("primary")):
            ...

``import chaoskit`` imports none of it yet (PEP 562): each name is imported on first use, and none of
them imports a database driver -- a system's driver is imported when its topology is built or its
``client()`` made (``pip install 'chaoskit[redis]'`` etc. installs it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chaoskit.errors import ChaoskitError, InfrastructureError, MissingDependencyError, UsageError

if TYPE_CHECKING:  # what mypy and IDEs see; at run time each name comes from __getattr__ below
    from chaoskit.api import Cluster, cluster
    from chaoskit.faults import Applied, Fault, Kill, NativeFault, PacketLoss, Partition, Pause, Restart
    from chaoskit.systems.cassandra.faults import DisableBinary, DisableGossip, Drain
    from chaoskit.systems.mongo.connection import MongoConnection
    from chaoskit.systems.mongo.faults import ReplicationPause, StepDown
    from chaoskit.systems.postgres.connection import PostgresConnection
    from chaoskit.systems.postgres.faults import Switchover
    from chaoskit.systems.redis.connection import RedisConnection
    from chaoskit.systems.redis.faults import ClientPause, SentinelFailover
    from chaoskit.toxics import Bandwidth, Latency, LimitData, ResetPeer, Slicer, SlowClose, Timeout

__version__ = "0.1.0"

_LAZY = {
    "chaoskit.api": ("Cluster", "cluster"),
    "chaoskit.faults": ("Applied", "Fault", "Kill", "NativeFault", "PacketLoss", "Partition", "Pause", "Restart"),
    "chaoskit.systems.cassandra.faults": ("DisableBinary", "DisableGossip", "Drain"),
    "chaoskit.systems.mongo.connection": ("MongoConnection",),
    "chaoskit.systems.mongo.faults": ("ReplicationPause", "StepDown"),
    "chaoskit.systems.postgres.connection": ("PostgresConnection",),
    "chaoskit.systems.postgres.faults": ("Switchover",),
    "chaoskit.systems.redis.connection": ("RedisConnection",),
    "chaoskit.systems.redis.faults": ("ClientPause", "SentinelFailover"),
    "chaoskit.toxics": ("Bandwidth", "Latency", "LimitData", "ResetPeer", "Slicer", "SlowClose", "Timeout"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "Applied", "Bandwidth", "ChaoskitError", "ClientPause", "Cluster", "DisableBinary",
    "DisableGossip", "Drain", "Fault", "InfrastructureError", "Kill",
    "Latency", "LimitData", "MissingDependencyError", "MongoConnection", "NativeFault", "PacketLoss", "Partition",
    "Pause", "PostgresConnection", "RedisConnection", "ReplicationPause", "ResetPeer", "Restart", "SentinelFailover",
    "Slicer", "SlowClose", "StepDown", "Switchover", "Timeout", "UsageError", "cluster",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then cached here); AttributeError otherwise."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *__all__})
