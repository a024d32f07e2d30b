"""The MongoDB topology: the replica set's members, initiated and watched through pymongo; the workload's
clients (imports pymongo)."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import AutoReconnect, CollectionInvalid, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from chaoskit.backends.base import Backend, Node, NodeSpec
from chaoskit.clients.mongo import MongoClientPattern, route, route_app
from chaoskit.clients.retry import RetryPolicy
from chaoskit.experiment import ClientSpec, Experiment
from chaoskit.systems.base import Event, EventSink, Facts, NodeBook, Progress, node_at, resolve_role, wait_until
from chaoskit.systems.mongo.connection import MongoConnection
from chaoskit.systems.mongo.dist import mongod_binary
from chaoskit.systems.mongo.settings import (
    COLLECTION,
    DATABASE,
    PORT,
    REPLICA_SET,
    SYSTEM_IMAGE,
    MongoSettings,
    mongod_argv,
    set_config,
)
from chaoskit.toxiproxy import ClientPath

STATES = {1: "primary", 2: "replica", 3: "recovering", 5: "startup2", 7: "arbiter", 9: "rollback"}


def _admin(node: Node, timeout: float = 0.5) -> MongoClient[dict[str, Any]]:
    """A direct (no discovery) connection to one member, the way this host reaches it."""
    host, port = node.client_addr
    ms = int(timeout * 1000)
    return MongoClient(host, port, directConnection=True, connectTimeoutMS=ms, socketTimeoutMS=ms,
                       serverSelectionTimeoutMS=ms)


def _command(node: Node, cmd: dict[str, Any], timeout: float = 0.5) -> dict[str, Any]:
    with _admin(node, timeout) as client:
        return dict(client.admin.command(cmd))


def _answers(node: Node) -> bool:
    return bool(_command(node, {"ping": 1}).get("ok"))


class MongoTopology(NodeBook):
    facts = Facts(detected_kinds=("primary-lost",), promoted_kinds=("new-primary",))
    appname: str | None = None  # this run's clients' appname once toxic faults put proxies on their path

    def __init__(self, exp: Experiment, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, workdir)
        self.settings, self.exp = MongoSettings.model_validate(exp.topology), exp
        self.names = [f"mongo-{i + 1}" for i in range(self.settings.members)]

    def up(self, progress: Progress) -> None:
        self.addresses = self.backend.prepare(self.names)
        binary = "mongod" if self.backend.name == "docker" else mongod_binary()
        for name in self.names:
            d = self.workdir / name
            (d / "data").mkdir(parents=True, exist_ok=True)
            (d / "data").chmod(0o777)  # the official image runs mongod as its own user, not as root
            argv = mongod_argv(binary, ("--bind_ip", self.addresses[name]), str(d / "data"), self.settings)
            self._start(NodeSpec(name, argv, d, PORT, image=os.environ.get(*SYSTEM_IMAGE)))
        self.adopted()
        progress(f"started {len(self.names)} mongod (replica set {REPLICA_SET})")

    def adopted(self) -> None:
        """Every pymongo connection to a member -- ours and the workload's -- goes where this host reaches it."""
        route({(n.address, PORT): n.client_addr for n in self.nodes.values()})

    def _initiate(self) -> None:
        config = set_config([self.addresses[n] for n in self.names], self.settings)
        _command(self.nodes[self.names[0]], {"replSetInitiate": config}, 30.0)

    def wait_ready(self, timeout: float) -> None:
        self._check_running()
        for node in self.nodes.values():
            wait_until(functools.partial(_answers, node), timeout, f"{node.name} to accept connections",
                       interval=0.2, log_tail=self._tail)
        self._initiate()
        wait_until(lambda: self._healthy(caught_up=False), timeout, "one PRIMARY and SECONDARYs seen by every member",
                   interval=0.25, log_tail=self._tail)
        # under load an early election can move the primary between the check and the create: retry
        wait_until(self._create_collection, timeout, "the collection to be created", interval=0.5, log_tail=self._tail)

    def _create_collection(self) -> bool:
        # CollectionInvalid: an earlier attempt created it and its reply was lost
        with _admin(self.resolve("primary")[0], 10.0) as client, contextlib.suppress(CollectionInvalid):
            client[DATABASE].create_collection(COLLECTION, write_concern=WriteConcern("majority", wtimeout=10000))
        return True

    # -- the members' own views ------------------------------------------------------------------
    def _status(self, name: str, timeout: float = 0.3) -> dict[str, Any] | None:
        """``replSetGetStatus`` of one member; None when it does not answer (down, partitioned, starting)."""
        try:
            return _command(self.nodes[name], {"replSetGetStatus": 1}, timeout)
        except PyMongoError:
            return None

    def _views(self) -> dict[str, dict[str, Any]]:
        return {n: st for n in self.names if (st := self._status(n)) is not None}

    def _primary(self, views: dict[str, dict[str, Any]]) -> tuple[str | None, int]:
        """The member that says it is primary with the highest term (an isolated old one has a lower term)."""
        claims = [(int(st.get("term", 0)), n) for n, st in views.items() if st.get("myState") == 1]
        if not claims:
            return None, max((int(st.get("term", 0)) for st in views.values()), default=0)
        term, name = max(claims)
        return name, term

    def _healthy(self, caught_up: bool) -> bool:
        views = self._views()
        if len(views) != len(self.names):
            return False
        primary, _ = self._primary(views)
        if primary is None:
            return False
        for st in views.values():
            members = st.get("members", [])
            states = sorted(int(m.get("state", 0)) for m in members)
            seen_primary = [self.node_for_address(*_split(m["name"])) for m in members if m.get("state") == 1]
            if states != [1] + [2] * (len(self.names) - 1) or seen_primary != [primary]:
                return False
        if caught_up:
            optimes = {str(_self(st).get("optime")) for st in views.values()}
            return len(optimes) == 1
        return True

    # -- roles -----------------------------------------------------------------------------------
    def node_for_address(self, host: str, port: int) -> str | None:
        return node_at(self.nodes, self.names, host, port)

    # -- what the native faults (chaoskit.systems.mongo.faults) do ------------------------------
    def command(self, node: Node, cmd: dict[str, Any], timeout: float = 0.5) -> dict[str, Any]:
        """An admin command on one member (a direct connection); its reply. Raises PyMongoError."""
        return _command(node, cmd, timeout)

    def step_down(self, node: Node, seconds: int) -> None:
        """``replSetStepDown`` on ``node`` (the primary). Raises PyMongoError when it refuses."""
        with contextlib.suppress(AutoReconnect):  # servers before 4.2 closed every connection on step-down
            _command(node, {"replSetStepDown": seconds, "secondaryCatchUpPeriodSecs": 5}, 15.0)

    def client_nodes(self) -> list[str]:
        return list(self.names)

    def adopt_client_path(self, path: ClientPath) -> None:
        """pymongo connects to the addresses the members announce: the workload's clients (and a user's,
        through ``connection().uri``) carry this run's appname, whose connections go to the proxies."""
        super().adopt_client_path(path)
        self.appname = f"chaoskit-{self.backend.ledger.run_id}"
        route_app(self.appname, {(n.address, PORT): path.route((n.address, PORT)) or n.client_addr
                                 for n in self.nodes.values()})

    def roles(self) -> dict[str, str]:
        out = {}
        for name in self.names:
            st = self._status(name, 0.5)
            out[name] = "down" if st is None else STATES.get(int(st.get("myState", 0)), "other")
        return out

    def resolve(self, role: str, exclude: set[str] | None = None) -> list[Node]:
        return resolve_role(role, self.nodes, self.names, lambda: self._primary(self._views())[0], {}, exclude)

    def client(self, spec: ClientSpec, f: str) -> MongoClientPattern:
        selection = spec.options.get("server_selection_timeout_s")
        return MongoClientPattern(spec.pattern, [(self.nodes[n].address, PORT) for n in self.names], f=f,
                                  read_from=self.exp.workload.read_from, timeout_s=spec.timeout_s,
                                  policy=RetryPolicy.from_spec(spec), name_of=self.node_for_address,
                                  server_selection_s=None if selection is None else float(selection),
                                  appname=self.appname,
                                  socket_timeout=bool(spec.options.get("socket_timeout", True)))

    def connection(self) -> MongoConnection:
        seeds = ",".join(f"{self.nodes[n].address}:{PORT}" for n in self.names)
        uri = f"mongodb://{seeds}/?replicaSet={REPLICA_SET}&w=majority&retryWrites=true"
        uri += f"&appName={self.appname}" if self.appname else ""  # through the proxies (see route_clients)
        return MongoConnection(uri, REPLICA_SET, {n: self.nodes[n].client_addr for n in self.names})

    # -- events ----------------------------------------------------------------------------------
    def watch(self, sink: EventSink, clock: Callable[[], float]) -> Callable[[], None]:
        stop = threading.Event()
        threading.Thread(target=self._watch, args=(sink, clock, stop), daemon=True, name="watch-mongo").start()
        return stop.set

    def _watch(self, sink: EventSink, clock: Callable[[], float], stop: threading.Event) -> None:
        """Poll every member. ``primary-lost``: the set noticed its primary is gone -- the primary stepped
        down, or another member started an election (its term rose) or sees the primary as unhealthy.
        ``new-primary``: a different member claims primary with a higher term."""
        primary, term = self._primary(self._views())
        lost = False
        while not stop.wait(0.1):
            views = self._views()
            now, now_term = self._primary(views)
            if primary is not None and not lost and (why := self._loss(views, primary, term)):
                sink(Event(clock(), "mongo", "primary-lost", f"{primary} (term {term}): {why}", primary))
                lost = True
            if now is not None and (now != primary or now_term > term):
                if now != primary:
                    sink(Event(clock(), "mongo", "new-primary", f"{now} elected in term {now_term}", now))
                primary, term, lost = now, now_term, False

    def _loss(self, views: dict[str, dict[str, Any]], primary: str, term: int) -> str | None:
        own = views.get(primary)
        if own is not None and own.get("myState") != 1:
            return f"it is now {STATES.get(int(own.get('myState', 0)), 'other')}"
        unhealthy = []
        for name, st in views.items():
            if name == primary:
                continue
            if int(st.get("term", 0)) > term:
                return f"{name} started an election (term {st.get('term')})"
            if any(self.node_for_address(*_split(m["name"])) == primary and not m.get("health")
                   for m in st.get("members", [])):
                unhealthy.append(name)
        if len(unhealthy) >= len(self.names) // 2 + 1 or len(unhealthy) == len(self.names) - 1:
            return f"{', '.join(unhealthy)} see it unhealthy"  # a majority: one isolated member's view does not count
        return None

    def wait_settled(self, timeout: float) -> bool:
        return self._settles(lambda: self._healthy(caught_up=True), timeout, "the replica set to settle")

    def final_read(self) -> list[Any]:
        with _admin(self.resolve("primary")[0], 10.0) as client:
            coll = client[DATABASE].get_collection(COLLECTION, read_concern=ReadConcern("majority"))
            return sorted(int(d["_id"]) for d in coll.find({}, {"_id": 1}))


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


def _self(status: dict[str, Any]) -> dict[str, Any]:
    return next((m for m in status.get("members", []) if m.get("self")), {})
