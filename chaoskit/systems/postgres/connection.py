"""How a user's own psycopg reaches a running Postgres cluster (no driver until ``client()``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class PostgresConnection:
    """How your own psycopg reaches the cluster, as on RDS / Aurora.

    ``conninfo``: every node, ``target_session_attrs=read-write`` (libpq finds the primary itself, and
    again after a failover when you reconnect). ``writer_dsn`` / ``reader_dsn``: the HAProxy writer and
    reader endpoints with ``proxy: true`` (the RDS Proxy / Aurora endpoint analog), else every node with
    ``read-write`` / ``prefer-standby``. ``hosts``: node name -> where this process reaches it.
    """

    conninfo: str
    writer_dsn: str
    reader_dsn: str
    hosts: dict[str, tuple[str, int]]
    proxy: bool = False

    def client(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection to the primary through ``conninfo``; ``kwargs`` go to ``psycopg.connect``
        (e.g. ``autocommit=True``). After a failover, open a new one: libpq picks the new primary.
        Raises ImportError without psycopg (``pip install 'chaoskit[postgres]'``)."""
        import psycopg

        return psycopg.connect(self.conninfo, **kwargs)
