"""An order book on psycopg: every host in the conninfo, ``target_session_attrs=read-write`` (libpq finds
the primary, and the new one after a failover), idempotent inserts so a retried commit is counted once."""

from __future__ import annotations

import time

import psycopg

SCHEMA = "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY)"


class OrderBook:
    def __init__(self, conninfo: str, *, deadline_s: float = 15.0) -> None:
        self.conninfo, self.deadline_s = conninfo, deadline_s
        self.conn: psycopg.Connection | None = None
        self._run(SCHEMA)

    def _connect(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=2)
        return self.conn

    def _run(self, sql: str, *args: object) -> list[tuple]:
        deadline, pause = time.monotonic() + self.deadline_s, 0.05
        while True:
            try:
                cur = self._connect().execute(sql, args or None)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                if self.conn is not None:
                    self.conn.close()
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def place(self, order_id: int) -> None:
        self._run("INSERT INTO orders (id) VALUES (%s) ON CONFLICT DO NOTHING", order_id)

    def exists(self, order_id: int) -> bool:
        return bool(self._run("SELECT 1 FROM orders WHERE id = %s", order_id))

    def all_ids(self) -> list[int]:
        return [row[0] for row in self._run("SELECT id FROM orders")]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
