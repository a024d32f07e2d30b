"""Experiment files: a typed model, a loader and a validator.

An experiment is a YAML file: a built-in one (``chaoskit/experiments/``, package data), one in a user's
experiment directory (``--experiments DIR``, ``$CHAOSKIT_EXPERIMENTS``; see chaoskit.resources), or any
path. Validation happens before anything starts, and every problem is reported as one line naming the
file and the field (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from chaoskit.errors import ExperimentError
from chaoskit.resources import builtin_experiments_dir, experiment_files

EXPERIMENTS_DIR = builtin_experiments_dir()  # the built-in experiments (package data)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- faults: one small typed spec per kind (the nemesis module turns each into a Fault) ----

class KillSpec(_Strict):
    kind: Literal["kill"]
    target: str = "primary"
    restart_on_heal: bool = True


class PauseSpec(_Strict):
    kind: Literal["pause"]
    target: str = "primary"


class RestartSpec(_Strict):
    kind: Literal["restart"]
    target: str = "primary"


class PartitionSpec(_Strict):
    """Cut ``target`` off from the nodes named by ``peers`` (roles or names; ``others`` = every other node).

    Clients (the runner) keep reaching every node. ``one_way`` drops only what ``target`` receives
    from the peers; it can still send to them. ``groups`` splits the nodes into groups (roles or
    names) that cannot talk to each other; ``target`` and ``peers`` are then ignored.
    """

    kind: Literal["partition"]
    target: str = "primary"
    peers: list[str] = Field(default_factory=lambda: ["others"])
    one_way: bool = False
    groups: list[list[str]] | None = Field(
        None, min_length=2, description="split into groups instead: no traffic between nodes of different groups")


class PacketLossSpec(_Strict):
    """Drop a fraction of the packets ``target`` receives from ``peers`` (iptables statistic)."""

    kind: Literal["packet-loss"]
    target: str = "replicas"
    peers: list[str] = Field(default_factory=lambda: ["primary"])
    probability: float = Field(0.5, gt=0.0, le=1.0)


class NativeSpec(_Strict):
    """A database-native fault (e.g. ``sentinel-failover``, ``client-pause``); the system validates ``kind``."""

    kind: str
    target: str = "primary"
    options: dict[str, int | float | str | bool] = Field(default_factory=dict)


GENERIC_FAULT_KINDS = ("kill", "pause", "restart", "partition", "packet-loss")

def _fault_tag(raw: Any) -> str:
    kind = raw.get("kind") if isinstance(raw, dict) else getattr(raw, "kind", None)
    return kind if kind in GENERIC_FAULT_KINDS else "native"


FaultSpec = Annotated[
    Annotated[KillSpec, Tag("kill")]
    | Annotated[PauseSpec, Tag("pause")]
    | Annotated[RestartSpec, Tag("restart")]
    | Annotated[PartitionSpec, Tag("partition")]
    | Annotated[PacketLossSpec, Tag("packet-loss")]
    | Annotated[NativeSpec, Tag("native")],
    Discriminator(_fault_tag),
]


class ClientSpec(_Strict):
    pattern: str
    timeout_s: float = Field(0.5, gt=0)
    op_deadline_s: float = Field(10.0, gt=0, description="give up an op (fail/info) after retrying this long")
    backoff_initial_s: float = Field(0.05, gt=0)
    backoff_max_s: float = Field(0.1, gt=0, description="cap of the exponential backoff (jitter added)")
    options: dict[str, int | float | str | bool] = Field(default_factory=dict, description="system-specific knobs")


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


Metric = Literal[
    "lost_writes", "lost_fraction", "acked_writes", "stale_reads", "stale_fraction", "unavailable_s",
    "rto_s", "ops_fail", "ops_info", "ops_errors", "old_primary_demoted", "failover_happened", "client_recovered",
    "info_writes", "info_writes_applied",
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
    faults: list[FaultSpec] = Field(default_factory=list)
    expect: list[Expectation] = Field(min_length=1)
    source: str = ""


_TAGS = {*GENERIC_FAULT_KINDS, "native"}


def _one_line(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if str(p) not in _TAGS)
    msg = err["msg"]
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{origin}: {loc or 'file'}: {msg}{more}"


def parse(data: Any, origin: str) -> Experiment:
    """Validate a parsed YAML document; raises ExperimentError with one line naming the problem."""
    if not isinstance(data, dict):
        raise ExperimentError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
    faults = data.get("faults") or []
    if not isinstance(faults, list):
        raise ExperimentError(f"{origin}: faults: expected a list of faults")
    for i, raw in enumerate(faults):
        if not isinstance(raw, dict) or "kind" not in raw:
            raise ExperimentError(f"{origin}: faults.{i}: each fault needs a 'kind'")
    try:
        exp = Experiment.model_validate({**data, "source": origin})
    except ValidationError as exc:
        raise ExperimentError(_one_line(exc, origin)) from None
    _check_against_system(exp, origin)
    return exp


def _check_against_system(exp: Experiment, origin: str) -> None:
    from chaoskit.systems import get_system, system_names

    try:
        system = get_system(exp.system)
    except KeyError:
        raise ExperimentError(
            f"{origin}: system: unknown system {exp.system!r} (known: {', '.join(system_names())})"
        ) from None
    try:
        system.validate(exp)
    except ValueError as exc:
        raise ExperimentError(f"{origin}: {exc}") from None


def load(name_or_path: str, dirs: Iterable[str | Path] = ()) -> Experiment:
    """Load an experiment by name (built-in, or in ``dirs`` / ``$CHAOSKIT_EXPERIMENTS``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        known = experiment_files(dirs)
        if name_or_path not in known:
            raise ExperimentError(f"unknown experiment {name_or_path!r} (known: {', '.join(known) or 'none'})")
        return _load_named(name_or_path, known[name_or_path])
    if not path.exists():
        raise ExperimentError(f"{path}: no such experiment file")
    return _load_file(path)


def _load_file(path: Path) -> Experiment:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ExperimentError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(data, str(path))


def _load_named(name: str, path: Path) -> Experiment:
    """A file of an experiment directory, where the file name is the experiment's name."""
    exp = _load_file(path)
    if exp.name != name:
        raise ExperimentError(f"{path}: name: {exp.name!r} must equal the file name {name!r} "
                              "(in an experiment directory, an experiment is found by its file name)")
    return exp


def list_experiments(dirs: Iterable[str | Path] = (), *, user: bool = True,
                     skipped: list[str] | None = None) -> list[Experiment]:
    """Every valid experiment, built-in and (``user``) the user's, by name; ``skipped`` collects the invalid ones."""
    out = []
    for name, path in experiment_files(dirs, user=user).items():
        try:
            out.append(_load_named(name, path))
        except ExperimentError as exc:
            if skipped is not None:
                skipped.append(str(exc))
    return out
