"""``chaoskit list | run | up | fault | heal | status | down | cleanup | compose | images | report | recount``
(exit codes per DESIGN §2)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from chaoskit import console
from chaoskit.backends import BACKEND_NAMES
from chaoskit.catalog import list_experiments, load, with_settings
from chaoskit.errors import ChaoskitError, UsageError
from chaoskit.experiment import Experiment
from chaoskit.resources import user_experiment_dirs

if TYPE_CHECKING:
    from chaoskit.backends.ledger import Ledger


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chaoskit", description="Chaos experiments for databases, checked through real drivers.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    dirs_help = "also read the experiments in DIR (repeatable; adds to $CHAOSKIT_EXPERIMENTS)"
    lst = sub.add_parser("list", help="list experiments")
    lst.add_argument("--experiments", metavar="DIR", action="append", default=[], help=dirs_help)
    run = sub.add_parser("run", help="run experiments (by name, path, or --system)")
    run.add_argument("--experiments", metavar="DIR", action="append", default=[], help=dirs_help)
    run.add_argument("names", nargs="*", metavar="EXPERIMENT")
    run.add_argument("--system", help="run every experiment of this system")
    run.add_argument("--backend", default="auto", choices=None, help="auto | local | docker")
    run.add_argument("--out", type=Path, help="output directory (one sub-directory per experiment if several)")
    run.add_argument("--junit-xml", type=Path, metavar="FILE", help="also write a JUnit XML file for CI")
    run.add_argument("-j", "--jobs", default="1", metavar="N|auto",
                     help="run up to N experiments side by side, each in its own topology (auto: from cores "
                          "and memory); default 1")
    run.add_argument("--repeat", default="1", metavar="N",
                     help="run each experiment N times in a row, each run in <out>/<experiment>/run-01 ...; the "
                          "suite report states each experiment's figures over its runs (default 1)")
    run.add_argument("--client", metavar="MODULE:FACTORY",
                     help="run your own client instead of the experiment's (see README, Test your own code)")
    run.add_argument("--path", metavar="DIR", action="append", default=[],
                     help="where to import a client factory from (besides the working directory); repeatable")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a topology setting over each experiment's `topology:` (repeatable), e.g. version=3.6.0")
    up = sub.add_parser("up", help="start a topology and leave it running for a lab")
    up.add_argument("system")
    up.add_argument("--backend", default="auto")
    up.add_argument("--toxics", action="store_true",
                    help="put Toxiproxy between clients and the data nodes, for toxic faults (latency, timeout, ...)")
    up.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a topology setting, as under `topology:` in an experiment file (repeatable)")
    lab_help = "the lab's run id (needed only when several labs are up)"
    flt = sub.add_parser("fault", help="apply a fault to the running lab (kinds, targets, options as in `faults:`)")
    flt.add_argument("kind")
    flt.add_argument("target", nargs="?", help="a role or node name (default: the kind's own)")
    flt.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                     help="a fault option, as in a `faults:` entry (repeatable; lists comma-separated)")
    flt.add_argument("--run", metavar="RUN_ID", help=lab_help)
    heal = sub.add_parser("heal", help="heal the lab's faults in force (all, or one id, or one kind), newest first")
    heal.add_argument("which", nargs="?", metavar="ID|KIND")
    heal.add_argument("--run", metavar="RUN_ID", help=lab_help)
    status = sub.add_parser("status", help="the lab's nodes, roles, faults in force and connection")
    status.add_argument("--run", metavar="RUN_ID", help=lab_help)
    down = sub.add_parser("down", help="heal and stop every topology started with `up` (or one: --run)")
    down.add_argument("--run", metavar="RUN_ID", help="only this lab")
    sub.add_parser("cleanup", help="remove everything chaoskit created whose run is gone")
    comp = sub.add_parser("compose", help="print a system's standalone Docker Compose lab file")
    comp.add_argument("system")
    comp.add_argument("-o", "--output", type=Path, metavar="FILE",
                      help="write FILE, with build contexts relative to it (default: stdout, absolute paths)")
    img = sub.add_parser("images", help="build the local images (no registry needed); cached per Dockerfile")
    img.add_argument("--force", action="store_true", help="rebuild every image, even if up to date")
    img.add_argument("--env", action="store_true",
                     help="build nothing; print VAR=TAG for each system's image: the local one unless VAR is set")
    img.add_argument("--system", help="only what this system's docker runs need and no registry gives (with the "
                     "stand-ins of the versions its experiments pin)")
    img.add_argument("--version", help="with --system: also the stand-in of this server version (e.g. 3.7.0)")
    rep = sub.add_parser("report", help="re-render report.html of a run directory")
    rep.add_argument("run_dir", type=Path)
    rec = sub.add_parser("recount", help="recount a run's figures from history.jsonl and compare with its journal")
    rec.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    return p


def _select(args: argparse.Namespace) -> list[Experiment]:
    if args.backend not in BACKEND_NAMES:
        raise UsageError(f"unknown backend {args.backend!r} (known: {', '.join(BACKEND_NAMES)})")
    dirs = user_experiment_dirs(args.experiments)  # a directory that does not exist: exit 2
    if args.system:
        exps = [e for e in _listed(dirs) if e.system == args.system]
        if not exps:
            raise UsageError(f"no experiments for system {args.system!r}")
    elif args.names:
        exps = [load(name, dirs) for name in args.names]
    else:
        raise UsageError("name an experiment (see `chaoskit list`) or pass --system")
    return exps


def _listed(dirs: list[Path]) -> list[Experiment]:
    """Every valid experiment; an invalid file is named on stderr (one line each) and left out."""
    skipped: list[str] = []
    exps = list_experiments(dirs, skipped=skipped)
    for problem in skipped:
        print(f"chaoskit: skipped {problem}", file=sys.stderr)
    return exps


def cmd_list(args: argparse.Namespace) -> int:
    rows = [[e.name, e.system, e.purpose] for e in _listed(user_experiment_dirs(args.experiments))]
    print(console.table(["experiment", "system", "purpose"], rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from chaoskit.clients.user import load_factory
    from chaoskit.runner import check_drivers

    exps = [with_settings(e, _settings(args.set)) for e in _select(args)]  # each validated before anything starts
    for exp in exps:  # and every driver they need there (one line naming the extra, exit 2)
        check_drivers(exp)
    jobs = _jobs(args.jobs, exps)
    repeat = _repeat(args.repeat)
    client = load_factory(args.client, args.path) if args.client else None
    for exp in exps:  # and every user client's factory imported
        if exp.client.factory and client is None:
            load_factory(exp.client.factory, args.path)
    if len(exps) == 1 and repeat == 1:
        return _run_one(exps[0], args, client)
    return _run_suite(exps, args, client, jobs, repeat)


def _jobs(value: str, exps: list[Experiment]) -> int:
    from chaoskit.suite import default_jobs
    from chaoskit.systems import get_system

    if value == "auto":
        return default_jobs(weight=max(get_system(e.system).run_weight for e in exps))
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"-j {value!r}: expected a number >= 1 or auto")
    return int(value)


def _repeat(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"--repeat {value!r}: expected a number >= 1")
    return int(value)


def _run_one(exp: Experiment, args: argparse.Namespace, client: Any) -> int:
    from chaoskit.junit import JUnitLog
    from chaoskit.runner import run

    junit = JUnitLog(args.junit_xml, [exp])  # no-op without --junit-xml
    print(f"\n=== {exp.name}: {exp.purpose}\n    hypothesis: {exp.hypothesis}", flush=True)
    with junit.case(exp) as case:
        result = run(exp, args.backend, args.out, console.Progress("  "), client=client, paths=args.path)
        case.record(result)
    print(console.check_table(result.checks))
    print(console.verdict_line(exp.name, result.verdict.value, str(result.out_dir)), flush=True)
    return result.exit_code


def _run_suite(exps: list[Experiment], args: argparse.Namespace, client: Any, jobs: int, repeat: int = 1) -> int:
    from chaoskit.junit import JUnitLog
    from chaoskit.suite import Suite, junit_from, loss_lines, run_in_turn, run_side_by_side, summary_table
    from chaoskit.suite_report import Row, write_suite

    suite = Suite.for_run(args.out)
    junit = JUnitLog(args.junit_xml, exps, repeat=repeat)  # no-op without --junit-xml
    jobs = min(jobs, len(exps))
    runs = f", {repeat} runs each" if repeat > 1 else ""
    print(f"{len(exps)} experiment(s){runs}, {jobs} at a time; runs and the suite report in {suite.root}/",
          flush=True)
    t_suite = time.monotonic()
    try:
        if jobs > 1:
            try:
                run_side_by_side(exps, suite, jobs, args.backend, args.client, args.path, repeat=repeat,
                                 settings=args.set)
            finally:
                junit_from(junit, suite.outcomes)
        else:
            run_in_turn(exps, suite, junit, repeat, args.backend, client, args.path)
    finally:
        rows = [Row(o.experiment.name, o.out_dir, o.journal, o.experiment.compare_with, o.error, o.wall_s, o.run)
                for o in suite.outcomes]
        if rows:
            write_suite(suite.root / "index.html", rows)
    print("\n" + summary_table(suite.outcomes))
    for line in loss_lines(suite.outcomes):
        print(line)
    print(f"suite report: {suite.root / 'index.html'} ({len(suite.outcomes)} runs in "
          f"{time.monotonic() - t_suite:.0f} s, -j {jobs})", flush=True)
    return max((o.exit_code for o in suite.outcomes), default=0)


def cmd_up(args: argparse.Namespace) -> int:
    from chaoskit.api import Cluster

    c: Cluster[Any, Any] = Cluster(args.system, args.backend, progress=console.Progress(), toxics=args.toxics,
                                   **_settings(args.set))
    c.start()
    c.detach()
    for name, node in c.topology.nodes.items():
        print(f"  {name:12} {node.address}:{node.port}")
    for f in dataclasses.fields(c.connection):
        print(f"  {f.name}: {getattr(c.connection, f.name)}")
    print(f"{args.system} is up (run {c.run_id}); faults: `chaoskit fault KIND TARGET`, `chaoskit status`, "
          "`chaoskit heal`; stop it with `chaoskit down`")
    return 0


def _settings(pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as topology settings (values read as YAML scalars: 3, true, 1.5)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def _remove_run(ledger: Ledger) -> list[str]:
    """Remove everything a dead run's ledger lists, then the ledger; returns what was removed."""
    from chaoskit.backends.docker import LABEL
    from chaoskit.backends.docker_workdir import hand_back
    from chaoskit.backends.ledger import remove_entries

    if ledger.backend == "docker":
        hand_back(None, ledger, LABEL)  # what its servers wrote, when this user is not root
    removed = remove_entries(ledger)
    ledger.forget()
    return removed


def cmd_down(cleanup_all: bool, run_id: str | None = None) -> int:
    from chaoskit.backends.ledger import all_ledgers
    from chaoskit.lab import heal_before_removal, locked, select

    if run_id is not None:
        select(run_id)  # exit 2 when no such lab is up
    n, alive = 0, []
    for ledger in all_ledgers():
        if run_id is not None and ledger.run_id != run_id:
            continue
        if ledger.owner_alive():
            print(f"skipping run {ledger.run_id}: its runner (pid {ledger.owner_pid}) is still running")
            alive.append(f"{ledger.run_id} (pid {ledger.owner_pid})")
            continue
        if not cleanup_all and ledger.topology is None:
            continue
        if ledger.lab is not None:
            with locked(ledger) as ledger:  # not while a lab command runs
                heal_before_removal(ledger)  # its faults in force, newest first
                removed = _remove_run(ledger)
        else:
            removed = _remove_run(ledger)
        n += 1
        print(f"run {ledger.run_id}: removed {len(removed)} item(s)" + (f": {', '.join(removed)}" if removed else ""))
    summary = f"{n} run(s) cleaned up" if n else "nothing to clean up"
    if alive:
        summary += f"; left {len(alive)} run(s) whose runner is alive: {', '.join(alive)}"
    print(summary)
    return 0


def _lab_command(args: argparse.Namespace) -> int:
    from chaoskit import lab_cli

    if args.cmd == "fault":
        return lab_cli.cmd_fault(args.kind, args.target, args.opt, args.run)
    if args.cmd == "heal":
        return lab_cli.cmd_heal(args.which, args.run)
    return lab_cli.cmd_status(args.run)


def cmd_compose(system: str, output: Path | None) -> int:
    import os

    from chaoskit.compose import render
    from chaoskit.resources import images_dir
    from chaoskit.systems import system_names

    if system not in system_names():
        raise UsageError(f"unknown system {system!r} (known: {', '.join(system_names())})")
    if output is None:
        sys.stdout.write(render(system, str(images_dir())))
        return 0
    if not output.parent.resolve().is_dir():
        raise UsageError(f"{output}: directory {output.parent} does not exist")
    output.write_text(render(system, os.path.relpath(images_dir(), output.parent.resolve())))
    print(f"wrote {output}")
    return 0


def cmd_images(force: bool, env: bool = False, system: str | None = None, version: str | None = None) -> int:
    from chaoskit.images import build_images, image_env

    if env:
        sys.stdout.write("".join(f"{var}={tag}\n" for var, tag in image_env().items()))
        return 0
    build_images(force=force, say=lambda msg: print(msg, flush=True), system=system, version=version)
    return 0


def cmd_report(run_dir: Path) -> int:
    from chaoskit.report import write_report
    from chaoskit.server_logs import read_jsonl

    journal_path = run_dir / "journal.json"
    if not journal_path.exists():
        from chaoskit.suite import found_runs, write_index

        runs = found_runs(run_dir)
        if not runs:
            raise UsageError(f"{journal_path}: not found (nor any */journal.json or */run-NN/journal.json of a suite)")
        print(f"wrote {write_index(run_dir, runs)} ({len(runs)} runs)")
        return 0
    journal = json.loads(journal_path.read_text())
    ops = [json.loads(line) for line in (run_dir / journal.get("history", "history.jsonl")).read_text().splitlines()
           if line.strip()]
    write_report(run_dir / "report.html", journal, ops, read_jsonl(run_dir, journal))
    print(f"wrote {run_dir / 'report.html'}")
    return 0


def cmd_recount(run_dirs: list[Path]) -> int:
    from chaoskit.recount import KEYS, disagreements, recount

    for run_dir in run_dirs:
        if not (run_dir / "journal.json").exists():
            raise UsageError(f"{run_dir / 'journal.json'}: not found")
    worst = 0
    for run_dir in run_dirs:
        metrics = json.loads((run_dir / "journal.json").read_text())["metrics"]
        second, differ = recount(run_dir), disagreements(run_dir)
        rows = [[key, str(metrics.get(key)), str(second[key]),
                 "DIFFERS" if any(d.startswith(f"{key}:") for d in differ) else "same"] for key in KEYS]
        print(f"{run_dir}\n" + console.table(["figure", "journal", "recount", ""], rows))
        print("the recount agrees with the journal" if not differ else f"{len(differ)} figure(s) differ")
        worst = max(worst, 1 if differ else 0)
    return worst


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.cmd == "list":
            return cmd_list(args)
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "up":
            return cmd_up(args)
        if args.cmd in ("fault", "heal", "status"):
            return _lab_command(args)
        if args.cmd == "down":
            return cmd_down(cleanup_all=False, run_id=args.run)
        if args.cmd == "cleanup":
            return cmd_down(cleanup_all=True)
        if args.cmd == "compose":
            return cmd_compose(args.system, args.output)
        if args.cmd == "images":
            return cmd_images(args.force, args.env, args.system, args.version)
        if args.cmd == "recount":
            return cmd_recount(args.run_dirs)
        return cmd_report(args.run_dir)
    except ChaoskitError as exc:
        print(f"chaoskit: {exc}", file=sys.stderr)
        return exc.exit_code
    except PermissionError as exc:  # a file another user made (root's runs/, a shared directory): one line
        print(f"chaoskit: {console.permission_problem(exc)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("chaoskit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
