"""How a user's own DataStax driver reaches a running ring (no driver until ``cluster()`` / ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaoskit.systems.cassandra.settings import KEYSPACE, PORT

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session


@dataclass(frozen=True)
class CassandraConnection:
    """How your own driver reaches the ring: its contact points, port and keyspace (table ``writes``:
    ``p int, id int, PRIMARY KEY (p, id)``, every row in partition 0)."""

    hosts: tuple[str, ...]
    port: int = PORT
    keyspace: str = KEYSPACE
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> address

    def cluster(self, **kwargs: Any) -> Cluster:
        """The driver's own ``Cluster`` for these contact points; ``kwargs`` override its options. Raises
        ImportError without the driver (``pip install 'chaoskit[cassandra]'``)."""
        from cassandra.cluster import Cluster

        return Cluster(list(self.hosts), **{"port": self.port, "protocol_version": 5, **kwargs})

    def client(self, **kwargs: Any) -> Session:
        """A driver ``Session`` on the keyspace, from :meth:`cluster` (``kwargs`` as there); end it with
        ``session.cluster.shutdown()``."""
        return self.cluster(**kwargs).connect(self.keyspace)
