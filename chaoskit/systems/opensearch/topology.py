"""The OpenSearch topology: three nodes, the index, each node's view of the cluster, the final read; the
workload's clients (imports opensearch-py)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaoskit.backends.base import Backend, Node
from chaoskit.clients.opensearch import OpenSearchClientPattern, make_client
from chaoskit.clients.retry import RetryPolicy
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import (
    EventSink,
    Facts,
    NodeBook,
    Progress,
    node_at,
    wait_until,
)
from chaoskit.systems.opensearch import dist
from chaoskit.systems.opensearch import node as nodes
from chaoskit.systems.opensearch.connection import OpenSearchConnection
from chaoskit.systems.opensearch.settings import INDEX, OpenSearchSettings, node_settings
from chaoskit.systems.opensearch.state import (
    VIEW_PATH,
    View,
    get,
    http,
    majority,
    parse_view,
    read_every_value,
    watch_views,
)


class OpenSearchTopology(NodeBook):
    facts = Facts(detected_kinds=("node-left", "cluster-manager-lost", "health-yellow", "health-red",
                                  "index-blocked"),
                  promoted_kinds=("primary-promoted", "cluster-manager-elected"), one_primary=False)
    log_evidence = nodes.LOG_EVIDENCE

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = OpenSearchSettings.model_validate(exp.topology), exp
        self.names = [f"opensearch-{i + 1}" for i in range(self.settings.nodes)]
        self._pool = ThreadPoolExecutor(max_workers=len(self.names), thread_name_prefix="opensearch-view")
        self.refused: set[str] = set()  # nodes whose last poll was refused (down), not merely slow

    # -- start -----------------------------------------------------------------------------------
    def up(self, progress: Progress) -> None:
        version = self.settings.version
        docker = self.backend.name == "docker"
        jdk = None if docker else dist.java_for(version)  # one line, exit 3, when no JDK fits this version
        cached = None if docker else dist.ensure_dist(progress, version=version)
        self.addresses = self.backend.prepare(self.names)
        home = None if cached is None else dist.run_home(cached, self.workdir, version)
        image = nodes.image_for(version)[0]
        options: list[str] = []  # OpenSearch's JvmOptionsParser's, computed once for the three
        log4j = nodes.LOG4J2_REPLICA_FAILURES if self.settings.log_replica_failures else ()
        for name in self.names:
            d = self.workdir / name
            values = nodes.settings(name=name, address=self.addresses[name], names=self.names,
                                   seeds=[self.addresses[n] for n in self.names], data=str(d / "data"),
                                   extra=node_settings(self.settings))
            if home is None or jdk is None:
                self._start(nodes.docker_spec(name, d, values, self.settings.heap_mb, image, log4j))
            else:
                self._start(nodes.local_spec(name, d, values, home, self.settings.heap_mb, options, jdk.java,
                                             log4j))
        where = f"containers of {self._image()}" if docker else f"nodes (Java {jdk.major if jdk else '?'})"
        progress(f"started {len(self.names)} OpenSearch {version} {where} ({self.settings.heap_mb} MB heaps)")

    def _image(self) -> str:
        """The image the first container runs (a stand-in where the asked-for one could not be had)."""
        return self.nodes[self.names[0]].extra.get("image") or nodes.image_for(self.settings.version)[0]

    def server(self) -> dict[str, Any] | None:
        """The version the first node reports (``GET /``) and the Java major its JVM runs (``_nodes/jvm``)."""
        address = self.addresses[self.names[0]]
        try:
            version = str(get(address, "/", 5.0)["version"]["number"])
            jvm = next(iter(get(address, "/_nodes/_local/jvm", 5.0)["nodes"].values()))["jvm"]
        except (OSError, ValueError, KeyError, StopIteration):
            return None
        java = str(jvm.get("version", ""))
        major = int(java.split(".")[0]) if java.split(".")[0].isdigit() else None
        return {"version": version, "java": major, "java_version": java}

    def wait_ready(self, timeout: float) -> None:
        """Every node answers HTTP and the cluster has every node with one manager; the index is created
        (its shards and replicas) and the cluster is green."""
        deadline = time.monotonic() + max(timeout, 120)  # three JVMs on a loaded machine: generous
        for name in self.names:
            self._waithttp(name, deadline)
        wait_until(self._formed, deadline - time.monotonic(), "every node to join one cluster", interval=0.3,
                   log_tail=self._tail)
        wait_until(self._create_index, deadline - time.monotonic(), f"the index {INDEX} to be created",
                   interval=0.5, log_tail=self._tail)
        wait_until(self._green, deadline - time.monotonic(), "the cluster to be green", interval=0.3,
                   log_tail=self._tail)

    def _waithttp(self, name: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.backend.is_running(self.nodes[name]):
                raise InfrastructureError(f"{name} exited during start-up", self._tail([name]))
            with contextlib.suppress(OSError, ValueError):
                if get(self.addresses[name], "/", 1.0):
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
        h = get(self.addresses[self.names[0]], "/_cluster/health", 2.0)
        return bool(h["number_of_nodes"] == len(self.names))

    def _create_index(self) -> bool:
        s = self.settings
        body = {"settings": {"index": {"number_of_shards": s.shards, "number_of_replicas": s.replicas,
                                       "refresh_interval": s.refresh_interval}},
                "mappings": {"dynamic": "strict", "properties": {"v": {"type": "long"}}}}
        try:
            http(self.addresses[self.names[0]], "PUT", f"/{INDEX}?wait_for_active_shards=all&timeout=30s", body, 40)
        except urllib.error.HTTPError as exc:
            if b"resource_already_exists_exception" not in exc.read():  # an earlier attempt's reply was lost
                raise
        return True

    def _green(self) -> bool:
        h = get(self.addresses[self.names[0]], "/_cluster/health?wait_for_status=green&timeout=1s", 3.0)
        return bool(h["status"] == "green" and h["number_of_nodes"] == len(self.names))

    # -- views -----------------------------------------------------------------------------------
    def _view(self, name: str, timeout: float = 0.5) -> View | None:
        """A node's local cluster state (None: it does not answer -- down, frozen, starting, or slow: a node
        that refused the connection is in ``self.refused`` until it answers again)."""
        try:
            st = get(self.addresses[name], VIEW_PATH, timeout)
        except (OSError, ValueError) as exc:
            if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
                self.refused.add(name)
            return None
        self.refused.discard(name)
        return parse_view(name, st)

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
                return http(self.addresses[name], method, path, body, timeout)
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
        watch_views(lambda: self._views(0.5), self.refused, len(self.names), self.settings.replicas, sink, clock,
                    stop)

    def wait_settled(self, timeout: float) -> bool:
        """Green with every node, no shard moving, every node agreeing on the manager, no write block."""
        def settled() -> bool:
            views = self._views(2.0)
            if len(views) != len(self.names) or majority(views, len(self.names)) is None:
                return False
            if len({v.manager for v in views.values()}) != 1:
                return False
            h = get(self.addresses[self.names[0]], "/_cluster/health?wait_for_status=green"
                     "&wait_for_no_relocating_shards=true&wait_for_no_initializing_shards=true&timeout=1s", 3.0)
            view = self._managers_view(views)
            return bool(h["status"] == "green" and not h.get("timed_out") and view is not None and not view.blocked)

        return self._settles(settled, timeout, "the cluster to be green and settled", interval=0.5)

    def final_read(self) -> list[Any]:
        """Every document's value (:func:`~chaoskit.systems.opensearch.state.read_every_value`)."""
        client = make_client(self._hosts(), timeout_s=30.0, retry=True)
        try:
            return read_every_value(client)
        finally:
            client.close()
