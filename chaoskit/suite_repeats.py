"""The suite report's parts for repeated runs (``chaoskit run --repeat N``): a row of figures per experiment
(:func:`aggregate_table`) and a chain of experiments connected by ``compare_with`` read side by side, one column
per experiment and the same figures as rows (:func:`chain_table`). Inline HTML and SVG, no scripts.

How to read them: "runs losing acked writes" is k of N runs, with the 95% Wilson interval of that rate -- the
range of loss rates that N runs cannot tell apart from what was seen; a mean of lost writes per run would mix a
rare large loss with a frequent small one, so the spread of the lost count is shown beside it (min / median / max).
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from chaoskit.suite_stats import VERDICTS, Aggregate, Spread, aggregate

_OK, _LOST, _NONE = "#2f9e50", "#d8433b", "#8a94a3"
CSS = """.chain{margin:0 0 14px}.chain h3{margin:4px 0 6px;font-size:14px}.chain th{text-transform:none;
font-size:13px;color:#1f2937}.strip{display:inline-block;width:auto;vertical-align:middle}
.runs a,.runs span{margin-right:4px;font:12px ui-monospace,Menlo,Consolas,monospace}"""


class RunRow(Protocol):
    """What these tables read of one run (:class:`chaoskit.suite_report.Row` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def out_dir(self) -> Path: ...
    @property
    def journal(self) -> Mapping[str, Any] | None: ...
    @property
    def compare_with(self) -> str | None: ...
    @property
    def run(self) -> int | None: ...


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value))


def _num(v: float) -> str:
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x not in (0.0, 1.0) else f"{100 * x:.0f}%"


def _href(r: RunRow, base: Path) -> str:
    return quote(os.path.relpath(r.out_dir / "report.html", base))


def _verdict(r: RunRow) -> str:
    return str(r.journal.get("verdict", "unknown")) if r.journal else "error"


def _lossy(a: Aggregate) -> str:
    if a.interval is None:
        return "n/a (no run states its lost writes)"
    lo, hi = a.interval
    out = f"<b>{a.lossy} of {a.counted}</b> ({_pct(a.lossy / a.counted)}; 95% CI {_pct(lo)} – {_pct(hi)})"
    return out + (f"; {a.uncounted} run(s) without the figure" if a.uncounted else "")


def _spread(s: Spread | None) -> str:
    return "n/a" if s is None else f"{_num(s.low)} / {_num(s.median)} / {_num(s.high)}"


def _verdicts(a: Aggregate) -> str:
    return ", ".join(f'<span class="badge b-{v}">{a.verdicts[v]} {v}</span>' for v in VERDICTS if a.verdicts[v])


def strip(a: Aggregate, runs: Sequence[RunRow], base: Path) -> str:
    """One mark per run, linked to its report: a bar as high as its lost writes (scaled to the most any run
    lost), a dot for none, a question mark for a run without the figure."""
    step, h = 12, 30
    top = max((x for x in a.lost_by_run if x), default=1)
    out = [f'<svg class="strip" viewBox="0 0 {max(len(runs), 2) * step} {h}" width="{max(len(runs), 2) * step}" '
           f'height="{h}" role="img" aria-label="lost writes per run of {_e(a.name)}">']
    for i, (lost, r) in enumerate(zip(a.lost_by_run, runs, strict=True)):
        x = i * step + step / 2
        if lost is None:
            mark = f'<text x="{x}" y="{h - 3}" text-anchor="middle" fill="{_NONE}">?</text>'
        elif lost == 0:
            mark = f'<circle cx="{x}" cy="{h - 5}" r="2.5" fill="{_OK}"/>'
        else:
            bar = max(3.0, (h - 4) * lost / top)
            mark = f'<rect x="{x - 4}" y="{h - 2 - bar:.1f}" width="8" height="{bar:.1f}" fill="{_LOST}"/>'
        tip = f"run {r.run or i + 1}: " + ("no lost-writes figure" if lost is None else f"{lost} lost")
        out.append(f'<a href="{_href(r, base)}"><g><title>{tip}</title>{mark}</g></a>')
    return "".join(out) + "</svg>"


def _run_links(runs: Sequence[RunRow], base: Path) -> str:
    links = [f'<a class="b-{_verdict(r)}" href="{_href(r, base)}" title="{_verdict(r)}">{r.run or 1:02d}</a>'
             if r.journal else f'<span class="b-error" title="no journal">{r.run or 1:02d}</span>' for r in runs]
    return f'<span class="runs">{"".join(links)}</span>'


def figures(a: Aggregate, runs: Sequence[RunRow], base: Path) -> list[tuple[str, str]]:
    """(label, cell) of one experiment's repeated runs, in the order both tables show them."""
    longest = a.longest_op_ms
    share = f" ({_pct(a.lost / a.acked)})" if a.acked else ""
    return [("server version", _e(a.version)), ("runs", str(a.runs)), ("verdicts", _verdicts(a)),
            ("runs losing acked writes", _lossy(a)), ("lost / acked writes", f"{a.lost} / {a.acked}{share}"),
            ("lost per run (min / median / max)", _spread(a.lost_per_run)),
            ("runs with info ops (total info ops)", f"{a.info_runs} of {a.info_counted} ({a.info_total})"),
            ("longest op, ms (median / max)", "n/a" if longest is None else
             f"{_num(longest.median)} / {_num(longest.high)}"),
            ("lost writes, each run", strip(a, runs, base)), ("each run's report", _run_links(runs, base))]


def _aggregate(name: str, runs: Sequence[RunRow]) -> Aggregate:
    return aggregate(name, [r.journal for r in runs])


def aggregate_table(groups: Mapping[str, Sequence[RunRow]], base: Path) -> str:
    """A row per experiment: its runs' figures."""
    rows = [(name, figures(_aggregate(name, runs), runs, base)) for name, runs in groups.items()]
    if not rows:
        return ""
    head = "<th>experiment</th>" + "".join(f"<th>{label}</th>" for label, _ in rows[0][1])
    body = "".join(f"<tr><td><b>{_e(name)}</b></td>" + "".join(f"<td>{cell}</td>" for _, cell in cells) + "</tr>"
                   for name, cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chain_table(names: Sequence[str], groups: Mapping[str, Sequence[RunRow]], base: Path) -> str:
    """The experiments of one chain as columns (in ``names``' order: weakest first), their figures as rows."""
    columns = [figures(_aggregate(n, groups[n]), groups[n], base) for n in names]
    compared = [_e(groups[n][0].compare_with if groups[n][0].compare_with in names else None) for n in names]
    rows = [("compared with", compared)] + [(label, [col[i][1] for col in columns])
                                            for i, (label, _) in enumerate(columns[0])]
    head = "<th></th>" + "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(f"<tr><td>{label}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
                   for label, cells in rows)
    return (f'<div class="chain"><h3>{" → ".join(_e(n) for n in names)}</h3>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
