"""Watch one node's own copy of the table (``topology.probe_node``) until the final read.

Which replica answers a read at ONE is the snitch's choice. With ``dynamic_snitch: false`` the
SimpleSnitch keeps ring order, so every read at ONE goes to the first replica of the partition (the
node whose token follows the key's) while the coordinator counts it alive. The probe sends its reads
to that node as coordinator -- it always counts itself alive, also when cut off -- so each one reads
its own copy, with no read repair (ONE) and, with ``speculative_retry: NONE``, no second replica.
``probe_node`` must therefore be the first replica of partition 0 (validated: ``settings.first_replica``).

Every 0.5 s the probe keeps the ids it read. When the final read (at ALL) has every value, the probe
judges each sample: the node was *behind* if it lacked a value of the final read no newer than the
newest it held ``GRACE_S`` earlier (what it missed while cut off, not what was in flight). It then
emits ``replica-behind`` / ``replica-caught-up`` at the samples' own times; the ``catch-up`` checker
turns them into ``caught_up_s`` and ``behind_at_end``. The probe stops as the final read begins (a
read at ALL repairs what it reads).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cassandra import ConsistencyLevel
from cassandra.policies import FallthroughRetryPolicy
from cassandra.query import SimpleStatement

from chaoskit.clients.cassandra import RETRY_ON, make_cluster
from chaoskit.systems.base import Event, EventSink
from chaoskit.systems.cassandra.settings import KEYSPACE, TABLE

if TYPE_CHECKING:
    from chaoskit.systems.cassandra.topology import CassandraTopology

INTERVAL_S = 0.5
GRACE_S = 2.0


class CopyProbe:
    def __init__(self, ring: CassandraTopology, sink: EventSink, clock: Callable[[], float]) -> None:
        self.ring, self.sink, self.clock = ring, sink, clock
        self.node = ring.settings.probe_node
        self.samples: list[tuple[float, frozenset[int]]] = []
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="probe-cassandra").start()

    def _run(self) -> None:
        ring = self.ring
        cluster = make_cluster([ring.addresses[n] for n in ring.names], timeout_s=1.0,
                               consistency=ConsistencyLevel.ONE, retry=FallthroughRetryPolicy())
        stmt = SimpleStatement(f"SELECT id FROM {KEYSPACE}.{TABLE} WHERE p = 0",
                               consistency_level=ConsistencyLevel.ONE, fetch_size=10000)
        try:
            session = cluster.connect()
            host = next(h for h in cluster.metadata.all_hosts() if h.address == ring.addresses[self.node])
            while not self.stop.wait(INTERVAL_S):
                at = self.clock()
                try:
                    ids = frozenset(int(r.id) for r in session.execute(stmt, host=host, timeout=1.0))
                except RETRY_ON:
                    continue
                if not self.stop.is_set():
                    self.samples.append((at, ids))
        except (*RETRY_ON, StopIteration):
            return
        finally:
            cluster.shutdown()

    def conclude(self, final: list[int]) -> None:
        """Stop sampling; judge every sample against the final read's values and emit the transitions."""
        self.stop.set()
        every = sorted(final)
        behind, missing = False, []
        for i, (at, ids) in enumerate(self.samples):
            earlier = [s for t, s in self.samples[:i] if t <= at - GRACE_S]
            if not earlier or not earlier[-1]:
                continue
            upto = max(earlier[-1])
            missing = [v for v in every[:bisect.bisect_right(every, upto)] if v not in ids]
            if missing and not behind:
                self.sink(Event(at, "cassandra", "replica-behind", f"{self.node}'s own copy lacks {len(missing)} "
                                f"values it should have (up to {upto})", self.node))
            elif not missing and behind:
                self.sink(Event(at, "cassandra", "replica-caught-up", f"{self.node}'s own copy has every value "
                                f"up to {upto}", self.node))
            behind = bool(missing)
        if behind:  # how far behind it still was at the end (the first event says when it began)
            at, _ = self.samples[-1]
            self.sink(Event(at, "cassandra", "replica-behind", f"{self.node}'s own copy still lacked {len(missing)} "
                            "values when the final read began", self.node))
