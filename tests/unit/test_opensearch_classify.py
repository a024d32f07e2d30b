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

from chaoskit.clients.opensearch import (
    ATTEMPTS,
    attempt_outcome,
    classify,
    classify_read,
    describe_error,
    describe_reply,
)
from chaoskit.history import History, Op, OpType

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
    (ConflictError(409, "version_conflict_engine_exception", {}), "maybe"),
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


def test_a_conflict_alone_is_not_an_acknowledgement() -> None:
    """A 409 says some copy holds the document -- possibly a primary cut off from its replicas, whose copy is
    thrown away when it rejoins (issue 12): an op whose last word is a conflict is maybe-applied, not ok."""
    conflict = _with(ConflictError(409, "version_conflict_engine_exception", {}), "maybe", "maybe")
    assert classify(conflict) is OpType.INFO


def test_each_reply_and_error_in_one_line() -> None:
    created = ('{"_index":"chaoskit","_id":"7","_version":1,"result":"created",'
               '"_shards":{"total":2,"successful":2,"failed":0},"_seq_no":12,"_primary_term":2}')
    assert describe_reply(201, created) == "201 created seq=12 term=2 shards=2/2/0"
    assert describe_reply(200, b'{"result":"updated","_seq_no":3,"_primary_term":1}') == "200 updated seq=3 term=1"
    assert describe_reply(200, "not json") == "200"
    reason = "[7]: version conflict, document already exists (current version [1])"
    body = {"error": {"root_cause": [{"type": "version_conflict_engine_exception", "shard": "1", "reason": reason}]},
            "status": 409}
    assert describe_error(ConflictError(409, "version_conflict_engine_exception", body)) == \
        "409 version_conflict_engine_exception shard=1 (current version [1])"
    assert describe_error(TransportError(503, "unavailable_shards_exception", {})) == "503 unavailable_shards_exception"
    assert describe_error(TIMEOUT) == "timeout" and describe_error(REFUSED) == "refused"
    assert describe_error(DROPPED).startswith("conn-error")


def test_the_wire_lines_go_through_the_history_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    op = Op(1, OpType.OK, "write", 7, 1.5, node="n1", attempts=2, wire=("n2 timeout @0+3001ms", "n1 201 created"))
    h = History([op, Op(1, OpType.OK, "write", 8, 2.0)])
    h.write_jsonl(tmp_path / "h.jsonl")
    back = History.read_jsonl(tmp_path / "h.jsonl").snapshot()
    assert back[0] == op and back[1].wire is None and "wire" not in back[1].to_dict()


class _Stub:
    """Stands in for opensearch-py in the one decision under test: what the client sends after a conflict."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def create(self, **kw: object) -> None:
        self.sent.append("create")
        raise ConflictError(409, "version_conflict_engine_exception", {})

    def index(self, **kw: object) -> dict[str, object]:
        self.sent.append(f"index {kw['id']} {kw['body']}")
        return {"result": "created"}


def test_a_conflict_is_confirmed_by_a_replicated_write() -> None:
    from chaoskit.clients.opensearch import OpenSearchClientPattern
    from chaoskit.clients.retry import RetryPolicy

    client = OpenSearchClientPattern("all-hosts-retry", ["127.0.0.1"], timeout_s=1.0, policy=RetryPolicy.none(),
                                     options={"wait_for_active_shards": "all"}, name_of=lambda h, p: None)
    stub = _Stub()
    client._client = stub  # type: ignore[assignment]
    client._write(7)
    assert stub.sent == ["create", "index 7 {'v': 7}"]
