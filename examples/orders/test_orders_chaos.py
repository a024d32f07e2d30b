"""The order book under a Postgres primary crash (RDS Multi-AZ: a synchronous standby takes over)."""

from __future__ import annotations

from typing import Any

from orders import OrderBook


class OrdersChaosClient:
    """The order book behind chaoskit's client protocol."""

    def __init__(self, connection: Any) -> None:
        self.book = OrderBook(connection.conninfo)

    def write(self, value: int) -> None:
        self.book.place(value)

    def read(self, value: int) -> bool:
        return self.book.exists(value)

    def read_all(self) -> list[int]:
        return self.book.all_ids()

    def close(self) -> None:
        self.book.close()


def test_no_acknowledged_order_is_lost_when_the_primary_crashes(chaoskit_run: Any) -> None:
    result = chaoskit_run("postgres-primary-kill", client=OrdersChaosClient, expect_pass=False)
    m = result.journal["metrics"]
    assert m["failover_happened"] is True
    assert m["acked_writes"] > 100 and m["lost_writes"] == 0, result.journal["checks"]
    assert m["client_recovered"] is True
