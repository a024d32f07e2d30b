"""The runner: up -> ready -> steady state -> fault -> heal -> recover -> final read -> check -> down.

Teardown is guaranteed: every resource is pushed on an ExitStack as it is created, faults are healed
before nodes are torn down, and SIGINT/SIGTERM unwind the same way (a second signal is ignored
while cleaning up, so a laptop is never left partitioned).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit import cache_aside, dns, server_logs, toxiproxy
from chaoskit.backends import make_backend
from chaoskit.backends.base import Backend
from chaoskit.checkers import RunFacts, Verdict, run_checkers, summarize
from chaoskit.choice import Needs, choose
from chaoskit.clients.base import Client
from chaoskit.clients.user import (
    Factory,
    UserClient,
    UserClientAdapter,
    factory_name,
    final_read,
    load_factory,
    make_user_client,
)
from chaoskit.drivers import require_drivers
from chaoskit.errors import Interrupted
from chaoskit.experiment import Experiment
from chaoskit.faults import Applied
from chaoskit.generator import WorkerSpec, Workload, worker_specs
from chaoskit.history import History, OpType
from chaoskit.journal import FaultRecord, PhaseRecord, write_outputs
from chaoskit.systems import get_system
from chaoskit.systems.base import Event, Topology
from chaoskit.toxics import uses_toxics
from chaoskit.verdicts import Check, evaluate, verdict

Progress = Callable[[str], None]


@dataclass
class RunResult:
    journal: dict[str, Any]
    out_dir: Path
    verdict: Verdict
    checks: list[Check]

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict is Verdict.PASS else 1


@dataclass
class _Run:
    """Mutable state of one run, filled in phase by phase."""

    exp: Experiment
    history: History = field(default_factory=History)
    events: list[Event] = field(default_factory=list)
    phases: list[PhaseRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    applied: list[tuple[Applied, FaultRecord]] = field(default_factory=list)
    old_primary: str | None = None
    roles_after: dict[str, str] = field(default_factory=dict)
    settled: bool | None = None
    detected_kinds: tuple[str, ...] = ()
    promoted_kinds: tuple[str, ...] = ()
    leaderless: bool = False
    one_primary: bool = True
    cache: bool = False
    logs: dict[str, str] = field(default_factory=dict)
    evidence: server_logs.Evidence | None = None
    client_label: str = ""
    server: dict[str, Any] | None = None  # the server as it reports itself (version, Java), when the system says

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.history.now()
        try:
            yield
        finally:
            self.phases.append(PhaseRecord(name, start, self.history.now()))


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def _shield_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: print("chaoskit: cleaning up, please wait...", flush=True))


def check_drivers(exp: Experiment) -> None:
    """Return when every Python driver the experiment needs is importable; else UsageError (exit 2), one
    line naming the extra(s) to install -- a cache-aside run needs the memcached driver besides its system's,
    a run with DNS endpoints (``dns:`` or a DNS client pattern) dnspython, which its system's extra brings."""
    drivers, extras, what = [*get_system(exp.system).drivers], [exp.system], exp.system
    if exp.cache is not None:
        drivers += get_system("memcached").drivers
        extras.append("memcached")
        what = "cache-aside"
    if exp.dns is not None or exp.client.pattern in dns.DNS_PATTERNS:
        drivers.append(dns.DRIVER)
        what += " with DNS endpoints"
    require_drivers(what, drivers, extras)


def run(exp: Experiment, backend_name: str = "auto", out_dir: Path | None = None,
        progress: Progress = print, *, client: Factory | None = None, paths: Sequence[str] = ()) -> RunResult:
    """Run one experiment end to end; raises ChaoskitError subclasses for infrastructure problems.

    ``client`` is your own client's factory (see :mod:`chaoskit.clients.user`); without it the experiment's
    ``client.factory`` (imported from the working directory or ``paths``) or built-in ``client.pattern`` runs.
    """
    check_drivers(exp)  # a missing driver is exit 2 before anything starts
    if client is None and exp.client.factory:
        client = load_factory(exp.client.factory, paths)  # a bad import is exit 2 before anything starts
    choice = choose(backend_name, Needs.of(exp))  # one line (exit 2 or 3) when it cannot run here
    if uses_toxics(list(exp.faults)) and choice.backend == "local":
        toxiproxy.server_binary(progress)  # built now (once), before anything starts: no Go is exit 3
    run_id = secrets.token_hex(3)
    out_dir = out_dir or Path("runs") / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{exp.name}"
    workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
    started = dt.datetime.now(dt.UTC)
    state = _Run(exp, client_label=f"user:{factory_name(client)}" if client else exp.client.label)
    old_int = signal.getsignal(signal.SIGINT)
    old_handler = signal.signal(signal.SIGTERM, _raise_interrupted)
    stack = contextlib.ExitStack()
    try:
        backend = make_backend(choice.backend, run_id, str(workdir), stand_ins=choice.stand_ins)
        stack.callback(backend.teardown)
        progress(f"backend: {backend.name} (run {run_id})" + (f"; {choice.note}" if choice.note else ""))
        _lifecycle(state, backend, workdir, stack, progress, client, run_id)
    except KeyboardInterrupt:
        _shield_signals()
        stack.close()
        raise Interrupted("interrupted by SIGINT; faults healed and nodes torn down") from None
    except BaseException:
        _shield_signals()
        stack.close()
        raise
    finally:
        stack.close()
        signal.signal(signal.SIGTERM, old_handler)
        signal.signal(signal.SIGINT, old_int)
    return _conclude(state, backend.name, started, out_dir, progress)


def _workers(exp: Experiment, topology: Topology, factory: Factory | None,
             label: str) -> tuple[Callable[[WorkerSpec], Client], Callable[[], list[Any]]]:
    """How each worker gets its client, and how the final read is taken: the built-in pattern's, or the
    user's own client (checked once here, so a factory that raises or returns no client stops the run)."""
    if factory is None:
        return (lambda spec: topology.client(exp.client, spec.f)), topology.final_read
    connection = topology.connection()

    def make() -> UserClient:
        return make_user_client(factory, connection, label)

    make().close()
    return (lambda _spec: UserClientAdapter(make)), (lambda: final_read(make))


def _lifecycle(state: _Run, backend: Backend, workdir: Path, stack: contextlib.ExitStack,
               progress: Progress, factory: Factory | None = None, run_id: str = "") -> None:
    exp, sched = state.exp, state.exp.schedule
    topology = get_system(exp.system).topology(exp, backend, workdir)
    if exp.dns is not None:  # before up(): the nodes' failover hooks write into the zone
        topology.dns = dns.zone_for(backend, run_id, workdir, exp.dns.ttl_s)
    if exp.cache is not None:  # before up(): the cache node gets its address on the run's network
        topology.aside = (cache_aside.NAME,)
    t = time.monotonic()
    topology.up(progress)
    stack.callback(_keep_logs, topology, backend, state)
    if topology.dns is not None:
        dns_server = dns.DnsServer(backend, topology.dns)
        stack.callback(dns_server.stop)
        dns_server.start()
    topology.wait_ready(timeout=60)
    state.detected_kinds, state.promoted_kinds = topology.facts.detected_kinds, topology.facts.promoted_kinds
    state.leaderless, state.one_primary, state.cache = (topology.facts.leaderless, topology.facts.one_primary,
                                                         topology.facts.cache)
    progress(f"ready in {time.monotonic() - t:.1f}s")
    state.server = topology.server()
    if uses_toxics(list(exp.faults)):
        server = toxiproxy.put_on_client_path(topology, backend, progress)
        stack.callback(server.stop)  # after every heal: POST /reset, then the server ends
    state.history = History()
    stack.callback(topology.watch(state.events.append, state.history.now))
    if topology.dns is not None:
        labels = topology.publish_dns()
        progress(f"dns: {', '.join(topology.dns.name(label) for label in labels)} at "
                 f"{topology.dns.server[0]}, TTL {topology.dns.ttl_s} s")
        stack.callback(dns.watch(topology.dns, labels, state.events.append, state.history.now,
                                 lambda addr: topology.node_for_address(addr, 0)))
    make_client, read_all = _workers(exp, topology, factory, state.client_label)
    if exp.cache is not None:
        cache = cache_aside.CacheNode(backend, workdir, exp.cache)
        stack.callback(cache.stop)
        cache.start()
        cache_aside.create_table(topology)
        make_client, read_all = cache_aside.wrap(make_client, cache, exp), cache_aside.final_read(topology, cache)
        progress(f"cache: memcached at {cache.addr[0]}:{cache.addr[1]}, {exp.cache.strategy}, "
                 f"invalidate {exp.cache.invalidate}, {exp.cache.keys} keys")
    workload = Workload(state.history, make_client,
                        worker_specs(exp.workload.writers, exp.workload.readers, exp.workload.rate_hz))
    workload.start()
    stack.callback(workload.stop)
    stack.callback(_heal_all, state, progress)
    with state.phase("steady"):
        progress(f"steady state for {sched.steady_s:g}s ({state.client_label} client)")
        time.sleep(sched.steady_s)
    with state.phase("fault"):
        _apply_all(state, topology, backend, progress)
        time.sleep(sched.fault_s)
    _heal_all(state, progress)
    with state.phase("recover"):
        progress(f"recovering for {sched.recover_s:g}s")
        time.sleep(sched.recover_s)
        workload.stop()
    with state.phase("settle"):
        state.settled = topology.wait_settled(sched.settle_timeout_s)
        progress("topology settled" if state.settled else "topology did NOT settle: final read may be partial")
    with state.phase("final-read"):
        _final_read(state, read_all, len(workload.specs))
    state.roles_after = topology.roles()


def _keep_logs(topology: Topology, backend: Backend, state: _Run) -> None:
    """Keep every node's log tail with the run's outputs (servers' own account of what happened), and what
    the system's logs said around each heal (chaoskit.server_logs), if it names what to look for."""
    state.logs = {name: backend.log_tail(node, lines=400) for name, node in topology.nodes.items()}
    if topology.log_evidence is not None:
        healed = [(f.kind, f.target, f.healed_at) for f in state.faults]
        state.evidence = server_logs.gather(backend, topology.nodes, topology.log_evidence, healed,
                                            state.history.wall_t0)


def _apply_all(state: _Run, topology: Topology, backend: Backend, progress: Progress) -> None:
    for fault in state.exp.faults:
        if fault.target == "primary" and state.old_primary is None:
            primaries = topology.resolve("primary")
            state.old_primary = primaries[0].name if primaries else None
        at = state.history.now()
        applied = fault.apply(topology, backend)
        record = FaultRecord(fault.kind, ",".join(applied.node_names), fault.target, at)
        state.faults.append(record)
        state.applied.append((applied, record))
        progress(f"fault: {fault.kind} {fault.target} ({record.target}) at +{at:.2f}s")


def _heal_all(state: _Run, progress: Progress) -> None:
    while state.applied:
        applied, record = state.applied.pop()
        fault = applied.fault
        try:
            applied.heal()
            record.healed_at = state.history.now()
            progress(f"healed: {fault.kind} {fault.target} at +{record.healed_at:.2f}s")
        except Exception as exc:  # noqa: BLE001 -- keep healing the rest; teardown removes the rest
            progress(f"heal of {fault.kind} failed: {exc}")


def _final_read(state: _Run, read_all: Callable[[], list[Any]], process: int) -> None:
    h = state.history
    h.record(process, OpType.INVOKE, "final-read", None)
    try:
        value = read_all()
        h.record(process, OpType.OK, "final-read", value if isinstance(value, dict) else list(value))
    except Exception as exc:  # noqa: BLE001 -- no final read means lost writes are unknown
        h.record(process, OpType.FAIL, "final-read", None, error=f"{type(exc).__name__}: {exc}"[:200])


def _conclude(state: _Run, backend: str, started: dt.datetime, out_dir: Path, progress: Progress) -> RunResult:
    exp = state.exp
    facts = RunFacts(
        fault_at=state.faults[0].applied_at if state.faults else None,
        healed_at=state.faults[0].healed_at if state.faults else None,
        events=tuple(state.events), old_primary=state.old_primary, roles_after=state.roles_after,
        detected_kinds=state.detected_kinds, promoted_kinds=state.promoted_kinds, leaderless=state.leaderless,
        one_primary=state.one_primary,
        cache=state.cache, cache_aside=exp.cache is not None,
    )
    fault_at = facts.fault_at
    dns_at = next((e.time for e in state.events if e.kind == "dns-update" and fault_at is not None
                   and e.time >= fault_at and e.detail.split(" -> ")[0] in ("writer", "primary")), None)
    results = run_checkers(state.history, facts)
    checks = evaluate(list(exp.expect), results)
    v = verdict(checks)
    journal = write_outputs(out_dir, exp=exp, backend=backend, started=started, verdict=v, checks=checks,
                            metrics=summarize(results), faults=state.faults, phases=state.phases,
                            events=state.events, history=state.history, settled=state.settled,
                            roles_after=state.roles_after, logs=state.logs, evidence=state.evidence,
                            client=state.client_label, server=state.server,
                            event_kinds={"detected_kinds": list(state.detected_kinds),
                                         "promoted_kinds": list(state.promoted_kinds),
                                         "leaderless": state.leaderless, "cache": state.cache,
                                         **({"dns_updated_at": round(dns_at, 6)} if dns_at is not None else {})})
    progress(f"wrote {out_dir}/journal.json, history.jsonl, report.html")
    return RunResult(journal, out_dir, v, checks)

