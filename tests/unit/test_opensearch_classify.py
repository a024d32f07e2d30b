"""Tests for chaoskit.clients.opensearch: which opensearch-py outcomes mean "not applied" vs "maybe applied"."""

from __future__ import annotations

import pytest
from opensearchpy.exceptions import (
    ConflictError,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    TransportError,
)

from chaoskit.clients.opensearch import ATTEMPTS, attempt_outcome, classify, classify_read
from chaoskit.history import OpType

REFUSED = ConnectionError("N/A", "NewConnectionError(...): Failed to establish a new connection: "
                          "[Errno 111] Connection refused", OSError(111, "Connection refused"))
DROPPED = ConnectionError("N/A", "ProtocolError('Connection aborted.', RemoteDisconnected('Remote end closed "
                          "connection without response'))", OSError("reset"))
TIMEOUT = ConnectionTimeout("TIMEOUT", "Read timed out. (read timeout=5.0)", OSError("timed out"))


def _with(exc: Exception, *attempts: str) -> Exception:
    setattr(exc, ATTEMPTS, attempts)
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (None, "ok"),
    (ConflictError(409, "version_conflict_engine_exception", {}), "ok"),
    (REFUSED, "refused"),
    (DROPPED, "maybe"),
    (TIMEOUT, "maybe"),
    (TransportError(429, "cluster_block_exception", {}), "refused"),
    (TransportError(503, "unavailable_shards_exception", {}), "refused"),
    (TransportError(400, "index_closed_exception", {}), "refused"),
    (NotFoundError(404, "index_not_found_exception", {}), "refused"),
    (TransportError(500, "internal_server_error", {}), "maybe"),
    (TransportError(502, "bad gateway", {}), "maybe"),
], ids=["ok", "conflict", "refused", "dropped-mid-request", "timeout", "429-block", "503-unavailable",
        "400-closed", "404", "500", "502"])
def test_each_attempt_on_the_wire(exc: Exception | None, expected: str) -> None:
    assert attempt_outcome(exc) == expected


def test_fail_only_when_every_attempt_was_refused() -> None:
    assert classify(_with(TransportError(429, "x", {}), "refused", "refused")) is OpType.FAIL
    refused_after_timeout = _with(ConnectionError("N/A", "Connection refused", OSError()), "maybe", "refused")
    assert classify(refused_after_timeout) is OpType.INFO, "a timed-out attempt may have been applied"
    assert classify(REFUSED) is OpType.FAIL and classify(TIMEOUT) is OpType.INFO  # no wire evidence: the error
    assert classify(DROPPED) is OpType.INFO
    assert classify_read(TIMEOUT) is OpType.FAIL, "a read applies nothing"
