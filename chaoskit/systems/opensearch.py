"""OpenSearch 2.19 cluster of 3: the Amazon OpenSearch Service stand-in.

Every node is cluster-manager eligible and holds data. The experiment's index ``chaoskit`` has 3 shards
with 1 replica each, spread over the nodes: every node holds primaries of some shards and replicas of
others. A write goes to the node holding its shard's primary, which forwards it to every in-sync replica
before acknowledging. When that node fails, the elected cluster manager promotes a replica of each of its
shards to primary (the cluster goes yellow: some replicas are missing) and writes carry on; when it comes
back its copies are recovered and the cluster goes green. Search sees what the last refresh (every
``refresh_interval``, 1 s) made visible: "typically eventual"; a GET by id is realtime.

Fault detection: a node that closes its connections (killed) is noticed at once; a silent one (partitioned,
frozen) after ``fault_detection_retries`` follower checks of ``fault_detection_timeout_s`` each (OpenSearch's
defaults: 3 x 10 s). Lab-sized: 256 MB heaps, ``cluster.info.update.interval`` 10 s (default 30 s, at least
10 s: how soon disk watermarks are noticed). Local backend only in this slice (the zip comes from Maven Central, see
``opensearch_dist``); nodes run as ``nobody``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from opensearchpy import OpenSearch
from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.opensearch import INDEX, OPTIONS, PATTERNS, PORT, OpenSearchClientPattern, make_client
from chaoskit.clients.retry import RetryPolicy
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.faults import CONFIG, NativeFault, kind_of, register
from chaoskit.systems import opensearch_dist as dist
from chaoskit.systems.base import (
    ComposeNode,
    Event,
    EventSink,
    Facts,
    LocalImage,
    NodeBook,
    Progress,
    System,
    Topology,
    node_at,
    own_topology,
    validate_experiment,
    wait_until,
)

ROLES = ("cluster-manager", "primary-holder", "replica-holder", "all", "others")
ONE_PRIMARY_ONLY = ("old_primary_demoted",)  # a primary per shard, on several nodes: no one old primary
LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


class OpenSearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: int = Field(3, ge=3, le=5)
    heap_mb: int = Field(256, ge=128, le=4096)
    shards: int = Field(3, ge=1, le=12)
    replicas: int = Field(1, ge=0, le=4)
    refresh_interval: str = Field("1s", pattern=r"^(-1|\d+(ms|s|m))$", description="the index's refresh interval")
    fault_detection_timeout_s: float = Field(10.0, gt=0, description="follower/leader check timeout (default 10)")
    fault_detection_retries: int = Field(3, ge=1, le=10, description="failed checks before a node is removed "
                                         "(default 3)")
    cluster_info_interval_s: float = Field(10.0, ge=10, description="how often disk usage is sampled (default 30, "
                                           "at least 10)")


# -- chaoskit's own HTTP (not the workload's client): urllib, one node at a time ------------------------------

def _http(address: str, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{address}:{PORT}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 -- our own nodes
        text = res.read().decode()
    return json.loads(text) if text.strip() else None


def _get(address: str, path: str, timeout: float = 2.0) -> Any:
    return _http(address, "GET", path, timeout=timeout)


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


@dataclass(frozen=True)
class OpenSearchConnection:
    """How your own opensearch-py reaches the cluster: every node's address (port 9200, plain HTTP, no
    security plugin) and the index (documents ``{"v": <int>}`` with id ``str(v)``)."""

    hosts: tuple[str, ...]
    port: int = PORT
    index: str = INDEX
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> address

    def client(self, **kwargs: Any) -> OpenSearch:
        """opensearch-py's own ``OpenSearch`` over every node; ``kwargs`` override its options."""
        return OpenSearch(hosts=[{"host": h, "port": self.port} for h in self.hosts], **kwargs)


@register
@fault_model(frozen=True, config=CONFIG)
class ExcludeNode(NativeFault):
    """``cluster.routing.allocation.exclude._name``: the cluster moves every shard copy off the target (a
    node drained for maintenance); heal lets them back."""

    target: str = "primary-holder"
    kind: Literal["exclude-node"] = field(default="exclude-node", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = own_topology(topology, OpenSearchTopology, self.kind)
        hit = os_.resolve(self.target)
        os_.cluster_settings({"cluster.routing.allocation.exclude._name": ",".join(n.name for n in hit)})
        return hit

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        own_topology(topology, OpenSearchTopology, self.kind).cluster_settings(
            {"cluster.routing.allocation.exclude._name": None})


@register
@fault_model(frozen=True, config=CONFIG)
class CloseIndex(NativeFault):
    """Close the experiment's index (``POST /chaoskit/_close``): every read and write is refused until
    heal opens it again. The target is only recorded (every node is hit)."""

    target: str = "all"
    kind: Literal["close-index"] = field(default="close-index", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = own_topology(topology, OpenSearchTopology, self.kind)
        os_.on_any("POST", f"/{INDEX}/_close?wait_for_active_shards=0", timeout=30)
        return os_.resolve(self.target)

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        own_topology(topology, OpenSearchTopology, self.kind).on_any("POST", f"/{INDEX}/_open", timeout=30)

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        return own_topology(topology, OpenSearchTopology, self.kind).index_closed()


@register
@fault_model(frozen=True, config=CONFIG)
class DiskWatermark(NativeFault):
    """Disk flood stage: the disk watermarks set below what the disk already holds, so every node (the lab's
    nodes share one disk) is over flood stage; within ``cluster_info_interval_s`` the cluster puts a
    read-only-allow-delete block on every index with a shard there, and writes are refused (429). Heal
    resets the watermarks and lifts the block (OpenSearch would lift it by itself once below the high
    watermark; heal does not wait for that)."""

    target: str = "all"
    kind: Literal["disk-watermark"] = field(default="disk-watermark", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        os_ = own_topology(topology, OpenSearchTopology, self.kind)
        used = os_.disk_used_percent()
        if used < 4:
            raise InfrastructureError(f"the disk is only {used:.1f}% used: no watermark below it to set")
        low, high, flood = (max(1, int(used) - d) for d in (3, 2, 1))
        os_.cluster_settings({"cluster.routing.allocation.disk.watermark.low": f"{low}%",
                              "cluster.routing.allocation.disk.watermark.high": f"{high}%",
                              "cluster.routing.allocation.disk.watermark.flood_stage": f"{flood}%"})
        return os_.resolve(self.target)

    def revert(self, topology: Topology, backend: Backend, nodes: list[Node]) -> None:
        os_ = own_topology(topology, OpenSearchTopology, self.kind)
        os_.cluster_settings({f"cluster.routing.allocation.disk.watermark.{w}": None
                              for w in ("low", "high", "flood_stage")})
        os_.on_any("PUT", f"/{INDEX}/_settings", {"index.blocks.read_only_allow_delete": None})

    def in_force(self, topology: Topology, backend: Backend, nodes: list[Node]) -> bool:
        return own_topology(topology, OpenSearchTopology, self.kind).watermark_lowered()


class OpenSearchTopology(NodeBook):
    facts = Facts(detected_kinds=("node-left", "cluster-manager-lost", "health-yellow", "health-red",
                                  "index-blocked"),
                  promoted_kinds=("primary-promoted", "cluster-manager-elected"), one_primary=False)

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = OpenSearchSettings.model_validate(exp.topology), exp
        self.names = [f"opensearch-{i + 1}" for i in range(self.settings.nodes)]
        self._pool = ThreadPoolExecutor(max_workers=len(self.names), thread_name_prefix="opensearch-view")
        self.refused: set[str] = set()  # nodes whose last poll was refused (down), not merely slow

    # -- start -----------------------------------------------------------------------------------
    def _extra(self) -> dict[str, str]:
        s = self.settings
        return {"cluster.fault_detection.follower_check.timeout": f"{s.fault_detection_timeout_s:g}s",
                "cluster.fault_detection.follower_check.retry_count": str(s.fault_detection_retries),
                "cluster.fault_detection.leader_check.timeout": f"{s.fault_detection_timeout_s:g}s",
                "cluster.fault_detection.leader_check.retry_count": str(s.fault_detection_retries),
                "cluster.info.update.interval": f"{s.cluster_info_interval_s:g}s",
                # lab disks are shared and may be fuller than a server's: block only when nearly out of space
                "cluster.routing.allocation.disk.watermark.low": "1gb",
                "cluster.routing.allocation.disk.watermark.high": "500mb",
                "cluster.routing.allocation.disk.watermark.flood_stage": "200mb"}

    def up(self, progress: Progress) -> None:
        cached = dist.ensure_dist(progress)
        self.addresses = self.backend.prepare(self.names)
        home = dist.run_home(cached, self.workdir)
        options: list[str] | None = None
        for name in self.names:
            d = self.workdir / name
            yml = dist.node_yml(name=name, address=self.addresses[name], names=self.names,
                                seeds=[self.addresses[n] for n in self.names], directory=d, extra=self._extra())
            conf = dist.write_conf(home, d, yml)
            (conf / "log4j2.properties").write_text(LOG4J2)
            if options is None:
                options = dist.jvm_options(home, conf, self.settings.heap_mb)
            for sub in ("data", "logs", "tmp"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            for path in (d, *d.rglob("*")):
                shutil.chown(path, dist.USER, _group())
            argv = dist.jvm_argv(dist=home, conf=conf, options=options, tmpdir=d / "tmp")
            self._start(NodeSpec(name, argv, d, PORT, user=dist.USER, env=dist.ENV, extra_ports=(9300,)))
        progress(f"started {len(self.names)} OpenSearch {dist.VERSION} nodes ({self.settings.heap_mb} MB heaps)")

    def wait_ready(self, timeout: float) -> None:
        """Every node answers HTTP and the cluster has every node with one manager; the index is created
        (its shards and replicas) and the cluster is green."""
        deadline = time.monotonic() + max(timeout, 120)  # three JVMs on a loaded machine: generous
        for name in self.names:
            self._wait_http(name, deadline)
        wait_until(self._formed, deadline - time.monotonic(), "every node to join one cluster", interval=0.3,
                   log_tail=self._tail)
        wait_until(self._create_index, deadline - time.monotonic(), f"the index {INDEX} to be created",
                   interval=0.5, log_tail=self._tail)
        wait_until(self._green, deadline - time.monotonic(), "the cluster to be green", interval=0.3,
                   log_tail=self._tail)

    def _wait_http(self, name: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.backend.is_running(self.nodes[name]):
                raise InfrastructureError(f"{name} exited during start-up", self._tail([name]))
            with contextlib.suppress(OSError, ValueError):
                if _get(self.addresses[name], "/", 1.0):
                    return
            time.sleep(0.3)
        raise InfrastructureError(f"timed out waiting for {name} to answer HTTP", self._tail([name]))

    def _tail(self, names: list[str] | None = None) -> str:
        """Each node's last log lines that say something (a Java stack's frames do not)."""
        out = []
        for name in names or list(self.nodes):
            lines = [line for line in self.backend.log_tail(self.nodes[name], 200).splitlines()
                     if line.strip() and not line.lstrip().startswith(("at ", "..."))]
            if lines:
                out.append(f"[{name}]\n" + "\n".join(line[:300] for line in lines[-6:]))
        return "\n".join(out)

    def _formed(self) -> bool:
        self._check_running()
        h = _get(self.addresses[self.names[0]], "/_cluster/health", 2.0)
        return bool(h["number_of_nodes"] == len(self.names))

    def _create_index(self) -> bool:
        s = self.settings
        body = {"settings": {"index": {"number_of_shards": s.shards, "number_of_replicas": s.replicas,
                                       "refresh_interval": s.refresh_interval}},
                "mappings": {"dynamic": "strict", "properties": {"v": {"type": "long"}}}}
        try:
            _http(self.addresses[self.names[0]], "PUT", f"/{INDEX}?wait_for_active_shards=all&timeout=30s", body, 40)
        except urllib.error.HTTPError as exc:
            if b"resource_already_exists_exception" not in exc.read():  # an earlier attempt's reply was lost
                raise
        return True

    def _green(self) -> bool:
        h = _get(self.addresses[self.names[0]], "/_cluster/health?wait_for_status=green&timeout=1s", 3.0)
        return bool(h["status"] == "green" and h["number_of_nodes"] == len(self.names))

    # -- views -----------------------------------------------------------------------------------
    def _view(self, name: str, timeout: float = 0.5) -> View | None:
        """A node's local cluster state (None: it does not answer -- down, frozen, starting, or slow: a node
        that refused the connection is in ``self.refused`` until it answers again)."""
        path = (f"/_cluster/state/cluster_manager_node,nodes,routing_table,blocks/{INDEX}?local=true"
                "&filter_path=cluster_manager_node,nodes.*.name,routing_table,blocks")
        try:
            st = _get(self.addresses[name], path, timeout)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
                self.refused.add(name)
            return None
        self.refused.discard(name)
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

    def _views(self, timeout: float = 0.5) -> dict[str, View]:
        futures = {n: self._pool.submit(self._view, n, timeout) for n in self.names}
        return {n: v for n, f in futures.items() if (v := f.result()) is not None}

    @staticmethod
    def _managers_view(views: dict[str, View]) -> View | None:
        """The view of the node that is the elected manager by its own account (the freshest state), else
        any node's that knows a manager."""
        own = [v for v in views.values() if v.manager == v.node]
        if own:
            return max(own, key=lambda v: len(v.members))
        return next((v for v in views.values() if v.manager is not None), None)

    def _current(self) -> View:
        view = self._managers_view(self._views(1.0))
        if view is None:
            raise InfrastructureError("no node knows an elected cluster manager")
        return view

    def on_any(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """A request to the elected manager if it answers, else to each node in turn (the first answer)."""
        view = self._managers_view(self._views(1.0))
        order = [view.manager] if view is not None and view.manager else []
        errors = []
        for name in [*order, *(n for n in self.names if n not in order)]:
            try:
                return _http(self.addresses[name], method, path, body, timeout)
            except urllib.error.HTTPError as exc:
                raise InfrastructureError(f"{method} {path} on {name}: HTTP {exc.code}: "
                                          f"{exc.read().decode(errors='replace')[:300]}") from None
            except OSError as exc:
                errors.append(f"{name}: {exc}")
        raise InfrastructureError(f"no node answered {method} {path}: " + "; ".join(errors)[:400])

    def cluster_settings(self, transient: dict[str, Any]) -> None:
        self.on_any("PUT", "/_cluster/settings", {"transient": transient})

    def disk_used_percent(self) -> float:
        stats = self.on_any("GET", "/_nodes/stats/fs?filter_path=nodes.*.fs.total")
        used = [100.0 * (1 - t["fs"]["total"]["available_in_bytes"] / t["fs"]["total"]["total_in_bytes"])
                for t in stats["nodes"].values()]
        return min(used)

    def watermark_lowered(self) -> bool:
        st = self.on_any("GET", "/_cluster/settings?filter_path=transient")
        return "disk" in json.dumps(st or {})

    def index_closed(self) -> bool:
        view = self._managers_view(self._views(1.0))
        return view is not None and view.closed

    # -- roles -----------------------------------------------------------------------------------
    def node_for_address(self, host: str, port: int) -> str | None:
        return node_at(self.nodes, self.names, host, port)

    def roles(self) -> dict[str, str]:
        views = self._views(1.0)
        manager = self._managers_view(views)
        out = {}
        for name in self.names:
            if name not in views:
                out[name] = "down"
            elif manager is None or name not in manager.members:
                out[name] = "isolated"
            else:
                out[name] = "cluster-manager" if manager.manager == name else "data"
        return out

    def _holders(self, primary: bool) -> list[str]:
        """Nodes by how many started primaries (or replicas) of the index they hold, most first; among equals
        one that is not the elected manager first (a fault on the manager is the cluster-manager role's),
        then node order."""
        view = self._current()
        counts = dict.fromkeys(view.members, 0)
        for shard, holder in view.primaries.items():
            for node in view.copies.get(shard, ()):
                if (node == holder) == primary and node in counts:
                    counts[node] += 1
        ranked = sorted(counts, key=lambda n: (-counts[n], n == view.manager,
                                               self.names.index(n) if n in self.names else 99))
        return [n for n in ranked if counts[n] > 0]

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        """A node name; ``cluster-manager`` (elected now); ``primary-holder`` (the node holding the most
        primaries of the index now; among equals, not the elected manager); ``replica-holder`` (the node
        holding the most replicas, other than the primary-holder); ``all`` / ``others`` (every node but
        ``exclude``)."""
        skip = exclude or set()
        if role in self.nodes:
            names = [role]
        elif role == "cluster-manager":
            manager = self._current().manager
            names = [manager] if manager else []
        elif role == "primary-holder":
            names = self._holders(primary=True)[:1]
        elif role == "replica-holder":
            first = self._holders(primary=True)[:1]
            names = [n for n in self._holders(primary=False) if n not in first][:1]
        elif role in ("all", "others"):
            names = list(self.names)
        else:
            raise InfrastructureError(f"unknown role {role!r}")
        names = [n for n in names if n not in skip]
        if not names and role not in ("all", "others"):
            raise InfrastructureError(f"no node is {role} now")
        return [self.nodes[n] for n in names]

    def client(self, spec: ClientSpec, f: str) -> OpenSearchClientPattern:
        options = dict(spec.options)
        host = options.get("host")
        if host is not None:
            if host not in self.addresses:
                raise UsageError(f"client.options.host: unknown node {host!r} (nodes: {', '.join(self.names)})")
            options["host_address"] = self.addresses[str(host)]
        return OpenSearchClientPattern(spec.pattern, self._hosts(), timeout_s=spec.timeout_s,
                                       policy=RetryPolicy.from_spec(spec), options=options,
                                       name_of=self.node_for_address)

    def _hosts(self) -> list[str]:
        return [self.addresses[n] for n in self.names]

    def connection(self) -> OpenSearchConnection:
        return OpenSearchConnection(tuple(self._hosts()), nodes=dict(self.addresses))

    # -- events ----------------------------------------------------------------------------------
    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        stop = threading.Event()
        threading.Thread(target=self._watch, args=(sink, clock, stop), daemon=True, name="watch-opensearch").start()
        return stop.set

    def _watch(self, sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
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
        health = "green"
        while not stop.wait(0.1):
            try:
                views = self._views(0.5)
            except RuntimeError:  # the pool is shut down: the run is over
                return
            now = clock()
            agreed = _majority(views, len(self.names))
            if manager is None and agreed is not None:
                manager = agreed
            # lost: it refuses connections (killed: its peers' connections closed too), or a majority of the
            # nodes no longer names it; a manager that is merely slow to answer (a loaded machine) is not
            if manager is not None and not lost and (manager in self.refused or agreed not in (None, manager) or (
                    agreed is None and len(views) > len(self.names) // 2)):
                why = ("it refuses connections" if manager in self.refused else
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
            status = _health(view, self.settings.replicas)
            if status != health:
                sink(Event(now, "opensearch", f"health-{status}", _describe(view, self.settings.replicas)))
                health = status
            last = view

    def wait_settled(self, timeout: float) -> bool:
        """Green with every node, no shard moving, every node agreeing on the manager, no write block."""
        def settled() -> bool:
            views = self._views(2.0)
            if len(views) != len(self.names) or _majority(views, len(self.names)) is None:
                return False
            if len({v.manager for v in views.values()}) != 1:
                return False
            h = _get(self.addresses[self.names[0]], "/_cluster/health?wait_for_status=green"
                     "&wait_for_no_relocating_shards=true&wait_for_no_initializing_shards=true&timeout=1s", 3.0)
            view = self._managers_view(views)
            return bool(h["status"] == "green" and not h.get("timed_out") and view is not None and not view.blocked)

        return self._settles(settled, timeout, "the cluster to be green and settled", interval=0.5)

    def final_read(self) -> list[Any]:
        """Every document's value, by search after a refresh, page by page (search_after on ``v``); a
        search that some shard did not answer is no answer."""
        client = make_client(self._hosts(), timeout_s=30.0, retry=True)
        try:
            client.indices.refresh(index=INDEX)
            values: list[int] = []
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {"size": 5000, "sort": [{"v": "asc"}], "_source": False,
                                        "docvalue_fields": ["v"], "track_total_hits": True}
                if after is not None:
                    body["search_after"] = after
                res = client.search(index=INDEX, body=body)
                shards = res["_shards"]
                if shards.get("failed") or shards["successful"] != shards["total"]:
                    raise InfrastructureError(f"the final search reached {shards['successful']} of "
                                              f"{shards['total']} shards")
                hits = res["hits"]["hits"]
                if not hits:
                    return sorted(values)
                values += [int(h["fields"]["v"][0]) for h in hits]
                after = hits[-1]["sort"]
        finally:
            client.close()


def _group() -> int:
    import pwd

    return pwd.getpwnam(dist.USER).pw_gid


def _majority(views: dict[str, View], total: int) -> str | None:
    """The manager a majority of all the nodes names (None: no such agreement)."""
    counts: dict[str, int] = {}
    for v in views.values():
        if v.manager is not None:
            counts[v.manager] = counts.get(v.manager, 0) + 1
    best = max(counts.items(), key=lambda kv: kv[1], default=None)
    return best[0] if best is not None and best[1] > total // 2 else None


def _health(view: View, replicas: int) -> str:
    if any(holder is None for holder in view.primaries.values()) or not view.primaries:
        return "red"
    if any(len(copies) < 1 + replicas for copies in view.copies.values()):
        return "yellow"
    return "green"


def _describe(view: View, replicas: int) -> str:
    no_primary = [s for s, h in sorted(view.primaries.items()) if h is None]
    short = [s for s, c in sorted(view.copies.items()) if len(c) < 1 + replicas]
    parts = [f"{len(view.members)} nodes"]
    if no_primary:
        parts.append(f"no active primary for shard(s) {', '.join(map(str, no_primary))}")
    if short:
        parts.append(f"shard(s) {', '.join(map(str, short))} missing a replica")
    return "; ".join(parts)


class OpenSearchSystem:
    name = "opensearch"
    run_weight = 2.0  # three JVMs of ~430 MB that are green in ~9-20 s
    local_image: LocalImage | None = None  # the docker backend comes next
    client_patterns, roles, settings_model = PATTERNS, ROLES, OpenSearchSettings
    native_faults = (kind_of(ExcludeNode), kind_of(CloseIndex), kind_of(DiskWatermark))

    def validate(self, exp: Experiment) -> None:
        validate_experiment(exp, OpenSearchSettings, PATTERNS, self.native_faults, ROLES,
                            lambda s: {f"opensearch-{i + 1}" for i in range(s.nodes)}, client_options=OPTIONS)
        options = exp.client.options
        for key, allowed in (("wait_for_active_shards", ("1", "all")), ("refresh", ("false", "wait_for")),
                             ("read", ("get", "search"))):
            if key in options and str(options[key]).lower() not in allowed:
                raise ValueError(f"client.options.{key}: {options[key]!r} (known: {', '.join(allowed)})")
        nodes = OpenSearchSettings.model_validate(exp.topology).nodes
        if "host" in options and options["host"] not in {f"opensearch-{i + 1}" for i in range(nodes)}:
            raise ValueError(f"client.options.host: unknown node {options['host']!r}")
        for i, expectation in enumerate(exp.expect):
            if expectation.metric in ONE_PRIMARY_ONLY:
                raise ValueError(f"expect.{i}.metric: {expectation.metric} does not apply to OpenSearch "
                                 "(a primary per shard, spread over the nodes)")

    def topology(self, exp: Experiment, backend: Backend, workdir: Path) -> OpenSearchTopology:
        if backend.name != "local":
            raise UsageError("opensearch runs on the local backend only so far: use --backend local")
        return OpenSearchTopology(exp, backend, workdir)

    def binaries(self) -> dict[str, str]:
        """``java`` and ``runuser`` (nodes run as nobody), and ``mvn`` until the zip is fetched."""
        need = ["java", "runuser"] + ([] if dist.fetched() else ["mvn"])
        return {b: dist.INSTALL_HINT if b != "runuser" else "apt-get install -y util-linux" for b in need}

    def images(self) -> list[str]:
        return []  # no container image yet: ``--backend auto`` picks local

    def image_variable(self) -> tuple[str, str]:
        return ("CHAOSKIT_OPENSEARCH_IMAGE", "")

    def compose_nodes(self, net: str) -> list[ComposeNode]:
        raise ValueError("opensearch: no Compose lab yet")


SYSTEM: System = OpenSearchSystem()  # typed: mypy checks it against the System protocol
