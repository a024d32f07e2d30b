"""What chaoskit reads of a running OpenSearch cluster, and the events it draws from it (no driver): its
own plain HTTP (urllib, one node at a time), each node's local view of the cluster state, the watcher's
loop over those views, and the final read (every value, by search)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaoskit.errors import InfrastructureError
from chaoskit.systems.base import Event, EventSink
from chaoskit.systems.opensearch.settings import INDEX, PORT

# -- chaoskit's own HTTP (not the workload's client): urllib, one node at a time ------------------------------

def http(address: str, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{address}:{PORT}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 -- our own nodes
        text = res.read().decode()
    return json.loads(text) if text.strip() else None


def get(address: str, path: str, timeout: float = 2.0) -> Any:
    return http(address, "GET", path, timeout=timeout)


@dataclass(frozen=True)
class View:
    """One node's local view of the cluster (``?local=true``: what its own cluster state says)."""

    node: str
    manager: str | None  # the elected cluster manager it knows of (a name), None while it knows none
    members: tuple[str, ...]  # the nodes in its cluster state
    primaries: dict[int, str | None]  # shard -> node holding its started primary (None: none active)
    copies: dict[int, tuple[str, ...]]  # shard -> nodes holding a started copy
    blocked: bool  # the index has a write block (read_only_allow_delete: flood stage; or closed)
    closed: bool


VIEW_PATH = (f"/_cluster/state/cluster_manager_node,nodes,routing_table,blocks/{INDEX}?local=true"
             "&filter_path=cluster_manager_node,nodes.*.name,routing_table,blocks")


def parse_view(name: str, st: dict[str, Any]) -> View:
    """``name``'s view from its local cluster state (:data:`VIEW_PATH`)."""
    names = {nid: n.get("name") for nid, n in (st.get("nodes") or {}).items()}
    manager = names.get(st.get("cluster_manager_node") or "")
    primaries: dict[int, str | None] = {}
    copies: dict[int, tuple[str, ...]] = {}
    shards = ((st.get("routing_table") or {}).get("indices") or {}).get(INDEX, {}).get("shards", {})
    for shard, routings in shards.items():
        started = [r for r in routings if r.get("state") == "STARTED"]
        primaries[int(shard)] = next((names.get(r["node"]) for r in started if r.get("primary")), None)
        copies[int(shard)] = tuple(sorted(str(names.get(r["node"])) for r in started))
    index_blocks = ((st.get("blocks") or {}).get("indices") or {}).get(INDEX, {})
    closed = any("close" in str(b.get("description", "")) for b in index_blocks.values())
    blocked = any("write" in b.get("levels", []) for b in index_blocks.values())
    return View(name, manager, tuple(sorted(v for v in names.values() if v)), primaries, copies, blocked, closed)


def majority(views: dict[str, View], total: int) -> str | None:
    """The manager a majority of all the nodes names (None: no such agreement)."""
    counts: dict[str, int] = {}
    for v in views.values():
        if v.manager is not None:
            counts[v.manager] = counts.get(v.manager, 0) + 1
    best = max(counts.items(), key=lambda kv: kv[1], default=None)
    return best[0] if best is not None and best[1] > total // 2 else None


def health(view: View, replicas: int) -> str:
    if any(holder is None for holder in view.primaries.values()) or not view.primaries:
        return "red"
    if any(len(copies) < 1 + replicas for copies in view.copies.values()):
        return "yellow"
    return "green"


def describe(view: View, replicas: int) -> str:
    no_primary = [s for s, h in sorted(view.primaries.items()) if h is None]
    short = [s for s, c in sorted(view.copies.items()) if len(c) < 1 + replicas]
    parts = [f"{len(view.members)} nodes"]
    if no_primary:
        parts.append(f"no active primary for shard(s) {', '.join(map(str, no_primary))}")
    if short:
        parts.append(f"shard(s) {', '.join(map(str, short))} missing a replica")
    return "; ".join(parts)


def watch_views(views_now: Callable[[], dict[str, View]], refused: set[str], total: int, replicas: int,
                sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
    """Poll every node's local cluster state every 0.1 s (a node that does not answer within 0.5 s has
    no say). From the elected manager's own view: ``node-left`` / ``node-joined``, ``health-yellow`` /
    ``health-red`` / ``health-green`` (computed as the health API does: red when a primary is not
    started, yellow when a replica is not), ``primary-promoted`` (a shard's primary is now on a node
    that held its replica), ``index-blocked`` / ``index-unblocked``. From every view:
    ``cluster-manager-lost`` (it refuses connections, or a majority no longer names it: a manager that
    is only slow to answer is not lost) and ``cluster-manager-elected`` (a new one, agreed by a majority)."""
    last: View | None = None
    manager: str | None = None
    lost = False
    current = "green"  # the health last reported
    while not stop.wait(0.1):
        try:
            views = views_now()
        except RuntimeError:  # the pool is shut down: the run is over
            return
        now = clock()
        agreed = majority(views, total)
        if manager is None and agreed is not None:
            manager = agreed
        # lost: it refuses connections (killed: its peers' connections closed too), or a majority of the
        # nodes no longer names it; a manager that is merely slow to answer (a loaded machine) is not
        if manager is not None and not lost and (manager in refused or agreed not in (None, manager) or (
                agreed is None and len(views) > total // 2)):
            why = ("it refuses connections" if manager in refused else
                   f"{agreed} is elected" if agreed else "no majority of the nodes names a manager")
            sink(Event(now, "opensearch", "cluster-manager-lost", f"{manager}: {why}", manager))
            lost = True
        if agreed is not None and agreed != manager:
            sink(Event(now, "opensearch", "cluster-manager-elected", f"{agreed} elected (was {manager})"))
            manager, lost = agreed, False
        elif lost and agreed == manager and manager in views:
            lost = False  # it answers again, and is still the manager (a pause shorter than the checks)
        view = views.get(manager) if manager else None
        if view is None or view.manager != view.node:
            continue
        if last is not None:
            for n in sorted(set(last.members) - set(view.members)):
                sink(Event(now, "opensearch", "node-left", f"{n} removed from the cluster", n))
            for n in sorted(set(view.members) - set(last.members)):
                sink(Event(now, "opensearch", "node-joined", f"{n} joined the cluster", n))
            for shard, holder in sorted(view.primaries.items()):
                before = last.primaries.get(shard)
                if holder is not None and before is not None and holder != before:
                    sink(Event(now, "opensearch", "primary-promoted",
                               f"shard {shard}: the replica on {holder} is primary (was on {before})"))
            if view.blocked != last.blocked and not view.closed and not last.closed:
                sink(Event(now, "opensearch", "index-blocked" if view.blocked else "index-unblocked",
                           f"{INDEX}: write block {'on' if view.blocked else 'lifted'}"))
        status = health(view, replicas)
        if status != current:
            sink(Event(now, "opensearch", f"health-{status}", describe(view, replicas)))
            current = status
        last = view


def read_every_value(client: Any) -> list[int]:
    """Every document's value, by search after a refresh, page by page (search_after on ``v``); a
    refresh or search that some shard did not answer is no answer (InfrastructureError), and so is a count
    of hits other than the exact total the first page reported."""
    refreshed = client.indices.refresh(index=INDEX)["_shards"]
    if refreshed.get("failed") or refreshed.get("successful") != refreshed.get("total"):
        raise InfrastructureError(f"the final refresh reached {refreshed.get('successful')} of "
                                  f"{refreshed.get('total')} shard copies")
    values: list[int] = []
    total: int | None = None
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "sort": [{"v": "asc"}], "_source": False,
                                "docvalue_fields": ["v"], "track_total_hits": True}
        if after is not None:
            body["search_after"] = after
        res = client.search(index=INDEX, body=body)
        shards = res["_shards"]
        if shards.get("failed") or shards["successful"] != shards["total"]:
            raise InfrastructureError(f"the final search reached {shards['successful']} of {shards['total']} shards")
        hits = res["hits"]["hits"]
        total = res["hits"]["total"]["value"] if total is None else total
        if not hits:
            if len(values) != total:
                raise InfrastructureError(f"the final search paged {len(values)} hits of {total}")
            return sorted(values)
        values += [int(h["fields"]["v"][0]) for h in hits]
        after = hits[-1]["sort"]
