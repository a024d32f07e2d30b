"""Tests for chaoskit.report_evidence: a lost acknowledged write shown with its attempts on the wire beside the
stale node's log lines nearest in time, and the stale node's window around the heal (a small synthetic run)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chaoskit.cli import main
from chaoskit.report import render_report
from chaoskit.report_evidence import LOST_TITLE, WINDOW_TITLE, lost_writes, names_write, parse_attempt

HEAL = 18.0
WIRE = ("opensearch-3 timeout @0+3001ms", "opensearch-1 201 created seq=163 term=1 shards=2/1/0 @3050+12ms")


def ops() -> list[dict[str, Any]]:
    """Write 7 acknowledged by the stale primary just after the heal and missing from the final read; write 8
    acknowledged and kept; write 9 indeterminate and missing (not lost: it may never have happened)."""
    return [
        {"process": 0, "type": "invoke", "f": "write", "value": 7, "time": 15.0},
        {"process": 1, "type": "invoke", "f": "write", "value": 8, "time": 15.5},
        {"process": 1, "type": "ok", "f": "write", "value": 8, "time": 15.6, "node": "opensearch-2",
         "wire": ["opensearch-2 201 created seq=170 term=2 shards=2/2/0 @0+100ms"]},
        {"process": 2, "type": "invoke", "f": "write", "value": 9, "time": 16.0},
        {"process": 2, "type": "info", "f": "write", "value": 9, "time": 19.0, "error": "timeout"},
        {"process": 0, "type": "ok", "f": "write", "value": 7, "time": 18.062, "node": "opensearch-1",
         "attempts": 2, "wire": list(WIRE)},
        {"process": 9, "type": "invoke", "f": "final-read", "value": None, "time": 40.0},
        {"process": 9, "type": "ok", "f": "final-read", "value": [8], "time": 40.5},
    ]


def journal(**extra: Any) -> dict[str, Any]:
    return {"experiment": "opensearch-partition-primary-holder", "system": "opensearch", "verdict": "pass",
            "faults": [{"kind": "partition", "target": "opensearch-1", "role": "primary-holder", "applied_at": 3.0,
                        "healed_at": HEAL}],
            "metrics": {"acked_writes": 2, "lost_writes": 1}, **extra}


SERVER_LOGS = {"file": "evidence.jsonl", "clock_t0": "2026-05-01T12:00:00.000000+00:00", "lines_read": 900,
               "kept": 4, "took_s": 0.05, "patterns": ["PrimaryShardClosedException", "primary term", "stale"],
               "windows": [{"fault": "partition", "nodes": ["opensearch-1"], "healed_at": HEAL, "start": 13.0,
                            "end": 38.0}]}
EVIDENCE = [
    {"node": "opensearch-1", "time": 14.0, "text": "[2026-05-01T12:00:14,000+00:00][WARN ][o.o.c.c.C] "
     "cluster-manager not discovered yet", "matches": [], "faulted": True, "window": 0},
    {"node": "opensearch-1", "time": 18.07, "text": "[2026-05-01T12:00:18,070+00:00][WARN ][o.o.a.b.T] "
     "failed on replica\nCaused by: PrimaryShardClosedException: <primary> closed",
     "matches": ["PrimaryShardClosedException"], "faulted": True, "window": 0},
    {"node": "opensearch-1", "time": 18.3, "text": "[2026-05-01T12:00:18,300+00:00][INFO ][o.o.c.s.C] "
     "cluster-manager node changed", "matches": [], "faulted": True, "window": 0},
    {"node": "opensearch-2", "time": 19.5, "text": "[2026-05-01T12:00:19,500+00:00][INFO ][o.o.i.s.I] "
     "primary term [2] shard stale", "matches": ["primary term", "stale"], "faulted": False, "window": 0},
]


def section(doc: str, title: str) -> str:
    m = re.search(rf"<section><h2>{re.escape(title)}</h2>(.*?)</section>", doc, re.S)
    assert m is not None, f"no section {title!r}"
    return m.group(1)


def test_parse_attempt_places_it_on_the_run_clock() -> None:
    a = parse_attempt(WIRE[1], invoked=15.0)
    assert (a.node, a.status, a.term, a.seq, a.shards, a.sent, a.took_ms) == (
        "opensearch-1", "201 created", "1", "163", "2/1/0", 18.05, 12.0)
    confirm = parse_attempt("opensearch-2 index 201 created seq=4 term=2 shards=2/2/0 @10+3ms", 1.0)
    assert confirm.status == "index 201 created" and confirm.sent == 1.01
    assert parse_attempt("opensearch-3 refused", 1.0).sent is None


def test_lost_writes_are_acknowledged_writes_missing_from_the_final_read() -> None:
    (lost,) = lost_writes(ops())
    assert (lost.value, lost.acked, lost.node, lost.ack_time) == (7, 18.062, "opensearch-1", 18.062)
    assert [a.node for a in lost.attempts] == ["opensearch-3", "opensearch-1"]
    assert lost_writes([op for op in ops() if op["f"] != "final-read"]) == [], "no final read: nothing to call lost"


def test_a_lost_write_is_shown_with_its_wire_and_the_nearest_log_lines() -> None:
    doc = render_report(journal(server_logs=SERVER_LOGS), ops(), EVIDENCE)
    lost = section(doc, LOST_TITLE)
    assert "write <code>7</code>" in lost and "<code>8</code>" not in lost and "<code>9</code>" not in lost
    ack = re.search(r'<tr class="ack">(.*?)</tr>', lost, re.S)
    assert ack is not None and all(f"<td>{c}</td>" in ack.group(1) for c in (
        "opensearch-1", "<code>201 created</code>", "1", "163", "2/1/0", "18.050", "12"))
    assert "<td><code>timeout</code></td>" in lost, "every attempt, not only the acknowledging one"
    assert "+0.01 s" in lost and "<mark>PrimaryShardClosedException</mark>: &lt;primary&gt; closed" in lost
    assert "cluster-manager node changed" in lost and "<mark>primary term</mark>" in lost  # within ±2 s
    assert "cluster-manager not discovered" not in lost, "4 s before the acknowledgement: not beside it"
    assert "2026-05-01T12:00:18" not in lost, "times on the run clock, not the servers' wall clock"
    assert lost.count("<rect") == 2 and "heal</text>" in lost, "the strip: both attempts and the heal"


def test_the_window_around_the_heal_shows_the_stale_nodes_lines_and_the_others_matches() -> None:
    window = section(render_report(journal(server_logs=SERVER_LOGS), ops(), EVIDENCE), WINDOW_TITLE)
    own, others = window.split("the other nodes' lines matching the patterns")
    assert "partition on opensearch-1, healed at 18.000 s" in own and "(3 entries, 1 matching)" in own
    assert own.count("<tr class=") == 3 and "-4.00 s" in own and "cluster-manager not discovered" in own
    assert others.count("<tr class=") == 1 and "+1.50 s" in others and "opensearch-2" in others
    assert "<span>stale <b>1</b></span>" in window, "how often each pattern matched"


def test_a_run_without_server_logs_has_no_evidence_sections() -> None:
    doc = render_report(journal(), ops())
    assert LOST_TITLE not in doc and WINDOW_TITLE not in doc
    failed = render_report(journal(server_logs={**SERVER_LOGS, "error": "OSError: gone"}), ops(), [])
    assert "Reading the logs failed: OSError: gone" in failed and "No server log line kept" in failed


def test_chaoskit_report_re_renders_the_evidence_from_the_run_dir(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text(json.dumps({**journal(server_logs=SERVER_LOGS), "history": "history.jsonl"}))
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(op) + "\n" for op in ops()))
    (tmp_path / "evidence.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVIDENCE))
    assert main(["report", str(tmp_path)]) == 0
    doc = (tmp_path / "report.html").read_text()
    assert "<mark>PrimaryShardClosedException</mark>" in section(doc, LOST_TITLE)
    assert "<script" not in doc and "http://" not in doc and "https://" not in doc
    (tmp_path / "evidence.jsonl").unlink()  # a run dir copied without it still renders
    assert main(["report", str(tmp_path)]) == 0
    assert "No server log line kept" in (tmp_path / "report.html").read_text()


FIXTURE = Path(__file__).parent / "fixtures" / "opensearch-partition-loss"


def test_a_real_loss_shows_the_stale_primarys_acknowledgement_beside_its_rejoining() -> None:
    """A run of opensearch-partition-primary-holder with 12 writers and a 6 s client timeout (local backend,
    OpenSearch 2.19.6) that lost 4 of 592 acknowledged writes; history.jsonl trimmed to the 4 lost writes, the
    8 kept ones acknowledged nearest to them, and the final read of those 12 (evidence as written; the journal's
    metrics recounted from the trimmed history, so a second reading of a copy of it agrees).
    Each was acknowledged by the isolated node (201, term 1, 1 of 2 copies) 0.34-0.40 s after its log says
    it rejoined (``cluster-manager node changed``, 1.0 s after the heal)."""
    journal = json.loads((FIXTURE / "journal.json").read_text())
    ops = [json.loads(line) for line in (FIXTURE / "history.jsonl").read_text().splitlines()]
    evidence = [json.loads(line) for line in (FIXTURE / "evidence.jsonl").read_text().splitlines()]
    stale = journal["faults"][0]["target"]
    lost = lost_writes(ops)
    assert [lw.value for lw in lost] == [232, 225, 238, 229]
    assert all((lw.attempts[-1].node, lw.attempts[-1].status, lw.attempts[-1].term, lw.attempts[-1].shards)
               == (stale, "201 created", "1", "2/1/0") for lw in lost)
    rejoined = next(e["time"] for e in evidence if "cluster-manager node changed" in e["text"])
    assert all(0.3 < lw.ack_time - rejoined < 0.45 for lw in lost)
    doc = render_report(journal, ops, evidence)
    cards = section(doc, LOST_TITLE).split('<div class="lw">')[1:]
    assert len(cards) == 4 and all("cluster-manager node changed" in c and '<tr class="ack">' in c for c in cards)
    assert "(6 entries, 0 matching)" in section(doc, WINDOW_TITLE)


def test_the_line_naming_the_lost_write_is_shown_whenever_it_is_and_stands_out() -> None:
    """OpenSearch's replica-failure trace names the request's document (``source[{"v":7}]``): shown beside
    write 7 even 5 s from its acknowledgement, marked as its own; a line naming write 70 is not."""
    own = {"node": "opensearch-1", "time": 13.1, "matches": ["failure while performing"], "faulted": True,
           "window": 0, "text": "[2026-05-01T12:00:13,100+00:00][TRACE][o.o.a.b.T] failure while performing "
           '[indices:data/write/bulk[s]] on replica, request [index {[chaoskit][7], source[{"v":7}]}]\n'
           "PrimaryShardClosedException[CurrentState[CLOSED] Primary closed]"}
    other = {**own, "time": 13.2, "text": own["text"].replace('{"v":7}', '{"v":70}')}
    assert names_write(str(own["text"]), 7) and not names_write(str(other["text"]), 7)
    lost = section(render_report(journal(server_logs=SERVER_LOGS), ops(), [*EVIDENCE, own, other]), LOST_TITLE)
    mine = re.findall(r'<tr class="mine">(.*?)</tr>', lost, re.S)
    assert len(mine) == 1 and "13.100" in mine[0] and "-4.96 s" in mine[0], mine
    assert '{"v":70}' not in lost.replace("&quot;", '"'), "a line naming another write, 5 s away, is left out"
