"""Tests for chaoskit.server_logs: log timestamps on the run clock, the window kept around each heal, and the
patterns that pick the other nodes' lines (pure logic: the backend is a stub that hands out lines)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chaoskit.backends.base import LogLine, Node, NodeSpec
from chaoskit.backends.docker import stamped_line
from chaoskit.server_logs import (
    LogSpec,
    Window,
    entries,
    gather,
    read_jsonl,
    select,
    wall_time,
    without_stamp,
    write_jsonl,
)
from chaoskit.systems.opensearch.node import LOG_EVIDENCE

T0 = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp()  # run clock zero, as wall time
SPEC = LogSpec(patterns=("PrimaryShardClosedException", "primary term", "stale"), before_s=5.0, after_s=20.0)


def line(run_s: float, text: str) -> str:
    """An OpenSearch console line (chaoskit's local pattern: with the zone) at ``run_s`` on the run clock."""
    stamp = dt.datetime.fromtimestamp(T0 + run_s, dt.timezone(dt.timedelta(hours=2)))
    return f"[{stamp.strftime('%Y-%m-%dT%H:%M:%S')},{stamp.microsecond // 1000:03d}+02:00][INFO ][o.o.c.C] {text}"


@pytest.mark.parametrize(("text", "want"), [
    ("[2026-05-01T14:00:01,250+02:00][INFO ][o.o.n.Node] started", T0 + 1.25),
    ("[2026-05-01T12:00:01,250+0200][INFO ] east of Greenwich", T0 + 1.25 - 7200),
    ("2026-05-01 12:00:02.5 UTC [123] LOG:  database system is ready", T0 + 2.5),
    ('{"t":{"$date":"2026-05-01T12:00:03.000Z"},"s":"I"}', T0 + 3.0),
    ("INFO  [main] 2026-05-01T11:59:59.123456789Z nanoseconds", T0 - 0.876543211),
])
def test_wall_time_reads_the_first_stamp_with_its_zone(text: str, want: float) -> None:
    assert wall_time(text) == pytest.approx(want, abs=1e-6)


def test_wall_time_without_a_zone_is_this_hosts_local_time() -> None:
    local = dt.datetime(2026, 5, 1, 12, 0, 0)  # naive: what a JVM without a zone in its pattern writes
    assert wall_time("[2026-05-01T12:00:00,000][WARN ] x") == pytest.approx(local.timestamp())


def test_no_stamp_and_a_stamp_deep_in_the_line_are_none() -> None:
    assert wall_time("\tat org.opensearch.Foo.bar(Foo.java:12)") is None
    assert wall_time("x" * 120 + " 2026-05-01T12:00:00Z") is None  # a date inside a message starts no entry


def test_without_stamp_drops_the_leading_stamp_only() -> None:
    assert without_stamp(line(1, "[opensearch-2] removed {x}")) == "[INFO ][o.o.c.C] [opensearch-2] removed {x}"
    assert without_stamp("no stamp [2026-05-01T12:00:00Z]") == "no stamp [2026-05-01T12:00:00Z]"


def test_entries_join_an_exception_and_leave_its_frames_out() -> None:
    lines = [LogLine("OpenSearch starting (no stamp yet)"), LogLine(line(1, "failed to perform indices:data/write")),
             LogLine("org.opensearch.transport.RemoteTransportException: [opensearch-1]"),
             LogLine("\tat org.opensearch.Foo.bar(Foo.java:12)"), LogLine("\t... 12 more"),
             LogLine("Caused by: PrimaryShardClosedException: primary closed"), LogLine(line(2, "next"))]
    got = entries(lines)
    assert [round(t - T0, 3) for t, _ in got] == [1.0, 2.0]
    assert got[0][1].splitlines()[1:] == ["org.opensearch.transport.RemoteTransportException: [opensearch-1]",
                                          "Caused by: PrimaryShardClosedException: primary closed"]


def test_entries_prefer_the_platforms_stamp_and_cap_an_entrys_lines() -> None:
    docker = [LogLine("[2026-05-01T12:00:00,000][INFO ] naive container time", at=T0 + 7.5),
              *(LogLine(f"Caused by: E{i}", at=T0 + 7.6) for i in range(20))]
    (t, text), = entries(docker)
    assert t == T0 + 7.5 and len(text.splitlines()) == 9


def test_stamped_line_reads_dockers_timestamp() -> None:
    got = stamped_line("2026-05-01T12:00:04.123456789Z [2026-05-01T12:00:04,120][INFO ] x")
    assert got.at == pytest.approx(T0 + 4.123456789) and got.text == "[2026-05-01T12:00:04,120][INFO ] x"
    assert stamped_line("not a stamp").at is None


def test_select_keeps_the_faulted_nodes_window_and_the_others_matches() -> None:
    window = Window.around("partition", "opensearch-2", 30.0, SPEC)
    assert (window.start, window.end, window.nodes) == (25.0, 50.0, ("opensearch-2",))
    logs = {
        "opensearch-2": [LogLine(line(24.9, "before the window")), LogLine(line(29, "cluster-manager not discovered")),
                         LogLine(line(31, "cluster-manager node changed {previous [], current [opensearch-1]}")),
                         LogLine(line(50.1, "after the window"))],
        "opensearch-1": [LogLine(line(30.5, "added {opensearch-2}")),
                         LogLine(line(31.2, "shard [chaoskit][1] primary term [1] is too old: STALE"))],
    }
    kept = select(logs, [window], SPEC, T0)
    assert [(e.node, round(e.time, 3), e.faulted) for e in kept] == [
        ("opensearch-2", 29.0, True), ("opensearch-2", 31.0, True), ("opensearch-1", 31.2, False)]
    assert kept[2].matches == ("primary term", "stale") and kept[0].matches == ()


def test_a_faulted_nodes_trace_lines_are_kept_only_when_they_match() -> None:
    window = Window.around("partition", "opensearch-1", 30.0, LOG_EVIDENCE)
    trace = line(30.2, "[opensearch-1] [chaoskit][0] sending op [163] to replica").replace("[INFO ]", "[TRACE]")
    failed = line(30.3, "[opensearch-1] [chaoskit][0] failure while performing [indices:data/write/bulk[s]] on "
                  "replica [chaoskit][0], node[x], [R]").replace("[INFO ]", "[TRACE]")
    logs = {"opensearch-1": [LogLine(trace), LogLine(failed),
                             LogLine("org.opensearch.index.shard.PrimaryShardClosedException: CurrentState[CLOSED] "
                                     "Primary closed."),
                             LogLine(line(31.0, "[opensearch-1] cluster-manager node changed"))]}
    kept = select(logs, [window], LOG_EVIDENCE, T0)
    assert [round(e.time, 1) for e in kept] == [30.3, 31.0]
    assert "PrimaryShardClosedException" in kept[0].matches and "failure while performing" in kept[0].matches


class StubBackend:
    """Hands out lines as a backend's ``log_lines`` would (or raises); records the ``since`` asked for."""

    def __init__(self, logs: dict[str, list[LogLine]], fail: bool = False) -> None:
        self.logs, self.fail = logs, fail
        self.since: float | None = None

    def log_lines(self, node: Node, since: float | None = None) -> list[LogLine]:
        if self.fail:
            raise OSError("docker daemon went away")
        self.since = since
        return self.logs[node.name]


def nodes(*names: str) -> dict[str, Node]:
    return {n: Node(NodeSpec(n, ("true",), Path("/nonexistent"), 9200), "10.0.0.1") for n in names}


def test_gather_keeps_each_heals_window_and_says_how(tmp_path: Path) -> None:
    backend = StubBackend({"a": [LogLine(line(10, "stale primary")), LogLine(line(40, "late"))],
                           "b": [LogLine(line(11, "primary term [2]")), LogLine(line(11, "ordinary"))]})
    evidence = gather(backend, nodes("a", "b"), SPEC,  # type: ignore[arg-type]
                      [("partition", "a", 12.0), ("kill", "b", None)], T0)
    assert backend.since == T0 + 12.0 - 5.0 - 1.0, "docker is asked only for what can fall in a window"
    assert [(e.node, e.text.split("] ")[-1]) for e in evidence.entries] == [("a", "stale primary"),
                                                                             ("b", "primary term [2]")]
    summary = evidence.summary()
    assert summary["lines_read"] == 4 and summary["kept"] == 2 and summary["patterns"] == list(SPEC.patterns)
    assert summary["clock_t0"] == "2026-05-01T12:00:00.000000+00:00" and len(summary["windows"]) == 1
    write_jsonl(tmp_path / summary["file"], evidence.entries)
    back = read_jsonl(tmp_path, {"server_logs": summary})
    assert back == [json.loads(json.dumps(e.to_dict())) for e in evidence.entries]


def test_gather_never_raises_and_nothing_without_a_heal() -> None:
    evidence = gather(StubBackend({}, fail=True), nodes("a"), SPEC, [("partition", "a", 3.0)], T0)  # type: ignore[arg-type]
    assert evidence.entries == [] and "docker daemon went away" in (evidence.error or "")
    assert gather(StubBackend({}, fail=True), nodes("a"), SPEC, [("kill", "a", None)], T0).error is None  # type: ignore[arg-type]


def test_read_jsonl_tolerates_runs_without_evidence(tmp_path: Path) -> None:
    assert read_jsonl(tmp_path, {}) == []
    (tmp_path / "evidence.jsonl").write_text('{"node": "a", "time": 1.0}\nnot json\n[1]\n')
    assert read_jsonl(tmp_path, {"server_logs": {"file": "../../etc/evidence.jsonl"}}) == [{"node": "a", "time": 1.0}]


def test_opensearch_patterns_pick_a_demoted_primarys_lines() -> None:
    demoted = ("[2026-05-01T12:00:00,000][WARN ][o.o.a.b.TransportShardBulkAction] [opensearch-2] [chaoskit][1] "
               "failed to perform indices:data/write/bulk[s] on replica\n"
               "Caused by: org.opensearch.index.shard.PrimaryShardClosedException: primary closed")
    assert LOG_EVIDENCE.matches(demoted) == ("PrimaryShardClosedException", "primary closed", "failed to perform")
    assert LOG_EVIDENCE.matches("[INFO ][o.o.c.s.ClusterApplierService] added {opensearch-2}") == ()

