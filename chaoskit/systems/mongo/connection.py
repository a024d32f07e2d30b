"""How a user's own pymongo reaches a running replica set (no driver until ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaoskit.systems.mongo.settings import DATABASE

if TYPE_CHECKING:
    from pymongo import MongoClient


@dataclass(frozen=True)
class MongoConnection:
    """How your own pymongo reaches the replica set: one URI with every member, ``replicaSet``,
    retryable writes and ``w=majority`` (the recommended DocumentDB / Atlas pattern).

    The URI names the members as they announce themselves; where this process reaches them elsewhere
    (Docker Desktop's published ports) chaoskit routes pymongo's connections in this process, so a
    ``MongoClient(uri)`` of yours works either way. ``hosts``: member name -> where this process reaches it.
    """

    uri: str
    replica_set: str
    hosts: dict[str, tuple[str, int]]
    database: str = DATABASE

    def client(self, **kwargs: Any) -> MongoClient[dict[str, Any]]:
        """pymongo's own ``MongoClient(uri)``; ``kwargs`` override its options (e.g. ``w=1``). Raises
        ImportError without pymongo (``pip install 'chaoskit[mongo]'``)."""
        from pymongo import MongoClient

        return MongoClient(self.uri, **{"serverSelectionTimeoutMS": 15000, **kwargs})
