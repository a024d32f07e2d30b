"""Tests for chaoskit.report: a single self-contained HTML file built from a journal and an op history."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from chaoskit.report import render_report, write_report


def make_ops(n_writes: int = 1000, step: float = 0.01, outage: tuple[float, float] = (3.0, 5.0)) -> list[dict]:
    """Writes every ``step`` s from two processes plus reads; fail/info during the outage window."""
    ops: list[dict[str, Any]] = []
    for i in range(n_writes):
        t = 0.5 + i * step
        for proc, f in ((0, "write"), (1, "read")):
            ops.append({"process": proc, "type": "invoke", "f": f, "value": i, "time": t})
            done: dict[str, Any] = {"process": proc, "type": "ok", "f": f, "value": i, "time": t + 0.002}
            if outage[0] <= t < outage[1]:
                done["type"] = "fail" if i % 2 else "info"
                done["time"] = t + 0.5
                done["error"] = "ConnectionError: Error 111 connecting to 10.0.0.1:6379. Connection refused."
            ops.append(done)
    end = 0.5 + n_writes * step + 0.6
    ops.append({"process": 9, "type": "invoke", "f": "final-read", "value": None, "time": end})
    ops.append({"process": 9, "type": "ok", "f": "final-read", "value": list(range(5)), "time": end + 0.1})
    return ops


def make_journal(**overrides: Any) -> dict[str, Any]:
    journal: dict[str, Any] = {
        "experiment": "redis-primary-kill", "system": "redis", "backend": "local", "client": "sentinel-backoff",
        "purpose": "Kill the primary; Sentinel promotes a replica.",
        "hypothesis": "no acknowledged write is lost; client recovers within 2.5 s",
        "started_at": "2026-11-26T22:10:00+00:00", "ended_at": "2026-11-26T22:10:20+00:00",
        "verdict": "pass",
        "checks": [
            {"name": "lost-writes", "valid": True, "detail": "0 of 800 acknowledged writes missing",
             "expected": "lost_writes <= 0", "observed": "0"},
            {"name": "rto", "valid": "unknown", "detail": "no recovery seen", "expected": "rto_s <= 2.5",
             "observed": "n/a"},
            {"name": "stale-reads", "valid": False, "detail": "2 stale", "expected": "0", "observed": "2"},
        ],
        "metrics": {"ops_ok": 1600, "ops_fail": 200, "ops_info": 200, "acked_writes": 800, "lost_writes": 0,
                    "stale_reads": 2, "unavailable_s": 2.61, "rto_s": None, "max_op_gap_ms": 8.1,
                    "custom_ratio": 0.0421},
        "faults": [{"kind": "kill", "target": "redis-1", "role": "primary", "applied_at": 3.0, "healed_at": 8.0},
                   {"kind": "partition", "target": "redis-3", "role": "replica", "applied_at": 9.0,
                    "healed_at": None}],
        "phases": [{"name": "steady", "start": 0.5, "end": 3.0}, {"name": "fault", "start": 3.0, "end": 8.0},
                   {"name": "recover", "start": 8.0, "end": 10.5}, {"name": "final-read", "start": 11.0,
                                                                    "end": 11.3}],
        "rto": {"fault_at": 3.0, "detected_at": 4.05, "promoted_at": 5.3, "recovered_at": 5.35,
                "new_primary": "redis-2"},
        "events": [{"time": 4.05, "source": "sentinel-1", "kind": "+odown", "detail": "master mymaster"},
                   {"time": 5.3, "source": "sentinel-2", "kind": "+switch-master", "detail": "to redis-2"}],
        "history": "history.jsonl",
    }
    journal.update(overrides)
    return journal


class _Collector(HTMLParser):
    """Collects every tag and attribute so tests can inspect the document structurally."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(doc: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(doc)
    return collector.tags


@pytest.fixture(scope="module")
def doc() -> str:
    return render_report(make_journal(), make_ops())


def test_document_basics(doc: str) -> None:
    assert doc.startswith("<!DOCTYPE html>")
    assert doc.rstrip().endswith("</html>")
    assert "redis-primary-kill" in doc
    tags = parse(doc)
    assert sum(tag == "svg" for tag, _ in tags) == 2  # timeline + latency
    assert "<script" not in doc.lower()


def test_no_external_resources(doc: str) -> None:
    assert "http://" not in doc and "https://" not in doc
    for tag, attrs in parse(doc):
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert not re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I), (tag, value)
                assert not value.startswith("//")
    hrefs = [a["href"] for tag, a in parse(doc) if tag == "a"]
    assert hrefs == ["history.jsonl", "journal.json"]


def test_timeline_shows_faults_phases_and_markers(doc: str) -> None:
    assert doc.count('class="fault"') == 4  # two faults, shaded in both plots
    assert "kill redis-1 (primary)" in doc
    assert "partition redis-3 (replica) — not healed" in doc
    for label in ("fault", "detected", "new primary redis-2", "client recovered"):
        assert f">{label}</text>" in doc
    assert 'stroke-dasharray="5 3"' in doc
    for phase in ("steady", "recover"):
        assert f">{phase}</text>" in doc
    assert ">writes</text>" in doc and ">reads</text>" in doc
    assert "final-read ok" in doc  # rare op rendered as a single marker, not a band
    fills = {a.get("fill") for tag, a in parse(doc) if tag == "path"}
    assert {"#2f9e50", "#d8433b", "#f0932b"} <= fills  # ok / fail / info bars


def test_checks_metrics_events_and_errors(doc: str) -> None:
    assert doc.count('class="v v-pass"') == 1
    assert doc.count('class="v v-fail"') == 1
    assert doc.count('class="v v-unknown"') == 1
    assert "1 of 3 checks passed" in doc
    assert ">1,600</div>" in doc  # ops_ok with thousands separator
    assert "2.61<small> s</small>" in doc
    assert ">RTO</div>" in doc and ">—</div>" in doc  # null metric rendered as a dash
    assert "custom ratio" in doc and "0.0421" in doc
    assert '<div class="card bad"><div class="val">2</div>' in doc  # stale reads highlighted
    assert "+switch-master" in doc and "sentinel-2" in doc
    assert "ConnectionError: Error 111" in doc
    assert re.search(r'<td class="n">400</td><td><code>ConnectionError', doc)


@pytest.mark.parametrize(("verdict", "cls"), [("pass", "verdict-pass"), ("fail", "verdict-fail"),
                                             ("unknown", "verdict-unknown"), (None, "verdict-unknown"),
                                             ("weird", "verdict-unknown")])
def test_verdict_class(verdict: Any, cls: str) -> None:
    doc = render_report(make_journal(verdict=verdict), [])
    assert f'class="verdict {cls}"' in doc
    others = {"verdict-pass", "verdict-fail", "verdict-unknown"} - {cls}
    assert not any(f'class="verdict {o}"' in doc for o in others)


def test_escapes_all_journal_and_op_text() -> None:
    evil = "<script>alert(1)</script>"
    journal = make_journal(purpose=evil, experiment=f"x{evil}", history="javascript:alert(1)",
                           events=[{"time": 1.0, "source": evil, "kind": evil, "detail": evil}],
                           checks=[{"name": evil, "valid": True, "detail": evil, "expected": evil,
                                    "observed": evil}],
                           faults=[{"kind": evil, "target": "t", "applied_at": 1.0, "healed_at": 2.0}],
                           phases=[{"name": evil, "start": 0.0, "end": 9.0}], metrics={evil: 1},
                           rto={"fault_at": 1.0, "promoted_at": 2.0, "new_primary": evil})
    ops = [{"process": 0, "type": "invoke", "f": evil, "time": 0.1},
           {"process": 0, "type": "fail", "f": evil, "time": 0.2, "error": evil}]
    doc = render_report(journal, ops)
    assert "<script" not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "javascript:" not in doc
    assert [a["href"] for tag, a in parse(doc) if tag == "a"] == ["history.jsonl", "journal.json"]


def test_empty_ops_and_minimal_journal_render() -> None:
    doc = render_report(make_journal(), [])
    assert doc.startswith("<!DOCTYPE html>") and "<svg" in doc and "no completed ops" in doc
    assert "kill redis-1 (primary)" in doc
    doc = render_report({"experiment": "tiny", "verdict": "fail"}, [])
    assert "tiny" in doc and 'class="verdict verdict-fail"' in doc and "<svg" in doc
    assert 'href="history.jsonl"' in doc


@pytest.mark.parametrize("journal", [
    {}, {"experiment": None, "verdict": None, "checks": None, "metrics": None, "faults": None, "phases": None,
         "rto": None, "events": None, "history": None},
    {"experiment": "odd", "checks": [None, "x", {}], "metrics": {"a": "text", "b": [1], "c": float("nan")},
     "faults": [{"applied_at": None}, {"applied_at": "3"}], "phases": [{"start": 5, "end": 2}, {}],
     "rto": {"fault_at": "n/a", "detected_at": 1}, "events": [{}, {"time": None}, "junk"]},
])
def test_defensive_against_missing_and_malformed_fields(journal: dict[str, Any]) -> None:
    ops: list[Any] = [{"type": "ok", "time": 1.0}, {"type": "invoke"}, {"time": "bad"}, None, 7,
                      {"process": 1, "type": "info", "f": "write", "time": 2.0, "error": "x" * 500}]
    doc = render_report(journal, ops)
    assert doc.startswith("<!DOCTYPE html>")
    assert "x" * 119 + "…" in doc and "x" * 121 not in doc  # long errors truncated to 120 chars


def test_negative_and_tiny_time_ranges() -> None:
    ops = [{"process": 0, "type": "invoke", "f": "write", "time": -0.5},
           {"process": 0, "type": "ok", "f": "write", "time": -0.49}]
    assert "<svg" in render_report({"experiment": "neg"}, ops)
    same = [{"process": 0, "type": "ok", "f": "write", "time": 0.0}]
    assert "<svg" in render_report({"experiment": "zero"}, same)


def test_events_and_errors_are_capped() -> None:
    events = [{"time": i * 0.01, "source": "s", "kind": "k", "detail": f"event-{i}"} for i in range(250)]
    ops = [{"process": i, "type": "fail", "f": "write", "time": i * 0.01, "error": f"error-{i}"} for i in range(30)]
    doc = render_report(make_journal(events=events), ops)
    assert "event-199<" in doc and "event-200<" not in doc
    assert "… 50 more" in doc
    assert "… 20 more distinct errors" in doc


def test_large_history_is_fast_and_small() -> None:
    ops = make_ops(n_writes=15_000, step=0.0008)  # 60k op events over ~12 s
    assert len(ops) >= 60_000
    start = time.perf_counter()
    doc = render_report(make_journal(), ops)
    elapsed = time.perf_counter() - start
    assert len(doc.encode()) < 400_000
    assert elapsed < 2.0  # typically ~0.1 s; generous for slow CI machines
    assert doc.count("<rect") < 2_000  # binned, never one element per op


def test_write_report(tmp_path: Path) -> None:
    target = tmp_path / "run" / "report.html"
    write_report(target, make_journal(), make_ops(n_writes=100))
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "redis-primary-kill" in text
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_dns_update_is_marked_between_the_promotion_and_the_recovery() -> None:
    """A run with DNS endpoints: the report shows when the record changed, so the wait for the client's
    next lookup (or its cache) is the phase between "DNS updated" and "client recovered"."""
    rto = {"fault_at": 2.0, "detected_at": 11.8, "promoted_at": 11.9, "dns_updated_at": 12.0, "recovered_at": 30.1,
           "new_primary": "pg-1"}
    doc = render_report(make_journal(rto=rto), make_ops())
    assert ">DNS updated</text>" in doc
    line = re.search(r'<p class="rto">(.*?)</p>', doc)
    assert line is not None
    text = re.sub(r"<[^>]+>", "", line.group(1))
    assert "new primary (pg-1) @ 11.90 s +9.90 s → DNS updated @ 12.00 s +10.00 s → client recovered @ 30.10 s" in text
    assert ">DNS updated</text>" not in render_report(make_journal(), make_ops())  # only when there is one


def test_latency_panel_labels_the_fault_window_and_tabulates_the_phases() -> None:
    metrics = {"ops_ok": 10, "attempts_per_op": 1.5, "attempts_per_op_before": 1.0, "op_p50_ms_before": 1.25,
               "op_p99_ms_before": 3.5, "op_max_ms_before": 4.0, "attempts_per_op_during": 10.78,
               "op_p50_ms_during": 2001.0, "op_p99_ms_during": 4339.4, "op_max_ms_during": 4339.4,
               "attempts_per_op_after": None, "op_p50_ms_after": None, "op_p99_ms_after": None,
               "op_max_ms_after": None}
    doc = render_report(make_journal(metrics=metrics, faults=[
        {"kind": "latency", "target": "redis-1", "role": "primary", "applied_at": 3.0, "healed_at": 8.0}]),
        make_ops())
    latency = doc[doc.index("Op latency"):doc.index("<h2>Faults")]
    assert latency.count('class="fault"') == 1 and "latency redis-1 (primary)</text>" in latency, \
        "the toxic window is shaded and named in the latency panel"
    rows = re.findall(r"<tr><td>([a-z ]+)</td>((?:<td class=\"n\">[^<]*</td>)+)</tr>", latency)
    assert [r[0] for r in rows] == ["before the fault", "during the fault"], "a phase without ops has no row"
    assert re.findall(r">([^<]*)</td>", rows[1][1]) == ["10.78", "2,001", "4,339.4", "4,339.4"]
    cards = doc[doc.index("Key metrics"):doc.index("Timeline")]
    assert "attempts per op" in cards and "op p99" not in cards, "phase figures are in the table, not cards"


def _cache_aside_run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Registers k0..k5; the final read: k0, k1 agree, k2 ahead (5 > 2), k3 only in the cache (ahead), k4 behind
    (1 < 4), k5 only in the database. Reads in three 1 s windows; a partition from 1.0 to 2.0 s."""
    final = {"db": {"k0": 7, "k1": 8, "k2": 2, "k4": 4, "k5": 6},
             "cache": {"k0": 7, "k1": 8, "k2": 5, "k3": 9, "k4": 1}}
    ops: list[dict[str, Any]] = []
    reads = [  # (invoked at, type, key, value, source)
        (0.1, "ok", "k0", 7, "cache"), (0.3, "ok", "k2", 2, "db"), (0.6, "fail", "k1", None, "db"),
        (1.2, "ok", "k2", 5, "cache"), (1.4, "ok", "k3", 9, "cache"), (1.8, "ok", "k1", 8, "db"),
        (2.5, "ok", "k2", 5, "cache"), (2.7, "info", "k5", None, "db")]
    for i, (t, kind, key, value, source) in enumerate(reads):
        ops.append({"process": i % 2, "type": "invoke", "f": "read", "value": 1, "time": t})
        ops.append({"process": i % 2, "type": kind, "f": "read", "time": t + 0.05,
                    "value": {"key": key, "value": value, "source": source, "found": None}})
    ops += [{"process": 0, "type": "invoke", "f": "write", "value": 5, "time": 0.2},
            {"process": 0, "type": "ok", "f": "write", "time": 0.25,
             "value": {"key": "k2", "value": 5, "cached": True}},
            {"process": 9, "type": "invoke", "f": "final-read", "value": None, "time": 3.5},
            {"process": 9, "type": "ok", "f": "final-read", "value": final, "time": 3.6}]
    journal = make_journal(
        experiment="cache-aside-after-failover-loss", system="postgres",
        faults=[{"kind": "partition", "target": "pg-1", "role": "primary", "applied_at": 1.0, "healed_at": 2.0}],
        phases=[], events=[], rto={"fault_at": 1.0, "cache": False},
        metrics={"lost_writes": 2, "cache_ahead": 2, "cache_behind": 1, "divergent_keys": 3, "served_lost": 1,
                 "cache_flushes": 0, "cache_aside_errors": 0, "cache_aside_reads": 6, "cache_aside_hit_ratio": 0.6667},
        settings={"cache": {"strategy": "write-through", "invalidate": "never", "keys": 6, "ttl_s": 0}})
    return journal, ops


def test_a_cache_aside_run_shows_the_cache_against_the_database_and_where_reads_came_from() -> None:
    journal, ops = _cache_aside_run()
    doc = render_report(journal, ops)
    end = doc[doc.index("Cache vs database at the end"):doc.index("Reads over time")]
    text = re.sub(r"<[^>]+>", "", end)
    assert "agree: 2" in text and "cache behind — stale: 1" in text and "only in the database (not cached): 1" in text
    assert "cache ahead — serves a value the database lost (1 of them not in the database): 2" in text
    assert "6 keys in the cache or the database" in text
    assert re.findall(r"<title>([^<]*)</title>", end) == [
        "agree: 2", "cache ahead — serves a value the database lost (1 of them not in the database): 2",
        "cache behind — stale: 1", "only in the database (not cached): 1"]
    for fact in ("strategy write-through", "invalidate never", "keys 6", "ttl 0 s", "cache flushes 0",
                 "hit ratio 66.67% of 6 ok reads", "reads after heal served a lost value 1"):
        assert fact in text, fact
    reads = doc[doc.index("Reads over time"):doc.index("<h2>Faults")]
    assert re.findall(r"<title>(\d–\d s: [^<]*)</title>", reads) == [
        "0–1 s: 1 from the cache, 1 from the database, 1 not ok, 0 served a value the database lost",
        "1–2 s: 2 from the cache, 1 from the database, 0 not ok, 2 served a value the database lost",
        "2–3 s: 1 from the cache, 0 from the database, 1 not ok, 1 served a value the database lost"]
    assert reads.count('class="fault"') == 1, "the fault window is shaded"
    assert "3 ok reads returned a value above its key's final database value" in reads


def test_the_cache_aside_panels_only_for_cache_aside_runs() -> None:
    journal, ops = _cache_aside_run()
    assert "Cache vs database" not in render_report(make_journal(), make_ops())
    memcached = render_report(make_journal(rto={"cache": True}), make_ops())
    assert "Hit ratio over time" in memcached
    assert "Cache vs database" not in memcached and "Reads over time" not in memcached
    older = render_report({**journal, "settings": {}}, ops)  # a journal from before settings carried the spec
    assert "Cache vs database at the end" in older and "Reads over time" in older and "strategy" not in older
    unread = render_report(journal, [op for op in ops if op["f"] != "final-read"])
    assert "No successful final read of database and cache" in unread and "served a value the database lost" in unread
