"""Tests for chaoskit.clients.redis.classify: which redis-py errors mean "not applied" vs "maybe applied"."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import MasterNotFoundError, SlaveNotFoundError

from chaoskit.clients.redis import classify, no_retry, sentinel_state
from chaoskit.history import OpType


@pytest.mark.parametrize(("exc", "expected"), [
    (redis.TimeoutError("Timeout reading from socket"), OpType.INFO),
    (redis.TimeoutError("Timeout connecting to server"), OpType.FAIL),
    (redis.ConnectionError("Error 111 connecting to 10.0.0.1:6379. Connection refused."), OpType.FAIL),
    (redis.ConnectionError("Connection closed by server."), OpType.INFO),
    (redis.ConnectionError("Error while reading from 10.0.0.1:6379 : (104, 'Connection reset by peer')"),
     OpType.INFO),
    (redis.ReadOnlyError("You can't write against a read only replica."), OpType.FAIL),
    (redis.ResponseError("NOREPLICAS Not enough good replicas to write."), OpType.FAIL),
    (MasterNotFoundError("No master found for 'mymaster'"), OpType.FAIL),
    (SlaveNotFoundError("No slave found for 'mymaster'"), OpType.FAIL),
    (RuntimeError("something unexpected"), OpType.INFO),
], ids=["timeout-reading", "timeout-connecting", "connection-refused", "closed-by-server", "reset-by-peer",
        "readonly", "noreplicas", "master-not-found", "slave-not-found", "unknown-exception"])
def test_classify(exc: BaseException, expected: OpType) -> None:
    assert classify(exc) is expected


@pytest.mark.parametrize("reply", [
    {"name": "mymaster", "num-slaves": 2, "num-other-sentinels": 2, "is_master": True},  # parsed by redis-py
    {b"name": b"mymaster", b"num-slaves": b"2", b"num-other-sentinels": b"2"},  # raw RESP3 map (redis-py 8)
    ["name", "mymaster", "num-slaves", "2", "num-other-sentinels", "2"],  # raw RESP2 flat list (redis-py 5)
])
def test_sentinel_state_reads_every_reply_shape(reply: object) -> None:
    state = sentinel_state(reply)
    assert state["name"] == "mymaster"
    assert (int(state["num-slaves"]), int(state["num-other-sentinels"])) == (2, 2)


def test_sentinel_state_rejects_an_unknown_shape() -> None:
    with pytest.raises(TypeError, match="unexpected SENTINEL MASTER reply"):
        sentinel_state(["name"])


def test_no_retry_is_one_attempt() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise redis.ConnectionError("Connection refused")

    with pytest.raises(redis.ConnectionError):
        no_retry().call_with_retry(refused, lambda _exc: None)
    assert calls == [1]
