"""Tests for chaoskit.clients.cassandra: which driver errors mean "not applied" (fail) vs "maybe applied" (info)."""

from __future__ import annotations

import pytest
from cassandra import (
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
    WriteFailure,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException, ConnectionShutdown

from chaoskit.clients.cassandra import LEVELS, classify, classify_read
from chaoskit.history import OpType
from chaoskit.systems.cassandra.settings import PATTERNS

QUORUM = ConsistencyLevel.QUORUM
UNAVAILABLE = Unavailable("Cannot achieve consistency level QUORUM", consistency=QUORUM, required_replicas=2,
                          alive_replicas=1)


@pytest.mark.parametrize(("exc", "expected"), [
    (UNAVAILABLE, OpType.FAIL),  # the coordinator refused before writing anything
    (InvalidRequest("unconfigured table"), OpType.FAIL),
    (NoHostAvailable("Unable to complete the operation against any hosts", {"10.0.0.10:9042": UNAVAILABLE,
                                                                            "10.0.0.11:9042": UNAVAILABLE}),
     OpType.FAIL),
    (NoHostAvailable("no hosts", {}), OpType.FAIL),  # nothing to send it to
    (NoHostAvailable("no hosts", {"10.0.0.10:9042": ConnectionRefusedError(111, "Connection refused")}),
     OpType.FAIL),
    (NoHostAvailable("down", {"10.0.0.12:9042": UNAVAILABLE,
                              "10.0.0.10:9042": ConnectionException("Host has been marked down or removed")}),
     OpType.FAIL),  # the driver had no connection to send it on
    (NoHostAvailable("mixed", {"10.0.0.10:9042": UNAVAILABLE,
                               "10.0.0.11:9042": OperationTimedOut("errors={}", "10.0.0.11:9042")}), OpType.INFO),
    (NoHostAvailable("lost", {"10.0.0.10:9042": ConnectionShutdown("Connection to 10.0.0.10 was closed")}),
     OpType.INFO),  # in flight when the connection dropped: maybe applied
    (WriteTimeout("Operation timed out - received only 1 responses.", consistency=QUORUM, required_responses=2,
                  received_responses=1, write_type=0), OpType.INFO),
    (WriteFailure("failure", consistency=QUORUM, required_responses=2, received_responses=1, failures=1),
     OpType.INFO),
    (OperationTimedOut("errors={}, last_host=10.0.0.10:9042"), OpType.INFO),
    (ConnectionException("Connection reset"), OpType.INFO),
    (RuntimeError("something else"), OpType.INFO),
], ids=["unavailable", "invalid-request", "no-host-unavailable", "no-host-empty", "no-host-refused",
        "no-host-marked-down", "no-host-mixed-timeout", "no-host-connection-lost", "write-timeout", "write-failure",
        "client-timeout", "connection-reset", "unknown"])
def test_write_classification(exc: BaseException, expected: OpType) -> None:
    assert classify(exc) is expected


@pytest.mark.parametrize("exc", [
    ReadTimeout("Operation timed out - received only 1 responses.", consistency=QUORUM, required_responses=2,
                received_responses=1, data_retrieved=False),
    ReadFailure("failure", consistency=QUORUM, required_responses=2, received_responses=1, failures=1),
    UNAVAILABLE, OperationTimedOut("errors={}"), NoHostAvailable("x", {}),
])
def test_a_failed_read_is_always_fail(exc: BaseException) -> None:
    assert classify_read(exc) is OpType.FAIL


def test_patterns_and_their_consistency_levels() -> None:
    assert PATTERNS == ("quorum", "one", "quorum-write-one-read", "downgrading")
    one = ConsistencyLevel.ONE
    assert [LEVELS[p] for p in PATTERNS] == [(QUORUM, QUORUM), (one, one), (QUORUM, one), (QUORUM, QUORUM)]


def test_downgrading_policy_notes_what_it_hides() -> None:
    """The driver's own decisions, and the note the ok op carries (a plain retry at the same level is none)."""
    from cassandra.policies import WriteType

    from chaoskit.clients.cassandra import RecordingDowngrade

    policy = RecordingDowngrade()
    assert policy.on_unavailable(None, QUORUM, 2, 1, 0) == (policy.RETRY, ConsistencyLevel.ONE)
    assert policy.note == "downgraded: Unavailable (1 of 2 alive), retried at ONE"
    policy.note = None
    assert policy.on_write_timeout(None, QUORUM, WriteType.SIMPLE, 2, 1, 0) == (policy.IGNORE, None)
    assert policy.note is not None and "ignored (reported as success)" in policy.note
    policy.note = None
    assert policy.on_write_timeout(None, QUORUM, WriteType.SIMPLE, 2, 0, 0) == (policy.RETHROW, None)
    assert policy.on_read_timeout(None, QUORUM, 2, 2, False, 0) == (policy.RETRY, QUORUM)
    assert policy.note is None, "a retry at the asked level hides nothing"
    assert policy.on_unavailable(None, QUORUM, 2, 1, 1)[0] == policy.RETHROW, "once only"
