"""``chaoskit list | run | up | down | cleanup | compose | report`` (exit codes per DESIGN §2)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from chaoskit import console
from chaoskit.backends import BACKEND_NAMES
from chaoskit.errors import ChaoskitError, UsageError
from chaoskit.experiment import Experiment, list_experiments, load


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chaoskit", description="Chaos experiments for databases, checked through real drivers.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list experiments")
    run = sub.add_parser("run", help="run experiments (by name, path, or --system)")
    run.add_argument("experiments", nargs="*", metavar="EXPERIMENT")
    run.add_argument("--system", help="run every experiment of this system")
    run.add_argument("--backend", default="auto", choices=None, help="auto | local | docker")
    run.add_argument("--out", type=Path, help="output directory (one sub-directory per experiment if several)")
    run.add_argument("--junit-xml", type=Path, metavar="FILE", help="also write a JUnit XML file for CI")
    up = sub.add_parser("up", help="start a topology and leave it running for a lab")
    up.add_argument("system")
    up.add_argument("--backend", default="auto")
    sub.add_parser("down", help="stop every topology started with `up`")
    sub.add_parser("cleanup", help="remove everything chaoskit created whose run is gone")
    comp = sub.add_parser("compose", help="print a system's standalone Docker Compose lab file")
    comp.add_argument("system")
    rep = sub.add_parser("report", help="re-render report.html of a run directory")
    rep.add_argument("run_dir", type=Path)
    return p


def _select(args: argparse.Namespace) -> list[Experiment]:
    if args.backend not in BACKEND_NAMES:
        raise UsageError(f"unknown backend {args.backend!r} (known: {', '.join(BACKEND_NAMES)})")
    if args.system:
        exps = [e for e in list_experiments() if e.system == args.system]
        if not exps:
            raise UsageError(f"no experiments for system {args.system!r}")
    elif args.experiments:
        exps = [load(name) for name in args.experiments]
    else:
        raise UsageError("name an experiment (see `chaoskit list`) or pass --system")
    return exps


def cmd_list() -> int:
    rows = [[e.name, e.system, e.purpose] for e in list_experiments()]
    print(console.table(["experiment", "system", "purpose"], rows))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from chaoskit.junit import JUnitLog
    from chaoskit.runner import run

    exps = _select(args)  # every file validated before anything starts
    summary: list[tuple[str, str, str]] = []
    worst = 0
    junit = JUnitLog(args.junit_xml, exps)  # no-op without --junit-xml
    for exp in exps:
        out = args.out / exp.name if args.out and len(exps) > 1 else args.out
        print(f"\n=== {exp.name}: {exp.purpose}\n    hypothesis: {exp.hypothesis}", flush=True)
        with junit.case(exp) as case:
            result = run(exp, args.backend, out, console.Progress("  "))
            case.record(result)
        print(console.check_table(result.checks))
        print(console.verdict_line(exp.name, result.verdict.value, str(result.out_dir)), flush=True)
        summary.append((exp.name, result.verdict.value, str(result.out_dir)))
        worst = max(worst, result.exit_code)
    if len(summary) > 1:
        print("\n" + console.table(["experiment", "verdict", "report"],
                                   [[n, v.upper(), f"{d}/report.html"] for n, v, d in summary]))
    return worst


def cmd_up(args: argparse.Namespace) -> int:
    from chaoskit.backends import make_backend
    from chaoskit.runner import check_binaries
    from chaoskit.systems import get_system, system_names

    if args.system not in system_names():
        raise UsageError(f"unknown system {args.system!r} (known: {', '.join(system_names())})")
    system = get_system(args.system)
    exp = next(e for e in list_experiments() if e.system == args.system)
    from chaoskit.backends import resolve_backend_name

    backend_name = resolve_backend_name(args.backend, system.images())
    check_binaries(args.system, backend_name)
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.gettempdir()) / f"chaoskit-{run_id}"
    backend = make_backend(backend_name, run_id, str(workdir), detached=True)
    try:
        topology = system.topology(exp, backend, workdir)
        topology.up(console.Progress())
        topology.wait_ready(60)
    except BaseException:
        backend.teardown()
        raise
    backend.ledger.detach(args.system)  # type: ignore[attr-defined]
    for name, node in topology.nodes.items():
        print(f"  {name:12} {node.address}:{node.port}")
    print(f"{args.system} is up (run {run_id}); stop it with `chaoskit down`")
    return 0


def cmd_down(cleanup_all: bool) -> int:
    from chaoskit.backends.ledger import all_ledgers, remove_entries

    n, alive = 0, []
    for ledger in all_ledgers():
        if ledger.owner_alive():
            print(f"skipping run {ledger.run_id}: its runner (pid {ledger.owner_pid}) is still running")
            alive.append(f"{ledger.run_id} (pid {ledger.owner_pid})")
            continue
        if not cleanup_all and ledger.topology is None:
            continue
        removed = remove_entries(ledger)
        ledger.forget()
        n += 1
        print(f"run {ledger.run_id}: removed {len(removed)} item(s)" + (f": {', '.join(removed)}" if removed else ""))
    summary = f"{n} run(s) cleaned up" if n else "nothing to clean up"
    if alive:
        summary += f"; left {len(alive)} run(s) whose runner is alive: {', '.join(alive)}"
    print(summary)
    return 0


def cmd_compose(system: str) -> int:
    from chaoskit.compose import render
    from chaoskit.systems import system_names

    if system not in system_names():
        raise UsageError(f"unknown system {system!r} (known: {', '.join(system_names())})")
    sys.stdout.write(render(system))
    return 0


def cmd_report(run_dir: Path) -> int:
    from chaoskit.report import write_report

    journal_path = run_dir / "journal.json"
    if not journal_path.exists():
        raise UsageError(f"{journal_path}: not found")
    journal = json.loads(journal_path.read_text())
    ops = [json.loads(line) for line in (run_dir / journal.get("history", "history.jsonl")).read_text().splitlines()
           if line.strip()]
    write_report(run_dir / "report.html", journal, ops)
    print(f"wrote {run_dir / 'report.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.cmd == "list":
            return cmd_list()
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "up":
            return cmd_up(args)
        if args.cmd == "down":
            return cmd_down(cleanup_all=False)
        if args.cmd == "cleanup":
            return cmd_down(cleanup_all=True)
        if args.cmd == "compose":
            return cmd_compose(args.system)
        return cmd_report(args.run_dir)
    except ChaoskitError as exc:
        print(f"chaoskit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chaoskit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
