"""The experiment catalog: loading experiment files and validating them against their system.

It sits above ``systems/`` (each system validates its own topology settings, client patterns and
native fault kinds), so :mod:`chaoskit.experiment` stays a plain model. Every problem is reported as
one line naming the file and the field (exit 2), before anything starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chaoskit.errors import ExperimentError
from chaoskit.experiment import Experiment
from chaoskit.resources import builtin_experiments_dir, experiment_files
from chaoskit.systems import get_system, system_names
from chaoskit.systems.base import unknown_kind

EXPERIMENTS_DIR = builtin_experiments_dir()  # the built-in experiments (package data)

for _name in system_names():  # every system's native fault kinds are registered before a file is read
    get_system(_name)


def _one_line(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    # a fault is a dataclass: pydantic calls an unknown field of it an "unexpected keyword argument"
    msg = "Extra inputs are not permitted" if err["type"] == "unexpected_keyword_argument" else err["msg"]
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
    _check_kinds(data.get("system"), faults, origin)
    try:
        exp = Experiment.model_validate({**data, "source": origin})
    except ValidationError as exc:
        raise ExperimentError(_one_line(exc, origin)) from None
    _check_against_system(exp, origin)
    return exp


def _check_kinds(system_name: Any, faults: list[dict[str, Any]], origin: str) -> None:
    """Fault kinds checked against the named system first, so an unknown kind lists that system's kinds."""
    if system_name not in system_names():
        return
    system = get_system(system_name)
    for i, raw in enumerate(faults):
        if (problem := unknown_kind(str(raw["kind"]), system.native_faults)) is not None:
            raise ExperimentError(f"{origin}: faults.{i}.kind: {problem}")


def _check_against_system(exp: Experiment, origin: str) -> None:
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


def with_settings(exp: Experiment, settings: Mapping[str, Any]) -> Experiment:
    """``exp`` with ``settings`` over its ``topology:`` (``chaoskit run --set``), checked as a file's would be;
    ExperimentError (exit 2, one line) for a setting the system does not have or a bad value."""
    if not settings:
        return exp
    system = get_system(exp.system)
    known = system.settings_model.model_fields
    if unknown := [key for key in settings if key not in known]:
        raise ExperimentError(f"--set {unknown[0]}: {exp.system} has no such topology setting "
                              f"(known: {', '.join(known)})")
    changed = exp.model_copy(update={"topology": {**exp.topology, **settings}})
    try:
        system.validate(changed)
    except ValueError as exc:
        raise ExperimentError(f"--set on {exp.name}: {exc}") from None
    return changed


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
