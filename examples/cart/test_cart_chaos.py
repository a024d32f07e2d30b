"""Chaos tests of the cart service, as a team would write them with chaoskit's pytest fixtures.

Run: ``pytest examples/cart`` (Linux as root for the local backend, or with Docker: ``--chaoskit-backend docker``).
"""

from __future__ import annotations

from typing import Any

from cart import CartService

import chaoskit


def test_an_item_added_during_a_failover_is_kept(chaoskit_cluster: Any) -> None:
    c = chaoskit_cluster("redis")                     # started now, torn down after the test
    cart = CartService(c.connection.sentinels, c.connection.service_name)
    cart.add_item("alice", 1)
    with c.fault(chaoskit.Kill("primary")):
        c.wait_failover()                             # Sentinel promotes a replica
        cart.add_item("alice", 2)                     # the service's retry must find the new primary
    c.wait_settled()
    assert cart.items("alice") == {1, 2}
    cart.close()


class CartChaosClient:
    """The cart service behind chaoskit's client protocol, so every checker can judge it."""

    def __init__(self, connection: Any) -> None:
        self.cart = CartService(connection.sentinels, connection.service_name)

    def write(self, value: int) -> None:
        self.cart.add_item("load", value)

    def read(self, value: int) -> bool:
        return value in self.cart.items("load")

    def read_all(self) -> set[int]:
        return self.cart.items("load")

    def close(self) -> None:
        self.cart.close()


def test_the_cart_loses_nothing_it_acknowledged_when_the_primary_dies(chaoskit_run: Any) -> None:
    result = chaoskit_run("redis-primary-kill", client=CartChaosClient, expect_pass=False)
    m = result.journal["metrics"]
    assert m["failover_happened"] is True
    assert m["acked_writes"] > 500 and m["lost_writes"] == 0, result.journal["checks"]
    assert m["rto_s"] is not None and m["rto_s"] < 5.0  # Sentinel's down-after (1.5 s) + election + retry
