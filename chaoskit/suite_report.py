"""The suite report, ``index.html`` beside a multi-experiment run's directories: every run in one table
(linking to its own report), and the material's weak-vs-strong pairs side by side with a small chart each.

A pair is declared in the stronger experiment's file (``compare_with: <the weaker one>``); it is shown when
both ran, the weaker first. Experiments so connected form a chain (A <- B <- C, e.g. three server versions):
when a chain has more than two members or its experiments ran more than once (``--repeat``), it is one table
with a column per experiment, weakest first, and the figures of :mod:`chaoskit.suite_stats` as rows. Repeated
runs also get a row of those figures per experiment, with a strip of each run's lost writes.
Self-contained like the run reports: inline CSS and SVG, no scripts. ``chaoskit report DIR`` re-renders it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chaoskit.report import CSS
from chaoskit.suite_repeats import CSS as REPEATS_CSS
from chaoskit.suite_repeats import aggregate_table, chain_table
from chaoskit.suite_stats import chains

_EXTRA_CSS = """.pairs{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
.pair{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}.pair h3{margin:0 0 6px;font-size:14px}
.pair p{margin:4px 0;font-size:12px;color:#4b5563}.tag{display:inline-block;width:10px;height:10px;
border-radius:2px;margin-right:5px}.badge{font-weight:700}.b-pass{color:var(--ok)}.b-fail{color:var(--fail)}
.b-unknown,.b-error{color:#8a94a3}"""
_A, _B = "#f0932b", "#1f6fb2"  # the first and the second experiment of a pair
# (label, how to read it from a journal's metrics); lost writes as a fraction of the acknowledged ones
_PAIR_METRICS: tuple[tuple[str, str], ...] = (
    ("lost writes (% of acked)", "lost_pct"), ("stale reads", "stale_reads"),
    ("unavailable (s)", "unavailable_s"), ("RTO (s)", "rto_s"), ("longest op (ms)", "max_op_ms"),
    ("attempts per op in the fault", "attempts_per_op_during"), ("duplicates", "duplicates"))
_CACHE_PAIR_METRICS: tuple[tuple[str, str], ...] = (  # a cache's pair (both journals' rto.cache): no lost/stale
    ("errors raised", "cache_errors"), ("lowest hit ratio (1 s)", "min_hit_ratio"),
    ("misses on cached keys", "unexpected_misses"), ("rehash (s)", "rehash_s"))


@dataclass(frozen=True)
class Row:
    """What the suite report needs of one experiment: its name, its journal (None: it did not finish),
    the directory its report is in, and the experiment it is compared with."""

    name: str
    out_dir: Path
    journal: Mapping[str, Any] | None
    compare_with: str | None = None
    error: str | None = None
    wall_s: float | None = None
    run: int | None = None  # 1, 2, ... of ``--repeat N`` (N > 1); None: the experiment's only run


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value))


def _metric(journal: Mapping[str, Any] | None, key: str) -> float | None:
    m = (journal or {}).get("metrics") or {}
    if key == "lost_pct":
        acked, lost = m.get("acked_writes"), m.get("lost_writes")
        return None if not isinstance(acked, int | float) or not isinstance(lost, int | float) or not acked \
            else 100.0 * lost / acked
    value = m.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:.1f}%" if pct else (f"{v:.0f}" if v == int(v) else f"{v:.2f}")


def _verdict(row: Row) -> str:
    return str(row.journal.get("verdict", "unknown")) if row.journal else "error"


def _link(row: Row, base: Path) -> str:
    rel = os.path.relpath(row.out_dir / "report.html", base)
    label = row.name if row.run is None else f"{row.name} · run {row.run:02d}"
    return f'<a href="{quote(rel)}">{_e(label)}</a>' if row.journal else _e(label)


def _table(rows: Sequence[Row], base: Path) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("experiment", "system", "verdict", "lost / acked", "stale reads",
                                               "RTO (s)", "unavailable (s)", "backend", "wall (s)"))
    body = []
    for r in rows:
        j, m = r.journal or {}, (r.journal or {}).get("metrics") or {}
        v = _verdict(r)
        lost = f"{_e(m.get('lost_writes'))} / {_e(m.get('acked_writes'))}" if r.journal else _e(r.error)
        cells = [_link(r, base), _e(j.get("system")), f'<span class="badge b-{v}">{v.upper()}</span>', lost,
                 _e(m.get("stale_reads")), _e(m.get("rto_s")), _e(m.get("unavailable_s")), _e(j.get("backend")),
                 _e(None if r.wall_s is None else round(r.wall_s))]
        body.append("<tr>" + "".join(f'<td class="n">{c}</td>' if i in (3, 4, 5, 6, 8) else f"<td>{c}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pairs(rows: Sequence[Row]) -> list[tuple[Row, Row]]:
    """Declared pairs whose two experiments are both here, each once, as (weaker, stronger): the stronger
    experiment declares ``compare_with: <the weaker one>``."""
    by_name = {r.name: r for r in rows}
    seen: set[frozenset[str]] = set()
    out = []
    for r in rows:
        other = by_name.get(r.compare_with or "")
        if other is None or other.name == r.name or (key := frozenset((r.name, other.name))) in seen:
            continue
        seen.add(key)
        out.append((other, r))
    return out


def _chart(a: Row, b: Row) -> str:
    """Grouped horizontal bars, one group per metric, each scaled to the larger of the two values."""
    w, label_w, bar_h, gap = 520, 170, 11, 10
    cache = all(((r.journal or {}).get("rto") or {}).get("cache") for r in (a, b))
    metrics = _CACHE_PAIR_METRICS if cache else _PAIR_METRICS
    h = len(metrics) * (2 * bar_h + gap) + 4
    out = [f'<svg viewBox="0 0 {w} {h}" role="img" aria-label="{_e(a.name)} vs {_e(b.name)}">']
    for i, (label, key) in enumerate(metrics):
        y = 2 + i * (2 * bar_h + gap)
        va, vb = _metric(a.journal, key), _metric(b.journal, key)
        top = max(va or 0.0, vb or 0.0) or 1.0
        out.append(f'<text x="0" y="{y + bar_h + 4}">{_e(label)}</text>')
        for j, (v, colour) in enumerate(((va, _A), (vb, _B))):
            yy, span = y + j * bar_h, w - label_w - 70
            length = 0.0 if v is None else max(1.5, span * v / top) if v else 0.0
            out.append(f'<rect x="{label_w}" y="{yy}" width="{length:.1f}" height="{bar_h - 2}" fill="{colour}"/>')
            out.append(f'<text x="{label_w + length + 4:.1f}" y="{yy + bar_h - 3}">'
                       f'{_fmt(v, key == "lost_pct")}</text>')
    out.append("</svg>")
    return "".join(out)


def _pair(a: Row, b: Row, base: Path) -> str:
    def line(r: Row, colour: str) -> str:
        v = _verdict(r)
        hyp = (r.journal or {}).get("purpose") or ""
        return (f'<p><span class="tag" style="background:{colour}"></span>{_link(r, base)} '
                f'<span class="badge b-{v}">{v.upper()}</span> — {_e(hyp)}</p>')

    return (f'<div class="pair"><h3>{_e(a.name)} vs {_e(b.name)}</h3>{line(a, _A)}{line(b, _B)}'
            f"{_chart(a, b)}</div>")


def _groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows by experiment, in the suite's order; each experiment's runs in run order."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r.name, []).append(r)
    return {name: sorted(runs, key=lambda r: r.run or 0) for name, runs in out.items()}


def _compared(groups: Mapping[str, list[Row]], base: Path) -> str:
    """Pairs as before when every experiment of a chain ran once; one table per chain when any ran repeatedly."""
    single = [r for runs in groups.values() if len(runs) == 1 and runs[0].run is None for r in runs]
    views = [_pair(a, b, base) for a, b in pairs(single)]
    repeated = [names for names in chains([(n, runs[0].compare_with) for n, runs in groups.items()])
                if any(len(groups[n]) > 1 or groups[n][0].run is not None for n in names)]
    tables = "".join(chain_table(names, groups, base) for names in repeated)
    if not views and not tables:
        return '<p class="muted">No declared pair (<code>compare_with:</code>) ran in this suite.</p>'
    return tables + ('<div class="pairs">' + "".join(views) + "</div>" if views else "")


def render_suite(rows: Sequence[Row], base: Path, title: str = "chaoskit suite") -> str:
    """The whole ``index.html`` (links relative to ``base``, the directory it is written to)."""
    verdicts = [_verdict(r) for r in rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("pass", "fail", "unknown", "error") if v in verdicts)
    overall = "pass" if verdicts and all(v == "pass" for v in verdicts) else \
        "fail" if "fail" in verdicts else "unknown"
    groups = _groups(rows)
    repeated = any(r.run is not None for r in rows)
    runs = f'<span><b>runs</b> {len(rows)}</span>' if repeated else ""
    aggregate_html = f"<section><h2>Repeated runs, per experiment</h2>{aggregate_table(groups, base)}</section>" \
        if repeated else ""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}\n{_EXTRA_CSS}\n{REPEATS_CSS}</style></head><body><main>"
            f'<header><div><h1>{_e(title)}</h1><div class="meta"><span><b>experiments</b> {len(groups)}</span>'
            f'{runs}<span>{_e(counts)}</span></div></div><div class="verdict verdict-{overall}">{overall.upper()}'
            f"</div></header><section><h2>Compared side by side (compare_with: weaker or older first)</h2>"
            f"{_compared(groups, base)}</section>"
            f"{aggregate_html}<section><h2>Every {'run' if repeated else 'experiment'}</h2>{_table(rows, base)}"
            "</section><footer>generated by chaoskit</footer></main></body></html>\n")


def write_suite(path: Path, rows: Sequence[Row], title: str = "chaoskit suite") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_suite(rows, path.parent, title), encoding="utf-8")
    tmp.replace(path)
