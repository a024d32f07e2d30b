"""Experiment files: the typed model (pydantic). Loading and validating against a system: ``catalog``.

An experiment is a YAML file (built-in ones are package data in ``chaoskit/experiments/``; users add
directories, see :mod:`chaoskit.resources`); its ``faults:`` are the public fault objects of
:mod:`chaoskit.faults`. ``load``, ``list_experiments``, ``parse`` and ``EXPERIMENTS_DIR`` live in
:mod:`chaoskit.catalog` (which sits above ``systems/``) and stay importable from here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chaoskit.faults import FaultField


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientSpec(_Strict):
    """The workload's client: a built-in ``pattern`` of the system, or your own client's ``factory``
    (``"package.module:make_client"``, see :mod:`chaoskit.clients.user`) -- one of the two."""

    pattern: str = ""
    factory: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                                description="your own client: 'package.module:make_client'")
    timeout_s: float = Field(0.5, gt=0)
    op_deadline_s: float = Field(10.0, gt=0, description="give up an op (fail/info) after retrying this long")
    backoff_initial_s: float = Field(0.05, gt=0)
    backoff_max_s: float = Field(0.1, gt=0, description="cap of the exponential backoff (jitter added)")
    backoff_jitter_s: float = Field(0.05, ge=0, description="random 0..this added to each backoff wait (0: none)")
    options: dict[str, int | float | str | bool] = Field(default_factory=dict, description="system-specific knobs")

    @model_validator(mode="after")
    def _pattern_or_factory(self) -> ClientSpec:
        if bool(self.pattern) == bool(self.factory):
            raise ValueError("give either a pattern (a built-in client) or a factory (your own client)")
        return self

    @property
    def label(self) -> str:
        """What the journal and the report call this client."""
        return self.pattern or f"user:{self.factory}"


class WorkloadSpec(_Strict):
    writers: int = Field(2, ge=1, le=64)
    readers: int = Field(0, ge=0, le=64)
    rate_hz: float = Field(500.0, gt=0, description="ops per second per worker")
    read_from: Literal["primary", "replica"] = "primary"


class ScheduleSpec(_Strict):
    steady_s: float = Field(2.0, ge=0)
    fault_s: float = Field(5.0, ge=0, description="how long faults are held before heal")
    recover_s: float = Field(5.0, ge=0, description="workload keeps running this long after heal")
    settle_timeout_s: float = Field(30.0, gt=0)


class DnsSpec(_Strict):
    """DNS endpoints for the run (``chaoskit.dns``): a DNS server whose records follow the failover."""

    ttl_s: int = Field(5, ge=1, le=3600, description="the records' TTL (the lab's; RDS uses 5 s)")


class CacheSpec(_Strict):
    """A cache in front of the database for this run (``chaoskit.cache_aside``): one memcached node the
    workload reads through (cache-aside over registers ``k0..k<keys-1>``)."""

    strategy: Literal["lazy", "write-through"] = Field(
        "write-through", description="lazy: writes go to the database only; write-through: then set the cache")
    invalidate: Literal["never", "on-failover"] = Field(
        "never", description="on-failover: a client whose database connection moved to another node flushes")
    keys: int = Field(100, ge=1, le=10000, description="registers k0..k<keys-1>")
    ttl_s: int = Field(0, ge=0, le=86400, description="each cached value's expiry (0: none)")


Metric = Literal[
    "lost_writes", "lost_fraction", "acked_writes", "stale_reads", "stale_fraction", "unavailable_s",
    "rto_s", "ops_fail", "ops_info", "ops_errors", "old_primary_demoted", "failover_happened", "client_recovered",
    "info_writes", "info_writes_applied", "max_op_ms", "ops_ok", "duplicates", "attempts", "attempts_per_op",
    "attempts_per_op_before", "attempts_per_op_during", "attempts_per_op_after",
    "op_p50_ms_before", "op_p50_ms_during", "op_p50_ms_after", "op_p99_ms_before", "op_p99_ms_during",
    "op_p99_ms_after", "op_max_ms_before", "op_max_ms_during", "op_max_ms_after",
    "caught_up_s", "behind_at_end",  # a probed replica's (Cassandra probe_node, chaoskit.catch_up)
    # a cache's (chaoskit.cache_checks)
    "hit_ratio", "hit_ratio_before", "hit_ratio_during", "hit_ratio_after", "min_hit_ratio", "hit_ratio_end",
    "cache_errors", "sets_not_stored", "unexpected_misses", "miss_rate_before", "miss_rate_during", "rehash_s",
    # a cache in front of a database (chaoskit.cache_aside_checks)
    "cache_ahead", "cache_behind", "divergent_keys", "served_lost", "cache_flushes",
]


class Expectation(_Strict):
    metric: Metric
    min: float | None = None
    max: float | None = None
    equals: bool | float | None = None
    why: str = ""

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"{self.metric} == {str(self.equals).lower()}")
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        return " and ".join(parts) or f"{self.metric} reported"


class Experiment(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    system: str
    purpose: str
    hypothesis: str
    topology: dict[str, int | float | str | bool] = Field(default_factory=dict)
    client: ClientSpec
    workload: WorkloadSpec = WorkloadSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    faults: list[FaultField] = Field(default_factory=list)
    dns: DnsSpec | None = Field(None, description="serve writer/reader/primary names for this run (Postgres, Redis)")
    cache: CacheSpec | None = Field(None, description="read through a memcached in front of the database (Postgres)")
    expect: list[Expectation] = Field(min_length=1)
    # the weaker experiment this one is the stronger half of: the suite report shows the pair side by side
    compare_with: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    source: str = ""


_LOADER = ("EXPERIMENTS_DIR", "load", "list_experiments", "parse")


def __getattr__(name: str) -> Any:
    """``load`` and friends moved to :mod:`chaoskit.catalog`; re-exported lazily (catalog imports this module)."""
    if name in _LOADER:
        from chaoskit import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
