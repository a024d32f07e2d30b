"""Cassandra workload client: the DataStax python driver against the whole ring, in three patterns.

- ``quorum``: QUORUM writes and reads (2 of 3 replicas), idempotent statements, tenacity backoff with
  jitter around what the driver does not retry. The recommended Amazon Keyspaces pattern (Keyspaces
  writes are always LOCAL_QUORUM).
- ``one``: ONE writes and reads: any single replica acknowledges or answers.
- ``quorum-write-one-read``: QUORUM writes, ONE reads: a read may miss a write a QUORUM acknowledged
  when it reaches the replica that did not get it.
- ``downgrading``: the anti-pattern. QUORUM asked, but the driver's (deprecated)
  ``DowngradingConsistencyRetryPolicy`` retries an ``Unavailable`` at the level the alive replicas
  allow (ONE when one is), ignores a ``WriteTimeout`` once one replica has the write (the driver
  reports success), and retries a ``ReadTimeout`` at the level of the replicas that answered. Those
  acknowledgements are not QUORUM acknowledgements: each such op ends ok with a note of what was hidden
  (``downgraded: ...``), and a downgraded read may be stale. Each request goes to a random
  coordinator (:class:`ShuffledCoordinators`), as many application instances' would.

Every row is ``(p=0, id=value)`` in one partition (clustering ``id DESC``), so a read can also say the
newest value the replica it reached had. An insert of the same key is idempotent: the driver and the
application may retry it.

How an op ended (fail = certainly not applied, info = maybe applied):

- ``Unavailable``: the coordinator refused before it wrote anything (too few replicas alive) -> fail.
- ``NoHostAvailable``: no coordinator took it -> fail when every host's error says so (Unavailable,
  connection refused, no connection to try it on: "marked down"); info if one of them may have run it
  (a connection lost mid-request, a timeout).
- ``WriteTimeout`` / ``WriteFailure``: some replicas may have it -> info. ``OperationTimedOut``: the
  driver gave up waiting; the coordinator may have applied it -> info. Anything else -> info.
- Reads change nothing: every failed read is fail (``ReadTimeout`` included).
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Callable
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    InvalidRequest,
    OperationTimedOut,
    Unavailable,
)
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResponseFuture
from cassandra.connection import ConnectionException
from cassandra.policies import (
    ConstantReconnectionPolicy,
    DowngradingConsistencyRetryPolicy,
    RetryPolicy,
    RoundRobinPolicy,
)
from cassandra.query import PreparedStatement

from chaoskit.clients.base import Outcome
from chaoskit.clients.retry import RetryPolicy as AppRetry
from chaoskit.clients.retry import call_with_policy
from chaoskit.history import OpType
from chaoskit.systems.cassandra.settings import KEYSPACE, PORT, TABLE

# the driver's errors do not share one base: NoHostAvailable and ConnectionException are plain Exceptions
RETRY_ON = (DriverException, NoHostAvailable, ConnectionException, OSError)
LEVELS = {"quorum": (ConsistencyLevel.QUORUM, ConsistencyLevel.QUORUM),
          "one": (ConsistencyLevel.ONE, ConsistencyLevel.ONE),
          "quorum-write-one-read": (ConsistencyLevel.QUORUM, ConsistencyLevel.ONE),
          "downgrading": (ConsistencyLevel.QUORUM, ConsistencyLevel.QUORUM)}


def _not_sent(exc: BaseException) -> bool:
    """This host certainly did not run it: refused by the coordinator, or never connected."""
    if isinstance(exc, Unavailable | InvalidRequest | ConnectionRefusedError):
        return True
    text = str(exc).lower()  # the driver's own: no connection to try it on ("marked down"), or connect refused
    return not isinstance(exc, OperationTimedOut) and ("refused" in text or "marked down" in text)


def classify(exc: BaseException) -> OpType:
    """How a failed write ended: fail = certainly not applied, info = maybe applied."""
    if isinstance(exc, Unavailable | InvalidRequest):
        return OpType.FAIL
    if isinstance(exc, NoHostAvailable):
        errors = list((exc.errors or {}).values())
        return OpType.FAIL if all(_not_sent(e) for e in errors) else OpType.INFO
    return OpType.INFO  # WriteTimeout, WriteFailure, OperationTimedOut, a lost connection, the unknown


def classify_read(exc: BaseException) -> OpType:
    """A read applies nothing: whatever stopped it (ReadTimeout, Unavailable, ...), it failed."""
    return OpType.FAIL



class RecordingDowngrade(DowngradingConsistencyRetryPolicy):
    """The driver's downgrading policy as it ships, noting what it hid (one op in flight per client:
    ``note`` is reset before each op and read after it)."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # deprecated in the driver: that is the point of this pattern
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__()
        self.note: str | None = None

    def _noted(self, decision: tuple[int, Any], what: str) -> tuple[int, Any]:
        if decision[0] == self.RETRY and decision[1] is not None:
            self.note = f"downgraded: {what}, retried at {ConsistencyLevel.value_to_name[decision[1]]}"
        elif decision[0] == self.IGNORE:
            self.note = f"downgraded: {what}, ignored (reported as success)"
        return decision

    def on_read_timeout(self, query: Any, consistency: int, required_responses: int, received_responses: int,
                        data_retrieved: bool, retry_num: int) -> tuple[int, Any]:
        decision = super().on_read_timeout(query, consistency, required_responses, received_responses,
                                           data_retrieved, retry_num)
        if decision[1] == consistency:
            return decision  # the same level again: no downgrade
        return self._noted(decision, f"ReadTimeout ({received_responses} of {required_responses} answered)")

    def on_write_timeout(self, query: Any, consistency: int, write_type: Any, required_responses: int,
                         received_responses: int, retry_num: int) -> tuple[int, Any]:
        decision = super().on_write_timeout(query, consistency, write_type, required_responses,
                                            received_responses, retry_num)
        return self._noted(decision, f"WriteTimeout ({received_responses} of {required_responses} acknowledged)")

    def on_unavailable(self, query: Any, consistency: int, required_replicas: int, alive_replicas: int,
                       retry_num: int) -> tuple[int, Any]:
        decision = super().on_unavailable(query, consistency, required_replicas, alive_replicas, retry_num)
        return self._noted(decision, f"Unavailable ({alive_replicas} of {required_replicas} alive)")


class ShuffledCoordinators(RoundRobinPolicy):
    """Each request to a coordinator picked at random, then the others in ring order: what the driver's
    default token-aware policy does (it shuffles the replicas) when every node holds every row. Paced
    readers and writers on plain round robin fall into step and keep reaching the same coordinator."""

    def make_query_plan(self, working_keyspace: Any = None, query: Any = None) -> Any:
        self._position = random.randrange(1 << 30)
        return super().make_query_plan(working_keyspace, query)


def make_cluster(hosts: list[str], *, timeout_s: float, consistency: int = ConsistencyLevel.QUORUM,
                 retry: RetryPolicy | None = None, shuffle: bool = False) -> Cluster:
    """A driver Cluster for these contact points (round robin over every node, or a random coordinator
    per request with ``shuffle``; protocol v5)."""
    balance = ShuffledCoordinators() if shuffle else RoundRobinPolicy()
    profile = ExecutionProfile(load_balancing_policy=balance, retry_policy=retry or RetryPolicy(),
                               consistency_level=consistency, request_timeout=timeout_s)
    return Cluster(hosts, port=PORT, protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                   connect_timeout=min(timeout_s, 2.0), control_connection_timeout=2.0,
                   reconnection_policy=ConstantReconnectionPolicy(0.5, max_attempts=None),
                   idle_heartbeat_interval=5, schema_metadata_enabled=False, token_metadata_enabled=False)


class CassandraClientPattern:
    """One worker's client. ``write`` inserts ``(0, value)``; ``read`` looks a value up."""

    def __init__(self, pattern: str, hosts: list[str], *, timeout_s: float, policy: AppRetry,
                 name_of: Callable[[str, int], str | None]) -> None:
        self.pattern, self.hosts, self.timeout_s, self.policy, self.name_of = pattern, hosts, timeout_s, policy, name_of
        self.write_cl, self.read_cl = LEVELS[pattern]
        self._cluster: Cluster | None = None
        self._session: Any = None
        self._stmts: dict[str, PreparedStatement] = {}
        self._last: ResponseFuture | None = None
        self._downgrade = RecordingDowngrade() if pattern == "downgrading" else None

    def open(self) -> None:
        self._cluster = make_cluster(self.hosts, timeout_s=self.timeout_s, retry=self._downgrade,
                                     shuffle=self._downgrade is not None)
        self._session = self._cluster.connect()
        queries = {"write": f"INSERT INTO {KEYSPACE}.{TABLE} (p, id) VALUES (0, ?)",
                   "read": f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0 AND id >= ?",
                   "newest": f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0 LIMIT 1"}
        for name, cql in queries.items():
            stmt = self._session.prepare(cql)
            stmt.is_idempotent = True
            stmt.consistency_level = self.write_cl if name == "write" else self.read_cl
            self._stmts[name] = stmt

    def _run(self, name: str, params: tuple[Any, ...], host: Any = None) -> list[int]:
        if self._session is None:
            self.open()
        future = self._session.execute_async(self._stmts[name], params, host=host)
        self._last = future
        try:
            return [int(row.id) for row in future.result()]
        except NoHostAvailable as exc:  # name each host's error up front: the journal keeps 200 characters
            hosts = ", ".join(f"{getattr(h, 'address', h)}: {type(e).__name__}" for h, e in exc.errors.items())
            raise NoHostAvailable(f"no host could run it ({hosts})", exc.errors) from exc

    def _read(self, want: int) -> dict[str, Any]:
        ids = self._run("read", (want,))
        found = want in ids
        if not ids and self._last is not None:  # nothing at or past it: the newest this coordinator returns
            first = self._last
            try:
                ids = self._run("newest", (), first.coordinator_host)
            except RETRY_ON:  # the read itself succeeded (stale): how stale is only a bonus
                ids = []
            self._last = first  # the op's node is the coordinator of the read that decided it
        return {"want": want, "found": found, "seen": max(ids) if ids else None}

    def invoke(self, f: str, value: Any) -> Outcome:
        self._last = None
        if self._downgrade is not None:
            self._downgrade.note = None
        if f == "write":
            out = call_with_policy(lambda: self._run("write", (value,)), classify, self.policy,
                                   retry_on=RETRY_ON)
        elif f == "read":
            out = call_with_policy(lambda: self._read(value), classify_read, self.policy,
                                   retry_on=RETRY_ON)
        else:
            raise ValueError(f"unknown op {f!r}")
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        host = self._last.coordinator_host if self._last is not None and out.type is OpType.OK else None
        node = self.name_of(*_split(host)) if host else None
        note = self._downgrade.note if self._downgrade is not None and out.type is OpType.OK else None
        return Outcome(out.type, value_out, node, note or out.error, out.attempts)

    def close(self) -> None:
        if self._cluster is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._cluster.shutdown()
            self._cluster, self._session = None, None


def _split(host: Any) -> tuple[str, int]:
    """The driver names a coordinator as a Host (``.address``) or an ``address:port`` string."""
    address = getattr(host, "address", None) or str(host).rsplit(":", 1)[0]
    return str(address), PORT
