"""MongoDB workload client: pymongo against the whole replica set, in four resilience patterns.

- ``retry-writes-majority``: retryable writes (the driver retries a write once, on the new primary,
  after a network error or a "not primary" reply), ``w: "majority"``, and tenacity backoff with
  jitter around what the driver does not retry (a second failure, no primary within the selection
  timeout, a write-concern timeout). The recommended DocumentDB / Atlas pattern.
- ``retry-writes-w1``: the same with ``w: 1`` -- acknowledged by the primary alone.
- ``driver-retry-only``: retryable writes, ``w: "majority"``, no application retry: what the driver
  hides by itself.
- ``no-retry-writes``: ``retryWrites=false``, ``w: "majority"``, one attempt: every error reaches the caller.

Reads use ``readPreference=secondary`` when the workload reads from replicas, else the primary.

Every write inserts ``{_id: value}``, so it is idempotent: a retry whose first attempt was applied
gets a duplicate-key error, which counts as ok -- when the reply carries no write-concern error
(the server waits for the write concern even then, so the existing document is as durable).

How an op ended is decided from what the driver put on the wire (a command listener sees every
attempt): certainly not applied (fail) when no attempt was sent, or every attempt sent was refused
("not writable primary" before it ran, or a write error such as "Not primary while writing" for
the one document); otherwise maybe applied (info: no reply, interrupted, write-concern error).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, NotPrimaryError, PyMongoError, ServerSelectionTimeoutError
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from chaoskit.clients.base import Outcome
from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.history import OpType
from chaoskit.systems.mongo.settings import COLLECTION, DATABASE, REPLICA_SET

APP_RETRY = ("retry-writes-majority", "retry-writes-w1")

# Replies meaning "refused before it ran": the server checks that it can accept writes first.
NOT_APPLIED_CODES = frozenset({10058, 10107, 13435, 13436})  # LegacyNotPrimary, NotWritablePrimary, NotPrimary...
ATTEMPTS = "_chaoskit_attempts"  # attribute set on a raised error: how each attempt on the wire ended


def attempt_outcome(reply: Mapping[str, Any] | None) -> str:
    """One attempt's fate from its reply: "ok", "refused" (certainly not applied) or "maybe"."""
    if reply is None:
        return "maybe"  # sent, no reply (network error, timeout)
    if reply.get("ok") not in (1, 1.0, True):
        return "refused" if reply.get("code") in NOT_APPLIED_CODES else "maybe"
    if reply.get("writeConcernError"):
        return "maybe"  # applied on the primary, not (yet) as durable as asked
    errors = reply.get("writeErrors") or []
    if any(e.get("code") == 11000 for e in errors):
        return "maybe"  # the value is there already (an earlier attempt applied it)
    return "refused" if errors else "ok"  # a write error: that one-document insert did not take effect


def classify(exc: BaseException) -> OpType:
    """fail = certainly not applied; info = maybe applied.

    With the listener's evidence (``ATTEMPTS`` on the error): fail iff every attempt sent was refused
    (none sent included). Without it, from the error alone.
    """
    attempts = getattr(exc, ATTEMPTS, None)
    if attempts is not None:
        return OpType.FAIL if all(a == "refused" for a in attempts) else OpType.INFO
    if isinstance(exc, ServerSelectionTimeoutError):
        return OpType.FAIL
    if isinstance(exc, NotPrimaryError):
        details = exc.details if isinstance(exc.details, Mapping) else {}
        return OpType.FAIL if details.get("code") in NOT_APPLIED_CODES else OpType.INFO
    return OpType.INFO


_ROUTES: dict[tuple[str, int], tuple[str, int]] = {}


def route(routes: dict[tuple[str, int], tuple[str, int]]) -> None:
    """Connect to each announced member address (key) at the address given for it: Docker Desktop,
    where the members' in-network addresses are reached through ports published on 127.0.0.1.

    pymongo discovers the set from the addresses the members announce and has no hook to translate
    them (unlike redis-py's Sentinel), so this wraps its private connect function -- once per process,
    and only once some address really is elsewhere; the driver's discovery, monitoring and retry
    logic are left untouched. A topology passes every member, identity routes included, so a later
    run that reuses an address replaces a stale route instead of inheriting it.
    """
    _ROUTES.update(routes)
    if all(k == v for k, v in _ROUTES.items()):
        return
    _install()


_APP_ROUTES: dict[str, dict[tuple[str, int], tuple[str, int]]] = {}


def route_app(appname: str, routes: dict[tuple[str, int], tuple[str, int]]) -> None:
    """Connect the clients whose ``appname`` is this one (the workload's, and a user's through
    ``MongoConnection.uri``) to each member address (key) at the address given (its Toxiproxy proxy);
    every other connection, chaoskit's own included, is routed as before. An appname is one run's
    (``chaoskit-<run id>``), so a later run in this process never inherits these routes."""
    _APP_ROUTES[appname] = dict(routes)
    _install()


def _install() -> None:
    """Wrap pymongo's private connect function, once per process (see :func:`route`)."""
    from pymongo import pool_shared

    if not getattr(pool_shared._create_connection, "_chaoskit_routed", False):
        connect = pool_shared._create_connection

        def routed(address: Any, options: Any) -> Any:
            addr = (address[0], address[1])
            app = _APP_ROUTES.get(getattr(options, "appname", None) or "", {})
            return connect(app.get(addr) or _ROUTES.get(addr, address), options)

        routed._chaoskit_routed = True  # type: ignore[attr-defined]
        pool_shared._create_connection = routed


class _Wire(CommandListener):
    """Records every attempt of the current op: its outcome, and the server that answered the last one."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.server: tuple[str, int] | None = None
        self.last_reply: Mapping[str, Any] | None = None
        self._pending: dict[int, int] = {}

    def reset(self) -> None:
        self.attempts, self.server, self.last_reply, self._pending = [], None, None, {}

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in ("insert", "aggregate"):
            self._pending[event.request_id] = len(self.attempts)
            self.attempts.append("maybe")

    def succeeded(self, event: CommandSucceededEvent) -> None:
        i = self._pending.pop(event.request_id, None)
        if i is not None:
            self.attempts[i] = attempt_outcome(event.reply)
            host, port = event.connection_id
            self.server, self.last_reply = (host, port or 27017), event.reply

    def failed(self, event: CommandFailedEvent) -> None:
        i = self._pending.pop(event.request_id, None)
        if i is not None:  # a server error carries its code; a network error only errmsg/errtype
            self.attempts[i] = attempt_outcome(event.failure if "code" in event.failure else None)


class MongoClientPattern:
    """One worker's client. ``write`` inserts ``{_id: value}``; ``read`` looks a value up."""

    def __init__(self, pattern: str, hosts: list[tuple[str, int]], *, f: str, read_from: str, timeout_s: float,
                 policy: RetryPolicy, name_of: Callable[[str, int], str | None],
                 server_selection_s: float | None = None, appname: str | None = None,
                 socket_timeout: bool = True) -> None:
        self.pattern, self.hosts, self.f, self.read_from = pattern, hosts, f, read_from
        self.appname = appname  # set when the run routes its clients through Toxiproxy (see route_app)
        self.timeout_s, self.name_of = timeout_s, name_of
        self.socket_timeout = socket_timeout  # False: no socketTimeoutMS, a reply is awaited for ever
        self.policy = policy if pattern in APP_RETRY else RetryPolicy.none()
        self.server_selection_s = server_selection_s if server_selection_s is not None else policy.deadline_s
        self._wire = _Wire()
        self._client: MongoClient[dict[str, Any]] | None = None

    def options(self) -> dict[str, Any]:
        """The driver options of this pattern (a lab-tuned 0.5 s heartbeat so failovers are seen fast)."""
        ms = int(self.timeout_s * 1000)
        secondary = self.f == "read" and self.read_from == "replica"
        return {
            "replicaSet": REPLICA_SET, "retryWrites": self.pattern != "no-retry-writes",
            "w": 1 if self.pattern == "retry-writes-w1" else "majority",
            "wTimeoutMS": None if self.pattern == "retry-writes-w1" else ms,
            "readPreference": "secondary" if secondary else "primary",
            "connectTimeoutMS": ms, "socketTimeoutMS": ms + 1000 if self.socket_timeout else None,
            "serverSelectionTimeoutMS": int(self.server_selection_s * 1000), "heartbeatFrequencyMS": 500,
            "appname": self.appname,
        }

    def open(self) -> None:
        opts = {k: v for k, v in self.options().items() if v is not None}
        self._client = MongoClient([f"{h}:{p}" for h, p in self.hosts], event_listeners=[self._wire],
                                   retryReads=False, **opts)

    def _collection(self) -> Any:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client[DATABASE][COLLECTION]

    def _attempt(self, fn: Callable[[], Any]) -> Any:
        self._wire.reset()
        try:
            return fn()
        except PyMongoError as exc:
            setattr(exc, ATTEMPTS, tuple(self._wire.attempts))
            raise

    def _write(self, value: int) -> None:
        try:
            self._collection().insert_one({"_id": value})
        except DuplicateKeyError:
            reply = self._wire.last_reply or {}
            if reply.get("writeConcernError"):  # present, but not (yet) as durable as asked
                raise
            # an earlier attempt of this op was applied; the server waited for the write concern anyway

    def _read(self, want: int) -> dict[str, Any]:
        # one command, so both answers come from the same member: the value, and the newest value it has
        newest = [{"$sort": {"_id": -1}}, {"$limit": 1}]
        docs = list(self._collection().aggregate([{"$match": {"_id": want}},
                                                  {"$unionWith": {"coll": COLLECTION, "pipeline": newest}}]))
        ids = [int(d["_id"]) for d in docs]
        return {"want": want, "found": want in ids, "seen": max(ids) if ids else None}

    def invoke(self, f: str, value: Any) -> Outcome:
        if f == "write":
            fn: Callable[[], Any] = lambda: self._attempt(lambda: self._write(value))  # noqa: E731
        elif f == "read":
            fn = lambda: self._attempt(lambda: self._read(value))  # noqa: E731
        else:
            raise ValueError(f"unknown op {f!r}")
        out = call_with_policy(fn, classify, self.policy, retry_on=(PyMongoError,))
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        server = self._wire.server
        node = self.name_of(*server) if out.type is OpType.OK and server else None
        return Outcome(out.type, value_out, node, out.error, out.attempts)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._client.close()
            self._client = None
