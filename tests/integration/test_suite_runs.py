"""Experiments side by side (``chaoskit run -j N``): each in its own topology, the suite report with the pair,
JUnit for CI, and an interrupted suite that heals and tears down every run -- through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.util import CHAOSKIT, cli_env, created_runs

pytestmark = pytest.mark.integration
PAIR = ("redis-primary-partition", "redis-primary-partition-guarded")


def test_a_pair_side_by_side_passes_and_the_suite_report_compares_it(tmp_path: Path, state_dir: Path,
                                                                      no_leftovers: None) -> None:
    out = tmp_path / "suite"
    res = subprocess.run([*CHAOSKIT, "run", *PAIR, "-j", "2", "--backend", "local", "--out", str(out),
                          "--junit-xml", str(tmp_path / "junit.xml")],
                         env=cli_env(state_dir), capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    journals = [json.loads((out / name / "journal.json").read_text()) for name in PAIR]
    assert [j["verdict"] for j in journals] == ["pass", "pass"]
    weak, strong = (j["metrics"] for j in journals)
    assert weak["lost_writes"] > strong["lost_writes"]  # the lesson of the pair, as the suite report draws it
    spans = [(dt.datetime.fromisoformat(j["started_at"]), dt.datetime.fromisoformat(j["ended_at"]))
             for j in journals]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], "the two runs did not overlap"
    assert len(created_runs(state_dir)) == 2
    lines = res.stdout.splitlines()
    assert any(line.startswith(f"{PAIR[0]} ") and "| " in line for line in lines)  # prefixed progress
    summary = lines[lines.index(next(x for x in lines if x.startswith("experiment "))):]
    assert [x.split()[0] for x in summary[2:4]] == list(PAIR)  # the summary in the experiments' order
    page = (out / "index.html").read_text()
    assert f"{PAIR[0]} vs {PAIR[1]}" in page and f'href="{PAIR[1]}/report.html"' in page
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    assert sorted(c.get("name") for c in cases) == sorted(PAIR)


def test_interrupting_a_suite_heals_and_tears_down_every_run(tmp_path: Path, state_dir: Path,
                                                             no_leftovers: None) -> None:
    proc = subprocess.Popen([*CHAOSKIT, "run", *PAIR, "-j", "2", "--backend", "local", "--out",
                             str(tmp_path / "suite")], env=cli_env(state_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    faults, deadline = set(), time.monotonic() + 120
    for line in proc.stdout:  # wait until both runs have their partition in force
        if "fault: partition" in line:
            faults.add(line.split()[0])
        if faults == set(PAIR) or time.monotonic() > deadline:
            break
    assert faults == set(PAIR)
    proc.send_signal(signal.SIGTERM)  # to the suite's process only, as a CI timeout would
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, rest[-3000:]
    assert rest.count("interrupted by SIGINT") == 2  # each child was told, and healed and tore down


def test_a_repeated_run_writes_a_directory_per_run_and_the_page_sums_them(tmp_path: Path, state_dir: Path,
                                                                          no_leftovers: None) -> None:
    """``--repeat 2`` of one quick experiment: two runs in a row, each in its own directory, one JUnit case and
    one progress line per run, and the suite page's aggregate equal to the sum of the two journals. With
    ``--set replicas=1`` over the file's topology: each run had one primary and one replica."""
    name, out = "redis-client-pause", tmp_path / "suite"
    res = subprocess.run([*CHAOSKIT, "run", name, "--repeat", "2", "--backend", "local", "--out", str(out),
                          "--junit-xml", str(tmp_path / "junit.xml"), "--set", "replicas=1"],
                         env=cli_env(state_dir), capture_output=True, text=True, timeout=240)
    runs = [out / name / f"run-0{i}" for i in (1, 2)]
    assert all((d / "journal.json").is_file() and (d / "report.html").is_file() for d in runs), \
        res.stdout[-3000:] + res.stderr[-2000:]
    assert not (out / name / "journal.json").exists()
    journals = [json.loads((d / "journal.json").read_text()) for d in runs]
    for j in journals:  # --set: the journal's settings and the topology that ran
        assert j["settings"]["topology"]["replicas"] == 1 and len(j["roles_after"]) == 2, j["roles_after"]
    assert res.returncode == (0 if all(j["verdict"] == "pass" for j in journals) else 1), res.stderr[-2000:]
    assert len(created_runs(state_dir)) == 2  # two topologies, one after the other
    spans = [(dt.datetime.fromisoformat(j["started_at"]), dt.datetime.fromisoformat(j["ended_at"]))
             for j in journals]
    assert spans[0][1] <= spans[1][0], "the two runs of one experiment overlapped"
    for i, j in enumerate(journals, 1):
        line = next(x for x in res.stdout.splitlines() if f"run {i} of 2: " in x)
        assert j["verdict"].upper() in line and f"of {j['metrics']['acked_writes']} acked" in line
    lost, acked = (sum(j["metrics"][k] for j in journals) for k in ("lost_writes", "acked_writes"))
    assert acked > 0
    lossy = sum(j["metrics"]["lost_writes"] > 0 for j in journals)
    for page in (out / "index.html").read_text(), _rerendered(out):
        aggregate = page[page.index("Repeated runs"):page.index("</table>", page.index("Repeated runs"))]
        assert f"<td>{lost} / {acked} (" in aggregate and f"<b>{lossy} of 2</b>" in aggregate
        assert 'href="redis-client-pause/run-01/report.html"' in page and "run-02/report.html" in page
    cases = [c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")]
    assert cases == [f"{name} run-01", f"{name} run-02"]


def _rerendered(out: Path) -> str:
    """The page as ``chaoskit report DIR`` writes it again from the nested run directories."""
    (out / "index.html").unlink()
    res = subprocess.run([*CHAOSKIT, "report", str(out)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "(2 runs)" in res.stdout, res.stderr
    return (out / "index.html").read_text()
