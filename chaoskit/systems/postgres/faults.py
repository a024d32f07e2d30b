"""Postgres's native fault (no driver: Patroni's REST API, through the running topology)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import field
from typing import TYPE_CHECKING, Literal

from pydantic.dataclasses import dataclass as fault_model

from chaoskit.backends.base import Backend, Node
from chaoskit.errors import InfrastructureError
from chaoskit.faults import CONFIG, NativeFault, register
from chaoskit.systems.base import Topology, own_topology
from chaoskit.systems.postgres.settings import REST_PORT

if TYPE_CHECKING:
    from chaoskit.systems.postgres.topology import PostgresTopology


def _postgres(topology: Topology, kind: str) -> PostgresTopology:
    from chaoskit.systems.postgres.topology import PostgresTopology  # a running topology: psycopg is there

    return own_topology(topology, PostgresTopology, kind)


@register
@fault_model(frozen=True, config=CONFIG)
class Switchover(NativeFault):
    """Planned promotion of a replica through Patroni (the upgrade-by-replica path); nothing to heal."""

    kind: Literal["switchover"] = field(default="switchover", kw_only=True)

    def inject(self, topology: Topology, backend: Backend) -> list[Node]:
        leader = _postgres(topology, self.kind).resolve("primary")[0]
        body = json.dumps({"leader": leader.name}).encode()
        host, port = leader.endpoint(REST_PORT)
        req = urllib.request.Request(f"http://{host}:{port}/switchover", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            if resp.status != 200:
                raise InfrastructureError(f"switchover refused: {resp.read().decode()[:200]}")
        return [leader]
