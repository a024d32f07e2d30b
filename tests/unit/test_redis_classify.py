"""Tests for chaoskit.clients.redis.classify: which redis-py errors mean "not applied" vs "maybe applied"."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import MasterNotFoundError, SlaveNotFoundError

from chaoskit.clients.redis import classify
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
