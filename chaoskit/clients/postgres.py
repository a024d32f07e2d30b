"""Postgres workload client: psycopg 3 with multi-host conninfo, in two resilience patterns.

- ``multihost-backoff``: every node in the conninfo with ``target_session_attrs=read-write`` (the
  writer endpoint libpq finds by itself) and tenacity backoff with jitter; a broken connection is
  dropped and the next attempt reconnects to whichever node is writable now.
- ``single-host-no-retry``: one host (the initial primary), one attempt per op: the weak pattern.
- ``proxy-backoff``: one host, the HAProxy writer endpoint (the RDS Proxy analog), with backoff.

``statement_timeout`` is the server's: it bounds how long the server works on a statement, not how long
the client waits for the reply, so a slow network is invisible to it. libpq has no client-side timeout
for a query; option ``socket_timeout`` (off by default) adds one: a watchdog shuts the connection's
socket down when an attempt has had no reply within ``timeout_s`` (the op is then indeterminate).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from chaoskit.clients.base import Outcome
from chaoskit.clients.endpoint import NameCache, NameNotResolved
from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.history import OpType
from chaoskit.systems.postgres.settings import TABLE


def classify(exc: BaseException) -> OpType:
    """fail = certainly not committed; info = the commit's fate is unknown (connection lost mid-call)."""
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.CannotConnectNow):
        return OpType.FAIL
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "_chaoskit_connecting", False):
        return OpType.FAIL
    return OpType.INFO


class PostgresClient:
    """One worker's connection. ``write`` inserts a unique value (autocommit); ``read`` looks it up."""

    def __init__(self, pattern: str, hosts: list[tuple[str, int]], *, f: str, timeout_s: float,
                 policy: RetryPolicy, name_of: Callable[[str, int], str | None],
                 session_attrs: str = "read-write", statement_timeout_s: float | None = None,
                 socket_timeout: bool = False) -> None:
        self.pattern, self.f = pattern, f
        self.hosts = hosts[:1] if pattern == "single-host-no-retry" else hosts
        self.policy = RetryPolicy.none() if pattern == "single-host-no-retry" else policy
        self.timeout_s, self.name_of, self.session_attrs = timeout_s, name_of, session_attrs
        # statement_timeout also cancels a commit waiting for a synchronous standby -- and Postgres then
        # reports success ("committed locally"): an acknowledgement that can be lost. 0 disables it.
        self.statement_timeout_s = timeout_s if statement_timeout_s is None else statement_timeout_s
        self.socket_timeout = socket_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._server: str | None = None  # the node behind this connection (asked, so proxies are seen through)

    def conninfo(self) -> str:
        hosts = ",".join(h for h, _ in self.hosts)
        ports = ",".join(str(p) for _, p in self.hosts)
        timeout_ms = int(self.statement_timeout_s * 1000)
        return (f"host={hosts} port={ports} dbname=postgres user=postgres password=chaoskit "
                f"connect_timeout={max(1, int(self.timeout_s + 0.999))} target_session_attrs={self.session_attrs} "
                f"options='-c statement_timeout={timeout_ms}'")

    def open(self) -> None:
        return None  # connect lazily, inside the retried call

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.conninfo(), autocommit=True)
                row = self._conn.execute("SELECT host(inet_server_addr()), inet_server_port()").fetchone()
            except psycopg.OperationalError as exc:
                exc._chaoskit_connecting = True  # type: ignore[attr-defined]  # never sent: certainly not applied
                raise
            self._server = self.name_of(str(row[0]), int(row[1])) if row and row[0] else None
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail; it is gone either way
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _deadline(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """With ``socket_timeout``: shut the socket down if the body has not returned within ``timeout_s``,
        so a reply that does not come ends the attempt (psycopg raises) instead of holding it."""
        if not self.socket_timeout:
            yield
            return
        lock, done = threading.Lock(), [False]

        def cut() -> None:
            with lock:
                if done[0]:
                    return
                with contextlib.suppress(OSError, psycopg.Error), \
                        socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)  # the dup shares the socket: the blocked read returns

        timer = threading.Timer(self.timeout_s, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:
                done[0] = True
            timer.cancel()

    def _write(self, value: int) -> None:
        # idempotent: a retry of a write whose first attempt did commit must not fail (or spin)
        self.execute(f"INSERT INTO {TABLE} (v) VALUES (%s) ON CONFLICT DO NOTHING", (value,))

    def _read(self, want: int) -> dict[str, Any]:
        (row,) = self.execute(f"SELECT count(*), (SELECT max(v) FROM {TABLE}) FROM {TABLE} WHERE v = %s", (want,))
        return {"want": want, "found": bool(row[0]), "seen": row[1]}

    def _node(self) -> str | None:
        return self._server if self._conn is not None and not self._conn.closed else None

    @property
    def server(self) -> str | None:
        """The node behind the open connection (None when there is none)."""
        return self._node()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on this client's connection (connects if needed; autocommit, the same deadline;
        a broken connection is dropped): its rows. Raises psycopg errors (see :func:`classify`)."""
        conn = self._connection()
        try:
            with self._deadline(conn):
                cur = conn.execute(sql, params)  # type: ignore[arg-type]  # our own statements
                return cur.fetchall() if cur.description else []
        except psycopg.Error:
            self._drop()
            raise

    def invoke(self, f: str, value: Any) -> Outcome:
        if f == "write":
            fn: Callable[[], Any] = lambda: self._write(value)  # noqa: E731
        elif f == "read":
            fn = lambda: self._read(value)  # noqa: E731
        else:
            raise ValueError(f"unknown op {f!r}")
        out = call_with_policy(fn, classify, self.policy, retry_on=(psycopg.Error,))
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        return Outcome(out.type, value_out, self._node() if out.type is OpType.OK else None, out.error,
                       out.attempts)

    def close(self) -> None:
        self._drop()


class DnsPostgresClient(PostgresClient):
    """``dns-endpoint`` / ``dns-cached`` (:mod:`chaoskit.clients.endpoint`): a ``PostgresClient`` whose one host
    is what the name resolves to when a connection is opened."""

    def __init__(self, names: NameCache, port: int, **kwargs: Any) -> None:
        super().__init__(kwargs.pop("pattern"), [("0.0.0.0", port)], **kwargs)  # noqa: S104 -- replaced on connect
        self.names, self.port = names, port

    def conninfo(self) -> str:
        try:  # called only when a connection is opened (inside the retried call)
            self.hosts = [(self.names.address(), self.port)]
        except NameNotResolved as exc:
            raise psycopg.OperationalError(str(exc)) from None
        return super().conninfo()
