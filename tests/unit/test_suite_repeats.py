"""The suite page of repeated runs (``chaoskit run --repeat N``) from fabricated journals: a row of figures per
experiment, a compare_with chain as one table read side by side, each run linked; the CLI side of --repeat."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from chaoskit import cli, runner
from chaoskit.checkers import Verdict
from chaoskit.errors import InfrastructureError, Interrupted, MissingDependencyError
from chaoskit.experiment import load
from chaoskit.junit import JUnitLog
from chaoskit.runner import RunResult
from chaoskit.suite import Suite, run_in_turn
from chaoskit.suite_report import Row, render_suite

OLD, MID, NEW = "os-2-19-6", "os-3-6-0", "os-3-8-0"


def _journal(name: str, lost: int | None, version: str | None, verdict: str = "pass", acked: int = 1000,
             info: int = 0, longest: float = 500.0) -> dict[str, Any]:
    return {"experiment": name, "system": "opensearch", "verdict": verdict,
            "metrics": {"lost_writes": lost, "acked_writes": acked, "ops_info": info, "max_op_ms": longest},
            **({"server": {"version": version, "java": 21}} if version else {})}


def _runs(tmp_path: Path, name: str, compare_with: str | None, lost: list[int | None],
          version: str | None) -> list[Row]:
    return [Row(name, tmp_path / name / f"run-{i:02d}", _journal(name, x, version, "fail" if x else "pass"),
                compare_with, run=i) for i, x in enumerate(lost, 1)]


def _section(page: str, title: str) -> str:
    start = page.index(title)
    return page[start:page.index("</section>", start)]


def test_a_chain_of_three_versions_is_one_table_oldest_first(tmp_path: Path) -> None:
    rows = [*_runs(tmp_path, NEW, MID, [0, 0, 0], "3.8.0"), *_runs(tmp_path, OLD, None, [4, 0, 9], "2.19.6"),
            *_runs(tmp_path, MID, OLD, [0, 2, 0], "3.6.0")]
    page = render_suite(rows, tmp_path)
    side = _section(page, "side by side")
    assert side.count('<div class="chain">') == 1 and 'class="pair"' not in side
    assert re.findall(r"<th>(os-[^<]*)</th>", side) == [OLD, MID, NEW]
    row = re.search(r"<tr><td>runs losing acked writes</td>(.*?)</tr>", side)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells == ["<b>2 of 3</b> (66.7%; 95% CI 20.8% – 93.9%)", "<b>1 of 3</b> (33.3%; 95% CI 6.1% – 79.2%)",
                     "<b>0 of 3</b> (0%; 95% CI 0% – 56.1%)"]
    assert "<tr><td>server version</td><td>2.19.6</td><td>3.6.0</td><td>3.8.0</td></tr>" in side
    assert ("<tr><td>lost / acked writes</td><td>13 / 3000 (0.4%)</td><td>2 / 3000 (0.1%)</td>"
            "<td>0 / 3000 (0%)</td></tr>") in side
    assert "<tr><td>lost per run (min / median / max)</td><td>0 / 4 / 9</td>" in side
    assert f"<tr><td>compared with</td><td>—</td><td>{OLD}</td><td>{MID}</td></tr>" in side


def test_each_experiment_gets_a_row_a_strip_and_a_link_per_run(tmp_path: Path) -> None:
    rows = [*_runs(tmp_path, OLD, None, [4, 0], "2.19.6"),
            Row(OLD, tmp_path / OLD / "run-03", _journal(OLD, None, "3.6.0", "unknown"), run=3),
            Row(OLD, tmp_path / OLD / "run-04", None, error="InfrastructureError: node-1 never ready", run=4)]
    page = render_suite(rows, tmp_path)
    agg = _section(page, "Repeated runs")
    assert "<b>1 of 2</b>" in agg and "2 run(s) without the figure" in agg  # run 3 and 4 are not "0 lost"
    assert "mixed (2.19.6, 3.6.0)" in agg and "1 pass" in agg and "1 fail" in agg and "1 error" in agg
    strip = agg[agg.index('<svg class="strip"'):agg.index("</svg>")]
    assert strip.count("<rect") == 1 and strip.count("<circle") == 1 and strip.count(">?</text>") == 2
    for i in (1, 2, 3):
        assert f'href="{OLD}/run-0{i}/report.html"' in agg
    assert 'href="os-2-19-6/run-04/report.html" title' not in agg  # no journal, no link
    every = _section(page, "Every run")
    assert f"{OLD} · run 01" in every and "node-1 never ready" in every
    assert "<b>runs</b> 4" in page and not re.search(r"<script|https?://", page)


def test_single_runs_keep_the_pair_view(tmp_path: Path) -> None:
    rows = [Row(OLD, tmp_path / OLD, _journal(OLD, 4, "2.19.6")),
            Row(MID, tmp_path / MID, _journal(MID, 0, "3.6.0"), OLD)]
    page = render_suite(rows, tmp_path)
    assert f"{OLD} vs {MID}" in page and '<div class="chain">' not in page and "Repeated runs" not in page


def test_a_cycle_or_a_missing_member_renders(tmp_path: Path) -> None:
    rows = [*_runs(tmp_path, OLD, NEW, [0, 1], None), *_runs(tmp_path, NEW, OLD, [0, 0], None),
            *_runs(tmp_path, MID, "absent", [0, 0], None)]
    page = render_suite(rows, tmp_path)
    assert _section(page, "side by side").count('<div class="chain">') == 1
    assert page.count("<tr><td><b>") == 3  # each experiment's row, the lone one too


@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_a_bad_repeat_value_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "redis-client-pause", "--repeat", value]) == 2
    err = capsys.readouterr().err
    assert "--repeat" in err and err.count("\n") == 1


def test_report_rerenders_a_directory_of_repeated_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, lost in ((OLD, [3, 0, 1]), (MID, [0, 0, 0])):
        for i, x in enumerate(lost, 1):
            d = tmp_path / name / f"run-{i:02d}"
            d.mkdir(parents=True)
            (d / "journal.json").write_text(json.dumps({**_journal(name, x, None),
                                                        "compare_with": OLD if name == MID else None}))
    (tmp_path / OLD / "run-xx").mkdir()  # not a run
    assert cli.main(["report", str(tmp_path)]) == 0
    assert "(6 runs)" in capsys.readouterr().out
    page = (tmp_path / "index.html").read_text()
    assert "<b>2 of 3</b>" in page and "<b>0 of 3</b>" in page and '<div class="chain">' in page
    assert f'href="{MID}/run-03/report.html"' in page


def test_junit_has_a_case_per_run_and_skips_the_runs_after_an_interruption(tmp_path: Path) -> None:
    exps = [load("redis-client-pause"), load("redis-primary-kill")]
    log = JUnitLog(tmp_path / "junit.xml", exps, repeat=2)
    with log.case(exps[0], 1) as case:
        case.record(RunResult({}, tmp_path / "run-01", Verdict.PASS, []))
    with pytest.raises(Interrupted), log.case(exps[0], 2):
        raise Interrupted("interrupted by SIGINT; faults healed and nodes torn down")
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert list(cases) == ["redis-client-pause run-01", "redis-client-pause run-02", "redis-primary-kill run-01",
                           "redis-primary-kill run-02"]
    assert cases["redis-client-pause run-02"].find("error") is not None
    assert all(cases[f"redis-primary-kill run-0{i}"].find("skipped") is not None for i in (1, 2))


def test_a_repeated_run_whose_infrastructure_failed_is_an_error_row_and_the_next_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = load("redis-client-pause")
    calls: list[Path] = []

    def fake_run(_exp: Any, _backend: str, out_dir: Path, *_a: Any, **_k: Any) -> RunResult:
        calls.append(out_dir)
        if len(calls) == 2:
            raise InfrastructureError("timed out after 30s waiting for redis-2", "log tail")
        return RunResult({"verdict": "pass"}, out_dir, Verdict.PASS, [])

    monkeypatch.setattr(runner, "run", fake_run)
    suite, log = Suite(tmp_path), JUnitLog(tmp_path / "junit.xml", [exp], repeat=3)
    run_in_turn([exp], suite, log, 3, "local", None, [])
    assert [o.run for o in suite.outcomes] == [1, 2, 3] and len(calls) == 3
    assert suite.outcomes[1].error == "timed out after 30s waiting for redis-2"
    assert suite.outcomes[1].verdict == "error" and suite.outcomes[2].verdict == "pass"
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert cases["redis-client-pause run-02"].find("error") is not None
    assert cases["redis-client-pause run-03"].find("skipped") is None


def test_a_missing_dependency_still_ends_repeated_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = load("redis-client-pause")

    def fake_run(*_a: Any, **_k: Any) -> RunResult:
        raise MissingDependencyError("`redis-server` not found")

    monkeypatch.setattr(runner, "run", fake_run)
    with pytest.raises(MissingDependencyError):
        run_in_turn([exp], Suite(tmp_path), JUnitLog(tmp_path / "junit.xml", [exp], repeat=3), 3, "local", None, [])


def test_side_by_side_children_get_the_suites_set_options(tmp_path: Path) -> None:
    from chaoskit.suite import child_argv

    argv = child_argv(load("opensearch-stale-primary-3-8-0"), tmp_path, "local", None, [], ["version=3.6.0"])
    assert argv[argv.index("--set") + 1] == "version=3.6.0"
