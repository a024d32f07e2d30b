"""``chaoskit.cluster()``: a running topology for your own code, with faults you apply yourself.

The testcontainers idiom: a context manager that starts a system's topology, waits until it is
ready, hands you typed connection details and the driver's own client, and always tears everything
down on exit -- faults healed first, then nodes. A cluster is ledgered like any run: if your process
is killed, ``chaoskit cleanup`` removes what it left.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast, overload

from pydantic import ValidationError

from chaoskit import toxiproxy
from chaoskit.backends import make_backend
from chaoskit.backends.base import Backend
from chaoskit.choice import Needs, choose
from chaoskit.drivers import require_drivers
from chaoskit.errors import InfrastructureError, UsageError
from chaoskit.experiment import ClientSpec, Expectation, Experiment
from chaoskit.faults import Applied, Fault
from chaoskit.systems import get_system, system_names
from chaoskit.systems.base import System, Topology, fault_problem

if TYPE_CHECKING:
    import psycopg
    import redis
    from cassandra.cluster import Session
    from opensearchpy import OpenSearch
    from pymemcache.client.hash import HashClient
    from pymongo import MongoClient

    from chaoskit.lab import Lab
    from chaoskit.systems.cassandra.connection import CassandraConnection
    from chaoskit.systems.memcached.connection import MemcachedConnection
    from chaoskit.systems.mongo.connection import MongoConnection
    from chaoskit.systems.opensearch.connection import OpenSearchConnection
    from chaoskit.systems.postgres.connection import PostgresConnection
    from chaoskit.systems.redis.connection import RedisConnection

ConnT = TypeVar("ConnT")
ClientT = TypeVar("ClientT")
Progress = Callable[[str], None]


class Cluster(Generic[ConnT, ClientT]):
    """A running topology of one system (``redis``, ``postgres``, ``mongo``), for your own code.

    Build it with :func:`cluster`. ``connection`` says how your driver reaches it (typed per system:
    :class:`~chaoskit.RedisConnection`, :class:`~chaoskit.PostgresConnection`,
    :class:`~chaoskit.MongoConnection`); ``client()`` returns the driver's own client configured with
    the recommended pattern; ``fault()`` applies a fault for the length of a ``with`` block::

        >>> import chaoskit
        >>> with chaoskit.cluster("redis") as c:                    # doctest: +SKIP
        ...     r = c.client()                   # redis-py: Sentinel(...).master_for("mymaster"), with backoff
        ...     r.set("greeting", "hello")
        ...     with c.fault(chaoskit.Kill("primary")):
        ...         promoted = c.wait_failover()     # Sentinel promotes a replica
        ...     c.wait_settled()                 # the old primary is back, as a replica
        ...     r.get("greeting"), c.roles()[promoted]
        True
        (b'hello', 'primary')

    Nothing is started until ``with`` (or :meth:`start`); on exit every applied fault is healed and
    every node torn down, whatever happened inside.
    """

    def __init__(self, system: str, backend: str = "auto", *, progress: Progress | None = None,
                 ready_timeout: float = 60.0, toxics: bool = False, **settings: Any) -> None:
        if system not in system_names():
            raise UsageError(f"unknown system {system!r} (known: {', '.join(system_names())})")
        self.system_name, self.requested_backend, self.ready_timeout = system, backend, ready_timeout
        self._system: System = get_system(system)
        self.settings = _validated(system, self._system, settings)
        require_drivers(system, self._system.drivers, (system,))  # before anything starts: exit 2 / UsageError
        self._progress: Progress = progress or (lambda _msg: None)
        self._backend: Backend | None = None
        self._topology: Topology | None = None
        self._applied: list[Applied] = []
        self._detached = False
        self._lab: Lab | None = None  # a lab's record: faults applied here are kept in force across processes
        self._primary_before: str | None = None
        self.toxics = toxics  # Toxiproxy between your clients and the data nodes, for toxic faults
        self._toxiproxy: Any = None
        self.run_id = ""
        self.workdir = ""

    @classmethod
    def attach(cls, run_id: str | None = None, *, progress: Progress | None = None) -> Cluster[Any, Any]:
        """The running lab ``run_id`` (left by ``chaoskit up`` or :meth:`detach`; without one, the only lab
        up), re-attached in this process: nothing is started, and its faults in force can be healed here.

        Faults applied through it are recorded in the lab and stay in force after this process exits;
        leaving a ``with`` block does not stop the lab (:meth:`down` does). UsageError (one line) when no
        such lab is up, or several are and none is named."""
        from chaoskit.lab import Lab, select

        return cls.of_lab(Lab.attach(select(run_id)), progress=progress)

    @classmethod
    def of_lab(cls, lab: Lab, *, progress: Progress | None = None) -> Cluster[Any, Any]:
        """A cluster on a re-attached lab (see :meth:`attach`)."""
        c = cls(lab.record.system, lab.record.backend, progress=progress, **lab.record.settings)
        c._backend, c._topology, c._lab, c._detached = lab.backend, lab.topology, lab, True
        c.toxics = lab.record.client_path is not None
        c.run_id, c.workdir = lab.record.run_id, lab.record.workdir
        c._applied = list(lab.applied.values())
        return c

    @property
    def lab(self) -> Lab | None:
        """The lab record of a detached or re-attached cluster (faults in force, nodes), else None."""
        return self._lab

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Cluster[ConnT, ClientT]:
        """Start every node and wait until the system is ready. Raises InfrastructureError (with the
        failing node's log tail) or MissingDependencyError; nothing is left behind when it does."""
        if self._backend is not None:
            raise UsageError(f"this {self.system_name} cluster is already started")
        exp = lab_experiment(self.system_name, self._system, self.settings)  # its topology names the image
        choice = choose(self.requested_backend, Needs(self.system_name, toxics=self.toxics, experiment=exp))
        if self.toxics and choice.backend == "local":
            toxiproxy.server_binary(self._progress)  # built now (once): no Go is exit 3 before anything starts
        self.run_id = secrets.token_hex(3)
        workdir = Path(tempfile.gettempdir()) / f"chaoskit-{self.run_id}"
        self.workdir = str(workdir)
        self._backend = backend = make_backend(choice.backend, self.run_id, str(workdir), stand_ins=choice.stand_ins)
        self._progress(f"backend: {backend.name} (run {self.run_id})" + (f"; {choice.note}" if choice.note else ""))
        try:
            topology = self._system.topology(exp, backend, workdir)
            self._topology = topology
            started = time.monotonic()
            topology.up(self._progress)
            topology.wait_ready(self.ready_timeout)
            if self.toxics:
                self._toxiproxy = toxiproxy.put_on_client_path(topology, backend, self._progress)
            self._progress(f"ready in {time.monotonic() - started:.1f}s")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Heal every fault still applied, then tear every node down (Ctrl-C is ignored meanwhile).
        Idempotent; never raises."""
        backend, self._backend = self._backend, None
        if backend is None or self._detached:
            return
        with _sigint_ignored():
            try:
                self.heal_all()
            except Exception as exc:  # noqa: BLE001 -- teardown removes what a heal could not undo
                self._progress(f"heal failed before teardown: {exc}")
            finally:
                if self._toxiproxy is not None:
                    self._toxiproxy.stop()
                backend.teardown()
                self._topology = None

    def detach(self) -> None:
        """Leave the nodes running after this process exits (``chaoskit up``); ``chaoskit down`` removes them.
        The ledger then holds the lab's record, so a later process can re-attach (:meth:`attach`)."""
        from chaoskit.lab import Lab, new_record

        backend = self._backend_or_raise()
        record = new_record(self.system_name, self.settings, self.run_id, self.workdir, backend, self.topology)
        self._lab = Lab(backend.ledger, record, backend, self.topology)
        backend.ledger.lab = record.model_dump(mode="json")
        backend.ledger.detach(self.system_name)  # saves the record with the hand-over, atomically
        self._detached = True

    def down(self) -> None:
        """Heal every fault in force, newest first, then remove every node: the end of a lab (a detached or
        re-attached cluster). Never raises."""
        self._detached = False
        self.stop()

    def __enter__(self) -> Cluster[ConnT, ClientT]:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what a running cluster offers ----------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend in use: ``local`` or ``docker``."""
        return self._backend_or_raise().name

    @property
    def connection(self) -> ConnT:
        """How your driver reaches the cluster from this process (a frozen dataclass, typed per system)."""
        return cast(ConnT, self.topology.connection())

    def client(self, **kwargs: Any) -> ClientT:
        """The driver's own client, configured with the recommended pattern (``kwargs`` override options)."""
        return cast(ClientT, self.topology.connection().client(**kwargs))

    def roles(self) -> dict[str, str]:
        """Node name -> role as each data node reports it now (``primary``, ``replica``, ``down``, ...)."""
        return self.topology.roles()

    def apply(self, fault: Fault) -> Applied:
        """Apply ``fault`` now; returns its handle (``.nodes``, ``.heal()``). Healed by :meth:`heal_all`
        and on exit at the latest. Raises UsageError when the fault does not fit this system."""
        topology = self.topology
        problem = fault_problem(fault, self._system.native_faults, self._system.roles, set(topology.nodes))
        if problem is not None:
            raise UsageError(f"{self.system_name}: {fault.kind}: {problem[1]}")
        self._primary_before = _primary(self.roles())
        applied = self._lab.apply(fault) if self._lab else fault.apply(topology, self._backend_or_raise())
        self._applied.append(applied)
        self._progress(f"fault: {fault.kind} {fault.target} ({', '.join(applied.node_names)})")
        return applied

    @contextlib.contextmanager
    def fault(self, fault: Fault) -> Iterator[Applied]:
        """Apply ``fault`` on enter, heal it on exit -- also when the block raises. Nest or combine
        them (``with c.fault(a), c.fault(b):``); they heal in reverse order."""
        applied = self.apply(fault)
        try:
            yield applied
        finally:
            self._heal(applied)

    def heal_all(self) -> None:
        """Heal every fault still applied, newest first; raises the first failure after trying them all."""
        errors = []
        for applied in reversed(list(self._applied)):
            try:
                self._heal(applied)
            except Exception as exc:  # noqa: BLE001 -- keep healing the others
                errors.append(exc)
        if errors:
            raise InfrastructureError(f"{len(errors)} fault(s) could not be healed: {errors[0]}")

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until one primary is agreed on and the replicas caught up. Raises InfrastructureError
        naming the roles seen when it does not happen within ``timeout`` seconds."""
        if not self.topology.wait_settled(timeout):
            raise InfrastructureError(f"{self.system_name} did not settle within {timeout:g}s (roles: {self.roles()})")

    def wait_failover(self, timeout: float = 30.0) -> str:
        """Wait until the system's own authority (Sentinel's majority, Patroni's leader key, the replica
        set) names a primary other than the one of the time the last fault was applied, and that node
        reports primary itself; returns its name. A node that has only been told to promote is not
        enough: a failover can still be aborted then. Raises InfrastructureError with the roles seen on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            roles = self.roles()
            try:
                named = [n.name for n in self.topology.resolve("primary")]
            except InfrastructureError:  # no primary known right now
                named = []
            new = [n for n in named if n != self._primary_before and roles.get(n) == "primary"]
            if new:
                return new[0]
            if time.monotonic() > deadline:
                raise InfrastructureError(f"no new {self.system_name} primary within {timeout:g}s (roles: {roles})")
            time.sleep(0.1)

    def log_tail(self, node: str, lines: int = 20) -> str:
        """The last lines of one node's server log (for your own error messages)."""
        return self._backend_or_raise().log_tail(self.topology.nodes[node], lines)

    @property
    def topology(self) -> Topology:
        """The running topology (advanced use: ``resolve``, ``nodes``). UsageError before start."""
        if self._topology is None:
            raise UsageError(f"the {self.system_name} cluster is not running (use `with chaoskit.cluster(...)`)")
        return self._topology

    def _backend_or_raise(self) -> Backend:
        if self._backend is None:
            raise UsageError(f"the {self.system_name} cluster is not running (use `with chaoskit.cluster(...)`)")
        return self._backend

    def heal(self, applied: Applied) -> None:
        """Heal one applied fault now (idempotent); raises what its revert raises."""
        self._heal(applied)

    def _heal(self, applied: Applied) -> None:
        if applied in self._applied:
            self._applied.remove(applied)
        if not applied.healed:
            applied.heal()
            self._progress(f"healed: {applied.fault.kind} {applied.fault.target}")
        if self._lab is not None:
            self._lab.healed(applied)

    def __repr__(self) -> str:
        state = f"run {self.run_id} on {self._backend.name}" if self._backend else "not running"
        return f"<Cluster {self.system_name} ({state})>"


@overload
def cluster(system: Literal["redis"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[RedisConnection, redis.Redis]: ...
@overload
def cluster(system: Literal["postgres"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[PostgresConnection, psycopg.Connection[Any]]: ...
@overload
def cluster(system: Literal["mongo"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[MongoConnection, MongoClient[dict[str, Any]]]: ...
@overload
def cluster(system: Literal["cassandra"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[CassandraConnection, Session]: ...
@overload
def cluster(system: Literal["opensearch"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[OpenSearchConnection, OpenSearch]: ...
@overload
def cluster(system: Literal["memcached"], backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ...,
            **settings: Any) -> Cluster[MemcachedConnection, HashClient]: ...
@overload
def cluster(system: str, backend: str = ..., *, progress: Progress | None = ...,
            ready_timeout: float = ..., toxics: bool = ..., **settings: Any) -> Cluster[Any, Any]: ...
def cluster(system: str, backend: str = "auto", *, progress: Progress | None = None,
            ready_timeout: float = 60.0, toxics: bool = False, **settings: Any) -> Cluster[Any, Any]:
    """A :class:`Cluster` of ``system`` (not started yet: use it in a ``with`` block).

    ``backend``: ``auto`` (docker when a daemon answers and the images are there, pullable or built here by
    ``chaoskit images``; else local, on Linux as root; see :mod:`chaoskit.choice`), ``local`` or ``docker``.
    ``settings``: the system's topology knobs, as under ``topology:`` in an experiment file (e.g.
    ``replicas=2, down_after_ms=1500`` for Redis); an unknown one is a UsageError. OpenSearch and Cassandra take
    a server ``version`` (default 2.19.6 and 5.0.9; fetched once from Maven Central, run on a Java in its range:
    :mod:`chaoskit.jdk`)::

        with chaoskit.cluster("opensearch", version="3.6.0") as c:  # Java 21 or newer
            c.client().info()["version"]["number"]  # '3.6.0'

    ``progress`` receives one line per step (``print`` to watch it start). ``toxics=True`` puts Toxiproxy
    between your clients (``connection``, ``client()``) and the data nodes, for the toxic faults
    (``chaoskit.toxics``: ``Latency``, ``Timeout``, ...).
    """
    return Cluster(system, backend, progress=progress, ready_timeout=ready_timeout, toxics=toxics, **settings)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C does not cut a teardown short (signals can only be set in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def _primary(roles: dict[str, str]) -> str | None:
    primaries = [name for name, role in roles.items() if role == "primary"]
    return primaries[0] if len(primaries) == 1 else None


def _validated(name: str, system: System, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as given, once the system's model accepts them; one-line UsageError otherwise."""
    try:
        system.settings_model.model_validate(settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(map(str, err["loc"]))
        if err["type"] == "extra_forbidden":
            known = ", ".join(system.settings_model.model_fields)
            raise UsageError(f"cluster({name!r}): unknown setting {key!r} (known: {known})") from None
        raise UsageError(f"cluster({name!r}): {key}: {err['msg']}") from None
    return dict(settings)


def lab_experiment(name: str, system: System, settings: dict[str, Any]) -> Experiment:
    """The experiment a topology is built from: these settings, no workload or faults of its own."""
    return Experiment(name=f"cluster-{name}", system=name, purpose="a running topology (chaoskit.cluster)",
                      hypothesis="-", topology=settings, client=ClientSpec(pattern=system.client_patterns[0]),
                      expect=[Expectation(metric="lost_writes")])
