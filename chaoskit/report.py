"""Single-file HTML report for one experiment run: inline CSS and SVG, no scripts, no external resources.

Ops are aggregated into at most ~400 time bins, so 50k+ op histories stay small and fast to render.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from chaoskit.report_cache import cache_sections
from chaoskit.report_evidence import EVIDENCE_CSS, evidence_sections
from chaoskit.report_plot import (
    _COLOR,
    _ERR_TOP,
    _EVENT_CAP,
    _ML,
    _MR,
    _PHASE_FILL,
    _RTO_MARKS,
    _W,
    _bin,
    _collect,
    _dicts,
    _e,
    _faults_svg,
    _fmt,
    _Frame,
    _frame,
    _ft,
    _kind,
    _latency_svg,
    _mapping,
    _num,
    _Ops,
    _state,
    _table,
    _timeline_svg,
    _x_axis,
)

__all__ = ["CSS", "render_report", "write_report"]

_METRIC_ORDER = ("ops_ok", "ops_fail", "ops_info", "acked_writes", "lost_writes", "stale_reads",
                 "unavailable_s", "rto_s", "longest_outage_s", "max_op_gap_ms", "max_op_ms")
_BAD, _WARN = frozenset({"lost_writes", "stale_reads", "duplicates"}), frozenset({"ops_fail", "ops_info"})
_PHASES = (("before", "before the fault"), ("during", "during the fault"), ("after", "after heal"))
_BY_PHASE = ("attempts_per_op", "op_p50_ms", "op_p99_ms", "op_max_ms")  # shown in the phase table, not as cards

CSS = """:root{--ok:#2f9e50;--fail:#d8433b;--info:#f0932b;--muted:#6b7280}
body{margin:0;background:#f3f5f8;color:#1f2937;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:1260px;margin:0 auto;padding:20px}h1{margin:0 0 4px;font-size:26px}h2{font-size:16px}
header,section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 20px}
header{display:flex;gap:24px;justify-content:space-between;padding:20px 24px}section{margin-top:14px}
.meta span{margin-right:16px;color:var(--muted);white-space:nowrap}.meta b{color:#374151}.purpose{margin:8px 0 0}
.purpose b{display:inline-block;min-width:90px;color:var(--muted)}.muted{color:var(--muted)}a{color:#1f6fb2}
.verdict{min-width:180px;align-self:flex-start;text-align:center;border-radius:10px;padding:12px 18px;
 color:#fff;font:800 32px sans-serif}.verdict small{display:block;font:500 12px sans-serif}
.verdict-pass{background:var(--ok)}.verdict-fail{background:var(--fail)}.verdict-unknown{background:#8a94a3}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e5e7eb}
th{font-size:12px;text-transform:uppercase;color:var(--muted)}td.n{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px}
.v{font-weight:800;font-size:16px}.v-pass{color:var(--ok)}.v-fail{color:var(--fail)}.v-unknown{color:#8a94a3}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(118px,1fr));gap:10px}
.card{border:1px solid #e5e7eb;border-top:3px solid #cbd5e1;border-radius:8px;padding:8px 12px}
.card .val{font-size:22px;font-weight:700}.card small{font-size:13px;color:var(--muted)}
.card .lbl{font-size:12px;color:var(--muted)}.card.bad{border-top-color:var(--fail)}
.card.bad .val{color:var(--fail)}.card.warn{border-top-color:var(--info)}svg{display:block;width:100%}
svg text{font:11px system-ui,sans-serif;fill:#374151}.grid{stroke:#eceff3}.ax{stroke:#9ca3af}
.halo{paint-order:stroke;stroke:#fff;stroke-width:3px}.fault{fill:#e74c3c;fill-opacity:.12;stroke:#f2b8b2}
.legend{display:flex;flex-wrap:wrap;gap:18px;font-size:12px;color:#4b5563;margin:4px 0 0 10px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:5px}
.dash{display:inline-block;width:18px;border-top:2px dashed #1f6fb2;vertical-align:3px;margin-right:5px}
.rto{margin:8px 0 0}footer{margin:16px 0;color:var(--muted);text-align:center}"""


def server_line(journal: Mapping[str, Any]) -> str:
    """``3.6.0 on Java 25`` from the journal's ``server`` (the server as it reported itself), or ""."""
    server = _mapping(journal.get("server"))
    version, java = server.get("version"), server.get("java")
    return "" if not version else f"{version}" + (f" on Java {java}" if java else "")


def _header(journal: Mapping[str, Any]) -> str:
    verdict, checks = _state(journal.get("verdict")), _dicts(journal.get("checks"))
    passed = sum(_state(c.get("valid")) == "pass" for c in checks)
    meta = "".join(f"<span><b>{k}</b> {_e(journal.get(key))}</span>" for k, key in (
        ("system", "system"), ("backend", "backend"), ("client", "client"), ("started", "started_at"),
        ("ended", "ended_at")) if journal.get(key) not in (None, ""))
    meta += f"<span><b>server</b> {_e(server)}</span>" if (server := server_line(journal)) else ""
    lines = "".join(f'<p class="purpose"><b>{k}</b>{_e(journal[k])}</p>'
                    for k in ("purpose", "hypothesis") if journal.get(k))
    sub = f"<small>{passed} of {len(checks)} checks passed</small>" if checks else ""
    return (f'<header><div><h1>{_e(journal.get("experiment") or "unnamed experiment")}</h1>'
            f'<div class="meta">{meta}</div>{lines}</div>'
            f'<div class="verdict verdict-{verdict}">{verdict.upper()}{sub}</div></header>')


def _checks(journal: Mapping[str, Any]) -> str:
    rows = []
    for c in _dicts(journal.get("checks")):
        st = _state(c.get("valid"))
        sym = {"pass": "✓", "fail": "✗", "unknown": "?"}[st]
        rows.append([f"<b>{_e(c.get('name'))}</b>", f"<code>{_e(c.get('expected'))}</code>",
                     f"<code>{_e(c.get('observed'))}</code>",
                     f'<span class="v v-{st}" title="{st}">{sym}</span>', _e(c.get("detail"))])
    return _table(["check", "expected", "observed", "valid", "detail"], rows) if rows else \
        '<p class="muted">No checks recorded.</p>'


def _metrics(journal: Mapping[str, Any]) -> str:
    m = _mapping(journal.get("metrics"))
    cards = []
    for k in [k for k in _METRIC_ORDER if k in m] + sorted(str(k) for k in m if k not in _METRIC_ORDER):
        v, num = m[k], _num(m[k])
        if isinstance(v, Mapping | list | tuple) or any(k == f"{b}_{p}" for b in _BY_PHASE for p, _ in _PHASES):
            continue
        unit = next((u for u in ("ms", "s") if k.endswith("_" + u)), "")
        label = (k[: -len(unit) - 1] if unit else k).replace("_", " ").replace("rto", "RTO")
        cls = "bad" if k in _BAD and num else "warn" if k in _WARN and num else ""
        val = _fmt(v) + (f"<small> {unit}</small>" if unit and num is not None else "")
        cards.append(f'<div class="card {cls}"><div class="val">{val}</div><div class="lbl">{_e(label)}</div>'
                     "</div>")
    return f'<div class="cards">{"".join(cards)}</div>' if cards else '<p class="muted">No metrics.</p>'


def _phase_table(journal: Mapping[str, Any]) -> str:
    """Attempts per op and op latency by the phase an op was invoked in (the toxic window is "during")."""
    m = _mapping(journal.get("metrics"))
    rows = [[label, *(_fmt(m.get(f"{b}_{p}")) for b in _BY_PHASE)] for p, label in _PHASES
            if any(m.get(f"{b}_{p}") is not None for b in _BY_PHASE)]
    head = ["ops invoked", "attempts per op", "p50 (ms)", "p99 (ms)", "max (ms)"]
    return _table(head, rows, (1, 2, 3, 4)) if rows else ""


def _rto_line(journal: Mapping[str, Any]) -> str:
    rto = _mapping(journal.get("rto"))
    fault, steps = _num(rto.get("fault_at")), []
    for key, label, color in _RTO_MARKS:
        if (t := _num(rto.get(key))) is not None:
            extra = f" ({_e(rto['new_primary'])})" if key == "promoted_at" and rto.get("new_primary") else ""
            rel = f" <b>+{t - fault:.2f} s</b>" if fault is not None and key != "fault_at" else ""
            steps.append(f'<span style="color:{color}">{label}{extra}</span> @ {t:.2f} s{rel}')
    return f'<p class="rto">Recovery: {" → ".join(steps)}</p>' if steps else ""


def _legend() -> str:
    sw = [(_COLOR["ok"], "ok"), (_COLOR["fail"], "fail"), (_COLOR["info"], "info (indeterminate)"),
          ("#f8d3d0", "fault window"), (_PHASE_FILL[1], "phase")]
    items = "".join(f'<span><i class="sw" style="background:{c}"></i>{t}</span>' for c, t in sw)
    return f'<div class="legend">{items}<span><i class="dash"></i>recovery marker</span></div>'


def _faults_table(journal: Mapping[str, Any]) -> str:
    rows = []
    for f in _dicts(journal.get("faults")):
        a, h = _num(f.get("applied_at")), _num(f.get("healed_at"))
        rows.append([_e(f.get("kind")), _e(f.get("target")), _e(f.get("role")), _ft(a),
                     _ft(h) if h is not None else '<span class="v-fail">not healed</span>',
                     f"{h - a:.2f}" if a is not None and h is not None else "—"])
    head = ["kind", "target", "role", "applied (s)", "healed (s)", "duration (s)"]
    return _table(head, rows, (3, 4, 5)) if rows else '<p class="muted">No faults injected.</p>'


def _events_table(journal: Mapping[str, Any]) -> str:
    evs = sorted(_dicts(journal.get("events")), key=lambda e: _num(e.get("time")) or 0.0)
    if not evs:
        return '<p class="muted">No topology events recorded.</p>'
    rows = [[_ft(e.get("time")), _e(e.get("source")), f"<code>{_e(e.get('kind'))}</code>",
             _e(e.get("detail"))] for e in evs[:_EVENT_CAP]]
    more = f'<p class="muted">… {len(evs) - _EVENT_CAP} more</p>' if len(evs) > _EVENT_CAP else ""
    return _table(["time (s)", "source", "kind", "detail"], rows, (0,)) + more


def _errors_table(ops: _Ops) -> str:
    top = sorted(ops.errors.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    if not top:
        return '<p class="muted">No errors recorded.</p>'
    rows = [[f"{int(n):,}", f"<code>{_e(msg)}</code>", _ft(first), _ft(last)]
            for msg, (n, first, last) in top[:_ERR_TOP]]
    more = f'<p class="muted">… {len(top) - _ERR_TOP} more distinct errors</p>' if len(top) > _ERR_TOP else ""
    return _table(["count", "error", "first (s)", "last (s)"], rows, (0, 2, 3)) + more


def _hit_ratio_svg(journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]], fr: _Frame) -> str:
    """A cache's hit ratio in 1 s windows of get invocations (chaoskit.cache_checks' definition: hits of
    all completed gets), as a line over the run with the fault window shaded."""
    pending: dict[Any, float] = {}
    bins: dict[int, list[int]] = {}
    for op in ops:
        kind, proc = _kind(op), op.get("process")
        if op.get("f") != "read":
            continue
        if kind == "invoke":
            pending[proc] = float(op.get("time") or 0.0)
        elif proc in pending:
            b = bins.setdefault(int(pending.pop(proc) // 1.0), [0, 0])
            b[0] += 1
            b[1] += kind == "ok" and bool(_mapping(op.get("value")).get("hit"))
    if not bins:
        return '<p class="muted">No gets recorded.</p>'
    top, bottom = 10, 170

    def y(r: float) -> float:
        return bottom - r * (bottom - top)

    parts = [f'<svg viewBox="0 0 {_W} {bottom + 36}" role="img" aria-label="hit ratio">', *_x_axis(fr, top, bottom)]
    for r in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line class="grid" x1="{_ML}" y1="{y(r):.1f}" x2="{_W - _MR}" y2="{y(r):.1f}"/>'
                     f'<text x="{_ML - 6}" y="{y(r) + 4:.1f}" text-anchor="end">{r:.0%}</text>')
    parts += _faults_svg(journal, fr, top, bottom, None)
    points = " ".join(f"{fr.x(i + 0.5):.1f},{y(h / n):.1f}" for i, (n, h) in sorted(bins.items()))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{_COLOR["ok"]}" stroke-width="2"/>')
    return "".join(parts) + "</svg>"


def render_report(journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]],
                  evidence: Sequence[Mapping[str, Any]] = ()) -> str:
    """Return one self-contained HTML document (inline CSS + inline SVG, no external resources, no JS);
    ``evidence``: the server log entries the run kept (``evidence.jsonl``), if any."""
    journal = _mapping(journal)
    stats = _collect(ops or ())
    fr = _frame(journal, stats)
    s = _bin(stats, fr)
    hist = str(journal.get("history") or "").replace("\\", "/")
    hist = pathlib.PurePosixPath(hist).name if ":" in hist or hist.startswith("/") else hist
    hist = hist if hist and ":" not in hist else "history.jsonl"  # only ever a relative link
    sections = [("Checks", _checks(journal)), ("Key metrics", _metrics(journal)),
                ("Timeline", _timeline_svg(journal, s, fr) + _legend() + _rto_line(journal)),
                ("Op latency — slowest op completing in each bin",
                 _latency_svg(journal, s, fr) + _phase_table(journal)),
                *([("Hit ratio over time — gets invoked in each 1 s window", _hit_ratio_svg(journal, ops or (), fr))]
                  if _mapping(journal.get("rto")).get("cache") else []),
                *cache_sections(journal, ops or (), fr),
                *evidence_sections(journal, ops or (), evidence),
                ("Faults", _faults_table(journal)), ("Topology events", _events_table(journal)),
                ("Errors (top 10)", _errors_table(stats))]
    body = "".join(f"<section><h2>{title}</h2>{content}</section>" for title, content in sections)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>chaoskit: {_e(journal.get("experiment") or "report")}</title>'
            f"<style>{CSS}\n{EVIDENCE_CSS}</style></head>"
            f'<body><main>{_header(journal)}{body}<footer>Raw data: <a href="{quote(hist)}">{_e(hist)}</a> · '
            '<a href="journal.json">journal.json</a> · generated by chaoskit</footer></main></body></html>\n')


def write_report(path: pathlib.Path, journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]],
                 evidence: Sequence[Mapping[str, Any]] = ()) -> None:
    """Render the report and write it to ``path`` as UTF-8 (parent directories are created)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(journal, ops, evidence), encoding="utf-8")
    tmp.replace(path)
