"""The suite: default parallelism, the suite report's table and pairs, and the built-in pairs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chaoskit import cli
from chaoskit.catalog import list_experiments
from chaoskit.suite import default_jobs
from chaoskit.suite_report import Row, pairs, render_suite, write_suite


def _journal(name: str, verdict: str = "pass", lost: int = 0, acked: int = 100, **metrics: Any) -> dict[str, Any]:
    return {"experiment": name, "system": "redis", "backend": "local", "verdict": verdict, "purpose": f"{name}.",
            "metrics": {"acked_writes": acked, "lost_writes": lost, "stale_reads": 0, "rto_s": 2.5,
                        "unavailable_s": 3.0, **metrics}}


def test_default_jobs_follows_cores_and_memory() -> None:
    assert default_jobs(cores=2, mem_gib=24) == 4
    assert default_jobs(cores=1, mem_gib=24) == 2
    assert default_jobs(cores=16, mem_gib=2.5) == 2
    assert default_jobs(cores=8, mem_gib=0.3) == 1
    assert default_jobs(cores=2, mem_gib=24, weight=2.0) == 2  # a Cassandra ring counts as two runs
    assert default_jobs(cores=1, mem_gib=24, weight=4.0) == 1


def test_pairs_are_weaker_first_once_and_only_when_both_ran(tmp_path: Path) -> None:
    weak, strong = Row("weak", tmp_path / "weak", _journal("weak")), \
        Row("strong", tmp_path / "strong", _journal("strong"), compare_with="weak")
    lone = Row("lone", tmp_path / "lone", _journal("lone"), compare_with="absent")
    assert pairs([strong, lone, weak]) == [(weak, strong)]
    assert pairs([lone, weak]) == []


def test_suite_report_links_every_run_and_draws_each_pair(tmp_path: Path) -> None:
    rows = [Row("redis-primary-partition", tmp_path / "a", _journal("redis-primary-partition", "pass", 60, 120)),
            Row("redis-primary-partition-guarded", tmp_path / "b",
                _journal("redis-primary-partition-guarded", "pass", 12, 120), "redis-primary-partition"),
            Row("broken", tmp_path / "c", None, error="InfrastructureError: sentinel did not start")]
    write_suite(tmp_path / "index.html", rows)
    page = (tmp_path / "index.html").read_text()
    assert 'href="a/report.html"' in page and 'href="b/report.html"' in page
    assert 'href="c/report.html"' not in page and "sentinel did not start" in page
    assert "redis-primary-partition vs redis-primary-partition-guarded" in page
    assert page.count("<svg") == 1 and ">50.0%<" in page and ">10.0%<" in page  # lost % of acked, each side
    assert "60 / 120" in page and "ERROR" in page and "verdict-unknown" in page
    assert not re.search(r"<script|https?://", page)  # self-contained


def test_a_cache_pair_compares_errors_and_hit_ratio_not_lost_writes(tmp_path: Path) -> None:
    def cache(name: str, errors: int) -> dict[str, Any]:
        return {**_journal(name, cache_errors=errors, min_hit_ratio=0.65, unexpected_misses=210, rehash_s=2.1),
                "rto": {"cache": True}}

    rows = [Row("memcached-node-kill-raise", tmp_path / "a", cache("memcached-node-kill-raise", 15)),
            Row("memcached-node-kill", tmp_path / "b", cache("memcached-node-kill", 0), "memcached-node-kill-raise")]
    page = render_suite(rows, tmp_path)
    assert "errors raised" in page and "lowest hit ratio" in page and "lost writes" not in page
    assert ">15<" in page


def test_a_slow_network_pair_shows_amplification_longest_op_and_duplicates(tmp_path: Path) -> None:
    rows = [Row("storm", tmp_path / "a", _journal("storm", attempts_per_op_during=10.78, max_op_ms=4339.4,
                                                  duplicates=2)),
            Row("calm", tmp_path / "b", _journal("calm", attempts_per_op_during=6.0, max_op_ms=5183.8,
                                                 duplicates=0), "storm")]
    page = render_suite(rows, tmp_path)
    chart = page[page.index("<svg"):page.index("</svg>")]
    for label, a, b in (("attempts per op in the fault", "10.78", "6"), ("longest op (ms)", "4339.40", "5183.80"),
                        ("duplicates", "2", "0")):
        assert re.search(rf">{re.escape(label)}</text><rect[^>]*/><text[^>]*>{a}</text><rect[^>]*/>"
                         rf"<text[^>]*>{b}</text>", chart), label


def test_suite_report_says_when_no_pair_ran(tmp_path: Path) -> None:
    page = render_suite([Row("x", tmp_path / "x", _journal("x"))], tmp_path)
    assert "No declared pair" in page and "verdict-pass" in page


def test_every_built_in_pair_names_a_weaker_experiment_of_the_same_system() -> None:
    exps = {e.name: e for e in list_experiments([])}
    declared = [e for e in exps.values() if e.compare_with]
    assert len(declared) >= 6
    for e in declared:
        assert e.compare_with in exps, e.name
        assert exps[e.compare_with].system == e.system and e.compare_with != e.name


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_jobs_value_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--system", "redis", "-j", value]) == 2
    assert "-j" in capsys.readouterr().err


def test_report_of_a_suite_directory_rewrites_its_index(tmp_path: Path) -> None:
    import json

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "journal.json").write_text(json.dumps(_journal(name)))
    assert cli.main(["report", str(tmp_path)]) == 0
    assert 'href="one/report.html"' in (tmp_path / "index.html").read_text()
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
