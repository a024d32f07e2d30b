"""Tests for chaoskit.junit on fabricated results: the JUnit XML CI systems read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaoskit.checkers import Valid, Verdict
from chaoskit.errors import InfrastructureError
from chaoskit.experiment import load
from chaoskit.junit import Case, JUnitLog, check_table, write
from chaoskit.runner import RunResult
from chaoskit.verdicts import Check

HOLDS = Check("rto-s", Valid.TRUE, "first ok write on the new primary 2.8 s after the kill", "rto_s <= 3", "2.82")
LOST = Check("lost-writes", Valid.FALSE, "12 acknowledged writes missing from the final read", "lost_writes <= 0", "12")
UNSURE = Check("stale-reads", Valid.UNKNOWN, "no read completed", "stale_reads >= 1", "n/a")


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {tc.attrib["name"]: tc for tc in root.iter("testcase")}


def _props(tc: ET.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in tc.iter("property")}


def test_one_testcase_per_experiment_with_failures_errors_and_skips(tmp_path: Path) -> None:
    cases = [
        Case("redis", "redis-primary-kill", 21.5, Verdict.PASS, [HOLDS], "runs/a/report.html"),
        Case("redis", "redis-primary-partition", 30.25, Verdict.FAIL, [HOLDS, LOST], "runs/b/report.html"),
        Case("mongo", "mongo-secondary-read-lag", 12.0, Verdict.UNKNOWN, [UNSURE], "runs/c/report.html"),
        Case("postgres", "postgres-primary-kill", 61.0,
             error="InfrastructureError: timed out waiting for a leader\n  log tail:\n    patroni: no etcd"),
        Case("postgres", "postgres-switchover", skipped=True, error="not run: an earlier experiment raised X"),
    ]
    path = tmp_path / "ci" / "chaoskit.xml"
    write(path, cases)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.iter("testsuite")
    for el in (root, suite):
        assert (el.attrib["tests"], el.attrib["failures"], el.attrib["errors"], el.attrib["skipped"]) == \
            ("5", "1", "2", "1")
        assert float(el.attrib["time"]) == pytest.approx(124.75)
    by_name = _cases(root)
    assert list(by_name) == [c.name for c in cases]

    ok = by_name["redis-primary-kill"]
    assert ok.attrib["classname"] == "redis" and float(ok.attrib["time"]) == 21.5
    assert [child.tag for child in ok] == ["properties"]
    assert _props(ok) == {"verdict": "pass", "report": "runs/a/report.html"}

    failed = by_name["redis-primary-partition"]
    (failure,) = failed.iter("failure")
    assert failure.attrib["type"] == "verdict-fail"
    assert failure.attrib["message"] == check_table([HOLDS, LOST])  # newlines survive the attribute
    assert "lost-writes  lost_writes <= 0" in failure.attrib["message"] and "VIOLATED" in failure.attrib["message"]
    assert "12 acknowledged writes missing" in (failure.text or "")
    assert _props(failed)["report"] == "runs/b/report.html"

    unknown = by_name["mongo-secondary-read-lag"]
    (error,) = unknown.iter("error")
    assert error.attrib["type"] == "verdict-unknown" and "stale-reads" in error.attrib["message"]
    assert not list(unknown.iter("failure"))

    infra = by_name["postgres-primary-kill"]
    (error,) = infra.iter("error")
    assert error.attrib["type"] == "InfrastructureError"
    assert error.attrib["message"] == "InfrastructureError: timed out waiting for a leader"
    assert "patroni: no etcd" in (error.text or "")
    assert _props(infra) == {"verdict": "error"}

    (skipped,) = by_name["postgres-switchover"].iter("skipped")
    assert "not run" in skipped.attrib["message"]


def test_log_records_results_and_turns_a_raise_into_an_error_then_skips_the_rest(tmp_path: Path) -> None:
    exps = [load("redis-primary-kill"), load("redis-primary-pause"), load("redis-client-pause")]
    path = tmp_path / "junit.xml"
    log = JUnitLog(path, exps)
    with log.case(exps[0]) as case:
        case.record(RunResult({}, tmp_path / "run-1", Verdict.FAIL, [LOST]))
    first = _cases(ET.parse(path).getroot())
    assert list(first) == ["redis-primary-kill"], "the file is written after each experiment"
    with pytest.raises(InfrastructureError), log.case(exps[1]):
        raise InfrastructureError("redis-1 never became ready", log_tail="oom")
    by_name = _cases(ET.parse(path).getroot())
    assert list(by_name) == ["redis-primary-kill", "redis-primary-pause", "redis-client-pause"]
    assert by_name["redis-primary-kill"].find("failure") is not None
    assert _props(by_name["redis-primary-kill"])["report"] == str(tmp_path / "run-1" / "report.html")
    error = by_name["redis-primary-pause"].find("error")
    assert error is not None and error.attrib["message"] == "InfrastructureError: redis-1 never became ready"
    assert by_name["redis-client-pause"].find("skipped") is not None
    assert not list(tmp_path.glob("*.tmp")), "written atomically"


def test_log_without_a_path_writes_nothing(tmp_path: Path) -> None:
    exp = load("redis-primary-kill")
    log = JUnitLog(None, [exp])
    with log.case(exp) as case:
        case.record(RunResult({}, tmp_path, Verdict.PASS, [HOLDS]))
    assert list(tmp_path.iterdir()) == []
