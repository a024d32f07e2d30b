"""Tests for chaoskit.clients.mongo: which pymongo outcomes mean "not applied" vs "maybe applied"."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from chaoskit.clients.mongo import ATTEMPTS, MongoClientPattern, attempt_outcome, classify
from chaoskit.clients.retry import RetryPolicy
from chaoskit.history import OpType


def _with(exc: Exception, *attempts: str) -> Exception:
    setattr(exc, ATTEMPTS, attempts)
    return exc


@pytest.mark.parametrize(("reply", "expected"), [
    ({"ok": 1.0, "n": 1}, "ok"),
    ({"ok": 0.0, "code": 10107, "errmsg": "not primary"}, "refused"),
    ({"ok": 0.0, "code": 13435, "errmsg": "not primary and secondaryOk=false"}, "refused"),
    ({"ok": 0.0, "code": 11602, "errmsg": "operation was interrupted"}, "maybe"),
    ({"ok": 0.0, "code": 189, "errmsg": "primary stepped down"}, "maybe"),
    ({"ok": 1.0, "n": 1, "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}, "maybe"),
    ({"ok": 1.0, "n": 0, "writeErrors": [{"index": 0, "code": 11000}]}, "maybe"),
    ({"ok": 1.0, "n": 0, "writeErrors": [{"index": 0, "code": 189, "errmsg": "Not primary while writing"}]},
     "refused"),
    ({"ok": 1.0, "n": 0, "writeErrors": [{"index": 0, "code": 189}],
      "writeConcernError": {"code": 11602, "errmsg": "operation was interrupted"}}, "maybe"),
    (None, "maybe"),
], ids=["ok", "not-writable-primary", "not-primary-no-secondary-ok", "interrupted-repl-state-change",
        "primary-stepped-down", "wtimeout", "duplicate-key", "not-primary-while-writing", "write-error-with-wce",
        "network-error"])
def test_attempt_outcome(reply: dict[str, Any] | None, expected: str) -> None:
    assert attempt_outcome(reply) == expected


@pytest.mark.parametrize(("exc", "expected"), [
    (_with(ServerSelectionTimeoutError("no primary")), OpType.FAIL),  # nothing sent
    (_with(NotPrimaryError("not primary", {"code": 10107}), "refused"), OpType.FAIL),
    (_with(NotPrimaryError("not primary", {"code": 10107}), "refused", "refused"), OpType.FAIL),
    # the driver's retry was refused, but the first attempt died on the wire: it may have been applied
    (_with(NotPrimaryError("not primary", {"code": 10107}), "maybe", "refused"), OpType.INFO),
    (_with(ServerSelectionTimeoutError("no primary"), "maybe"), OpType.INFO),
    (_with(NetworkTimeout("timed out"), "maybe"), OpType.INFO),
    (_with(WTimeoutError("waiting for replication timed out", 64, {}), "maybe"), OpType.INFO),
    (_with(DuplicateKeyError("E11000", 11000, {}), "maybe"), OpType.INFO),
    # without the command listener's evidence: from the error alone
    (ServerSelectionTimeoutError("no primary"), OpType.FAIL),
    (NotPrimaryError("not primary", {"code": 10107}), OpType.FAIL),
    (NotPrimaryError("interrupted", {"code": 11602}), OpType.INFO),
    (AutoReconnect("connection closed"), OpType.INFO),
    (RuntimeError("something unexpected"), OpType.INFO),
], ids=["not-sent", "refused", "refused-twice", "maybe-then-refused", "maybe-then-no-primary", "network-timeout",
        "wtimeout", "duplicate-with-wce", "bare-selection-timeout", "bare-not-primary", "bare-interrupted",
        "bare-autoreconnect", "unknown"])
def test_classify(exc: BaseException, expected: OpType) -> None:
    assert classify(exc) is expected


@pytest.mark.parametrize(("pattern", "retry_writes", "w", "app_retry"), [
    ("retry-writes-majority", True, "majority", True),
    ("retry-writes-w1", True, 1, True),
    ("driver-retry-only", True, "majority", False),
    ("no-retry-writes", False, "majority", False),
])
def test_patterns(pattern: str, retry_writes: bool, w: Any, app_retry: bool) -> None:
    client = MongoClientPattern(pattern, [("10.0.0.1", 27017)], f="write", read_from="primary", timeout_s=0.5,
                                policy=RetryPolicy(deadline_s=7.0), name_of=lambda h, p: None)
    opts = client.options()
    assert (opts["retryWrites"], opts["w"], client.policy.retry) == (retry_writes, w, app_retry)
    assert opts["readPreference"] == "primary" and opts["serverSelectionTimeoutMS"] == 7000
    reader = MongoClientPattern(pattern, [("10.0.0.1", 27017)], f="read", read_from="replica", timeout_s=0.5,
                                policy=RetryPolicy(), name_of=lambda h, p: None)
    assert reader.options()["readPreference"] == "secondary"


def test_socket_timeout_option_is_timeout_plus_1_s_or_none() -> None:
    def opts(**kw: Any) -> dict[str, Any]:
        return MongoClientPattern("retry-writes-majority", [("10.0.0.1", 27017)], f="write", read_from="primary",
                                  timeout_s=0.5, policy=RetryPolicy(), name_of=lambda h, p: None, **kw).options()

    assert opts()["socketTimeoutMS"] == 1500
    assert opts(socket_timeout=False)["socketTimeoutMS"] is None, "none: pymongo waits for a reply for ever"


def test_routes_follow_the_latest_topology_and_stale_ones_are_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker Desktop routing: a later run that reuses a member address (same subnet) must not connect
    to the earlier run's published port."""
    from pymongo import pool_shared

    from chaoskit.clients import mongo

    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(pool_shared, "_create_connection", lambda address, options: seen.append(address))
    monkeypatch.setattr(mongo, "_ROUTES", {})
    member = ("10.214.1.10", 27017)
    mongo.route({member: member})  # routed addressing: nothing to wrap
    assert not getattr(pool_shared._create_connection, "_chaoskit_routed", False)
    mongo.route({member: ("127.0.0.1", 40001)})  # a published-mode run
    pool_shared._create_connection(member, None)
    mongo.route({member: member})  # a later routed run on the same subnet
    pool_shared._create_connection(member, None)
    pool_shared._create_connection(("10.9.9.9", 27017), None)  # not ours: untouched
    assert seen == [("127.0.0.1", 40001), member, ("10.9.9.9", 27017)]
