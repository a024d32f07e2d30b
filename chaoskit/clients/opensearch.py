"""OpenSearch workload client: opensearch-py, in two patterns, with the write and read settings side by side.

- ``all-hosts-retry``: every node's address (a static host list; ``sniff: true`` asks the cluster for
  its nodes instead), ``retry_on_timeout``, ``max_retries`` (the driver moves to the next node after a
  connection error, a timeout or a 502/503/504), and tenacity backoff with jitter around what the driver
  gives up on, connection errors and 429/503 included. The recommended OpenSearch Service pattern.
- ``single-host``: one node's address (``host``, default the first node), no retry at all: every error
  reaches the caller, and while that node is down so is the client.

Options (``client.options``): ``wait_for_active_shards`` (``1`` -- OpenSearch's default -- or ``all``: a
write first waits, up to ``shard_timeout_s``, for every copy of its shard to be active), ``refresh``
(``false`` or ``wait_for``: the write returns once a refresh has made it visible to search), ``read``
(``search``: a search -- what the index's last refresh made visible; ``get``: a realtime GET by id, which
sees every acknowledged write), ``sniff``, ``max_retries`` (the driver's, default 3), ``host``.

Every write creates document ``<value>`` (``PUT /chaoskit/_create/<value>``): unique ids make it
idempotent. A create that meets a version conflict (409) is *not* taken as "an earlier attempt wrote it":
the conflict is answered by whichever copy acts as primary, and a primary cut off by a partition (its
replica already promoted elsewhere) answers it from a document only it holds -- thrown away when it rejoins
(issue 12: 7 such "acknowledged" writes lost in 11 runs). The client confirms a conflict by writing the same
document again with ``PUT /chaoskit/_doc/<value>`` (replicated like any write, the same
``wait_for_active_shards``): acknowledged only if that is (``updated``: it was there; ``created``: the
conflict was false).

Each attempt is recorded on the op (``Outcome.wire``, one line each: node, HTTP status or what went wrong,
and for a reply ``result``, ``_seq_no``, ``_primary_term`` and ``_shards`` total/successful/failed, with
when it started after the op and how long it took), e.g. ``opensearch-1 201 created seq=163 term=1
shards=2/1/0 @4058+2879ms``.

How an op ended (fail = certainly not applied, info = maybe applied) is decided from every attempt on the
wire (the driver's retries included), recorded by the connection class: an attempt is *refused* when the
connection was refused (nothing sent) or the server answered 429 (rejected, or an index block such as
flood stage's read-only), 503 (no active primary / not enough active shard copies / no cluster manager:
the operation was not performed), or another 4xx; it is *maybe* when it timed out, the connection dropped
mid-request, or the server answered 5xx otherwise. fail iff every attempt was refused. Reads change
nothing: a failed read is always fail.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from opensearchpy import OpenSearch, Urllib3HttpConnection
from opensearchpy.exceptions import (
    ConflictError,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    OpenSearchException,
    TransportError,
)

from chaoskit.clients.base import Outcome
from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.history import OpType
from chaoskit.systems.opensearch.settings import INDEX, PORT

ATTEMPTS = "_chaoskit_attempts"  # set on a raised error: how each attempt on the wire ended
REFUSED_STATUS = frozenset({400, 403, 404, 405, 429, 503})


def attempt_outcome(exc: BaseException | None) -> str:
    """One attempt's fate: "ok", "refused" (certainly not applied) or "maybe"."""
    if exc is None:
        return "ok"
    if isinstance(exc, ConflictError):
        return "maybe"  # a copy holds the document -- maybe only a primary cut off from its replicas: confirm it
    if isinstance(exc, ConnectionTimeout):
        return "maybe"
    if isinstance(exc, ConnectionError):
        return "refused" if _refused(exc) else "maybe"
    if isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        return "refused" if exc.status_code in REFUSED_STATUS else "maybe"
    return "maybe"


def _refused(exc: BaseException) -> bool:
    """The connection was refused (or the address unreachable) before anything was sent."""
    text = f"{exc} {getattr(exc, 'info', '')}".lower()
    return "refused" in text or "no route to host" in text or "newconnectionerror" in text


def classify(exc: BaseException) -> OpType:
    """fail iff every attempt was refused (with the wire's evidence); else info."""
    attempts = getattr(exc, ATTEMPTS, None)
    if attempts:
        return OpType.FAIL if all(a == "refused" for a in attempts) else OpType.INFO
    return OpType.FAIL if attempt_outcome(exc) == "refused" else OpType.INFO


def classify_read(exc: BaseException) -> OpType:
    return OpType.FAIL


class _Wire(threading.local):
    """The attempts of the current op on this thread (each one's fate, and a line saying how it ended), and the
    host that answered the last one."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.notes: list[tuple[str, str]] = []  # (host, "<status> <details> @<ms from the op's start>+<ms taken>")
        self.host: str | None = None
        self.t0 = time.monotonic()


def describe_reply(status: int, body: Any) -> str:
    """One reply, short: ``201 created seq=12 term=2 shards=2/2/0`` (a document write's ``result``,
    ``_seq_no``, ``_primary_term`` and ``_shards`` total/successful/failed)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return str(status)
    if not isinstance(body, dict):
        return str(status)
    parts = [str(status)]
    if "result" in body:
        parts.append(str(body["result"]))
    if "_seq_no" in body:
        parts.append(f"seq={body['_seq_no']} term={body.get('_primary_term')}")
    sh = body.get("_shards")
    if isinstance(sh, dict):
        parts.append(f"shards={sh.get('total')}/{sh.get('successful')}/{sh.get('failed')}")
    return " ".join(parts)


def describe_error(exc: BaseException) -> str:
    """One failed attempt, short: ``409 version_conflict_engine_exception shard=1 (current version [1])``,
    ``503 unavailable_shards_exception``, ``timeout``, ``refused``, ``conn-error``."""
    if isinstance(exc, ConnectionTimeout):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "refused" if _refused(exc) else f"conn-error {type(exc.info).__name__ if exc.info else ''}".strip()
    if isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        info = exc.info if isinstance(exc.info, dict) else {}
        err = info.get("error") if isinstance(info.get("error"), dict) else {}
        root = (err.get("root_cause") or [err])[0] if err else {}
        parts = [str(exc.status_code), str(root.get("type") or exc.error)]
        if root.get("shard") is not None:
            parts.append(f"shard={root['shard']}")
        reason = str(root.get("reason") or "")
        if "current version" in reason:
            parts.append(reason[reason.index("(current version"):][:40])
        return " ".join(parts)
    return type(exc).__name__


def recording_connection(wire: _Wire) -> type[Urllib3HttpConnection]:
    """A connection class that records every request it sends (one per attempt, the driver's retries too)."""

    class Recording(Urllib3HttpConnection):  # type: ignore[misc]
        def perform_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if method == "HEAD" or "/_nodes" in url:  # the sniffer's requests are not the op's
                return super().perform_request(method, url, *args, **kwargs)
            start = time.monotonic()
            verb = "index " if method in ("PUT", "POST") and "/_doc/" in url else ""  # a confirming write
            try:
                out = super().perform_request(method, url, *args, **kwargs)
            except Exception as exc:
                wire.attempts.append(attempt_outcome(exc))
                wire.notes.append((self.hostname, f"{verb}{describe_error(exc)} {_took(wire.t0, start)}"))
                raise
            wire.attempts.append("ok")
            wire.notes.append((self.hostname, f"{verb}{describe_reply(out[0], out[2])} {_took(wire.t0, start)}"))
            wire.host = self.hostname
            return out

    return Recording


def _took(t0: float, start: float) -> str:
    return f"@{(start - t0) * 1000:.0f}+{(time.monotonic() - start) * 1000:.0f}ms"


def make_client(hosts: list[str], *, timeout_s: float, retry: bool, max_retries: int = 3, sniff: bool = False,
                connection_class: type[Urllib3HttpConnection] = Urllib3HttpConnection) -> OpenSearch:
    """opensearch-py over ``hosts`` (addresses, port 9200, plain HTTP)."""
    return OpenSearch(
        hosts=[{"host": h, "port": PORT} for h in hosts], timeout=timeout_s,
        retry_on_timeout=retry, max_retries=max_retries if retry else 0,
        sniff_on_start=sniff, sniff_on_connection_fail=sniff, sniffer_timeout=5 if sniff else None,
        sniff_timeout=timeout_s, connection_class=connection_class, http_compress=False)


class OpenSearchClientPattern:
    """One worker's client. ``write`` creates document ``value``; ``read`` looks for it."""

    def __init__(self, pattern: str, hosts: list[str], *, timeout_s: float, policy: RetryPolicy,
                 options: dict[str, Any], name_of: Callable[[str, int], str | None]) -> None:
        self.pattern, self.timeout_s, self.name_of = pattern, timeout_s, name_of
        self.options = options
        self.retry = pattern == "all-hosts-retry"
        self.policy = policy if self.retry else RetryPolicy.none()
        self.hosts = hosts if self.retry else [options.get("host_address") or hosts[0]]
        self.wait_for = str(options.get("wait_for_active_shards", "1"))
        self.refresh = str(options.get("refresh", "false")).lower()
        self.read_mode = str(options.get("read", "get"))
        self.shard_timeout = f"{float(options.get('shard_timeout_s', 2.0)):g}s"
        self._wire = _Wire()
        self._client: OpenSearch | None = None

    def open(self) -> None:
        self._client = make_client(self.hosts, timeout_s=self.timeout_s, retry=self.retry,
                                   max_retries=int(self.options.get("max_retries", 3)),
                                   sniff=bool(self.options.get("sniff", False)) and self.retry,
                                   connection_class=recording_connection(self._wire))

    def _os(self) -> OpenSearch:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    def _attempt(self, fn: Callable[[], Any]) -> Any:
        mark = len(self._wire.attempts)
        try:
            return fn()
        except OpenSearchException as exc:
            setattr(exc, ATTEMPTS, tuple(self._wire.attempts[mark:]))
            raise

    def _write(self, value: int) -> None:
        # request_timeout first: opensearch-py would take a bare "timeout" as its own HTTP timeout
        params: dict[str, Any] = {"request_timeout": self.timeout_s, "timeout": self.shard_timeout,
                                  "wait_for_active_shards": self.wait_for}
        if self.refresh != "false":
            params["refresh"] = self.refresh
        try:
            self._os().create(index=INDEX, id=str(value), body={"v": value}, params=params)
        except ConflictError:
            # Some copy holds the document: an earlier attempt of this op wrote it -- or so says a primary cut off
            # from its replicas, about a document only it holds, which is thrown away when it rejoins (measured:
            # issue 12). So confirm: write the same document again, replicated like any write ("updated": it
            # was there; "created": the conflict was false).
            self._os().index(index=INDEX, id=str(value), body={"v": value}, params=params)

    def _read(self, want: int) -> dict[str, Any]:
        if self.read_mode == "get":
            try:
                self._os().get(index=INDEX, id=str(want), params={"realtime": "true"})
                return {"want": want, "found": True, "seen": None}
            except NotFoundError as exc:
                if isinstance(exc.info, dict) and exc.info.get("found") is False:
                    return {"want": want, "found": False, "seen": None}
                raise  # index_not_found and the like: not an answer about the document
        body = {"size": 0, "track_total_hits": False,
                "aggs": {"want": {"filter": {"term": {"v": want}}}, "newest": {"max": {"field": "v"}}}}
        res = self._os().search(index=INDEX, body=body)
        shards = res.get("_shards", {})
        if shards.get("failed") or shards.get("successful") != shards.get("total"):
            raise TransportError(503, "partial search", shards)  # some shard did not answer: no answer
        newest = res["aggregations"]["newest"].get("value")
        return {"want": want, "found": res["aggregations"]["want"]["doc_count"] > 0,
                "seen": int(newest) if newest is not None else None}

    def invoke(self, f: str, value: Any) -> Outcome:
        self._wire.attempts, self._wire.notes, self._wire.host = [], [], None
        self._wire.t0 = time.monotonic()
        if f == "write":
            out = call_with_policy(lambda: self._attempt(lambda: self._write(value)), classify, self.policy,
                                   retry_on=(OpenSearchException,))
        elif f == "read":
            out = call_with_policy(lambda: self._attempt(lambda: self._read(value)), classify_read, self.policy,
                                   retry_on=(OpenSearchException,))
        else:
            raise ValueError(f"unknown op {f!r}")
        value_out = out.value if f == "read" and out.type is OpType.OK else value
        host = self._wire.host
        node = self.name_of(host, PORT) if out.type is OpType.OK and host else None
        # attempts: every request on the wire, the driver's own retries on other nodes included
        wire = tuple(f"{self.name_of(h, PORT) or h} {text}" for h, text in self._wire.notes) or None
        return Outcome(out.type, value_out, node, out.error, len(self._wire.attempts) or out.attempts, wire)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # close never raises
                self._client.close()
            self._client = None
