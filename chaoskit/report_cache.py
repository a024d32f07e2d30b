"""The report's panels for a cache-aside run (``cache:`` in the experiment; chaoskit.cache_aside): the
cache against the database at the end, and where reads were served from over the run.

Both count from the same data as :mod:`chaoskit.cache_aside_checks`: the final read
``{"db": {key: value}, "cache": {key: value}}`` and each read's value ``{"key", "value", "source"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaoskit.cache_aside_checks import divergence
from chaoskit.report_plot import _COLOR, _ML, _MR, _W, _e, _faults_svg, _fmt, _Frame, _kind, _mapping, _num, _x_axis

__all__ = ["is_cache_aside", "cache_sections"]

_AGREE, _AHEAD, _BEHIND, _DB_ONLY = _COLOR["ok"], _COLOR["fail"], _COLOR["info"], "#cbd5e1"
_CACHE, _DB, _NOT_OK = "#2f9e50", "#1f6fb2", "#9ca3af"


def is_cache_aside(journal: Mapping[str, Any]) -> bool:
    """A cache-aside run: its settings carry the ``cache`` spec, or (older journals) its checker's metrics."""
    return bool(_mapping(journal.get("settings")).get("cache")) or "cache_ahead" in _mapping(journal.get("metrics"))


def _final(ops: Sequence[Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, int]] | None:
    """The last ok final read's (db, cache), as the checker takes it."""
    reads = [op for op in ops if op.get("f") == "final-read" and _kind(op) == "ok"
             and isinstance(op.get("value"), Mapping)]
    if not reads:
        return None
    v = max(reads, key=lambda op: (_num(op.get("time")) or 0.0, str(op.get("process"))))["value"]
    try:
        return ({str(k): int(x) for k, x in _mapping(v.get("db")).items()},
                {str(k): int(x) for k, x in _mapping(v.get("cache")).items()})
    except (TypeError, ValueError):
        return None


def _swatch(color: str, text: str) -> str:
    return f'<span><i class="sw" style="background:{color}"></i>{text}</span>'


def _end_state(journal: Mapping[str, Any], final: tuple[dict[str, int], dict[str, int]] | None) -> str:
    """One stacked bar of the keys: agree / cache ahead / cache behind / only in the database."""
    m = _mapping(journal.get("metrics"))
    if final is None:
        bar = '<p class="muted">No successful final read of database and cache.</p>'
    else:
        db, cache = final
        ahead, behind = divergence(db, cache)
        absent = sum(1 for k in ahead if k not in db)
        agree = sum(1 for k, v in cache.items() if db.get(k) == v)
        segs = [(agree, _AGREE, "agree"),
                (len(ahead), _AHEAD, "cache ahead — serves a value the database lost"
                 + (f" ({absent:,} of them not in the database)" if absent else "")),
                (len(behind), _BEHIND, "cache behind — stale"),
                (sum(1 for k in db if k not in cache), _DB_ONLY, "only in the database (not cached)")]
        total = sum(n for n, _, _ in segs)
        parts, x, width = [f'<svg viewBox="0 0 {_W} 44" role="img" aria-label="cache vs database">'], 0.0, _W - 2
        for n, color, label in segs:
            if n:
                w = max(n / total * width, 2.0)
                parts.append(f'<rect x="{x + 1:.1f}" y="4" width="{w:.1f}" height="28" fill="{color}">'
                             f"<title>{_e(label)}: {n}</title></rect>")
                if w > len(str(n)) * 7 + 8:
                    parts.append(f'<text x="{x + 1 + w / 2:.1f}" y="22" text-anchor="middle" '
                                 f'style="fill:#fff;font-weight:700">{n:,}</text>')
                x += w
        bar = "".join(parts) + "</svg>" + '<div class="legend">' + "".join(
            _swatch(c, f"{_e(label)}: <b>{n:,}</b>") for n, c, label in segs) + \
            f"<span>{total:,} keys in the cache or the database</span></div>"
    spec = _mapping(_mapping(journal.get("settings")).get("cache"))
    ratio = _num(m.get("cache_aside_hit_ratio"))
    facts = [*(f"{k} <b>{_e(spec[k])}</b>" for k in ("strategy", "invalidate", "keys") if k in spec),
             *([f"ttl <b>{_e(spec['ttl_s'])} s</b>"] if "ttl_s" in spec else []),
             f"cache flushes <b>{_fmt(m.get('cache_flushes'))}</b>",
             f"cache errors <b>{_fmt(m.get('cache_aside_errors'))}</b>",
             f"hit ratio <b>{'—' if ratio is None else f'{ratio:.2%}'}</b> of {_fmt(m.get('cache_aside_reads'))} "
             "ok reads",
             f"reads after heal served a lost value <b>{_fmt(m.get('served_lost'))}</b>"]
    return bar + f'<p class="rto">{" · ".join(facts)}</p>'


def _reads(ops: Sequence[Mapping[str, Any]], db: dict[str, int] | None) -> dict[int, list[int]]:
    """Per 1 s window of read invocations: [from the cache, from the database, not ok, served a lost value]."""
    pending: dict[Any, float] = {}
    bins: dict[int, list[int]] = {}
    for op in ops:
        kind, proc = _kind(op), op.get("process")
        if op.get("f") != "read":
            continue
        if kind == "invoke":
            pending[proc] = _num(op.get("time")) or 0.0
            continue
        if proc not in pending:
            continue
        b = bins.setdefault(int(pending.pop(proc) // 1.0), [0, 0, 0, 0])
        v = _mapping(op.get("value"))
        if kind != "ok":
            b[2] += 1
            continue
        b[0 if v.get("source") == "cache" else 1] += 1
        got = _num(v.get("value"))
        b[3] += db is not None and got is not None and got > db.get(str(v.get("key")), 0)
    return bins


def _reads_svg(journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]], fr: _Frame,
               db: dict[str, int] | None) -> str:
    bins = _reads(ops, db)
    if not bins:
        return '<p class="muted">No reads recorded.</p>'
    top, bottom = 10, 170
    peak = max(sum(b[:3]) for b in bins.values()) or 1

    def y(n: float) -> float:
        return bottom - n / peak * (bottom - top)

    parts = [f'<svg viewBox="0 0 {_W} {bottom + 36}" role="img" aria-label="reads over time">',
             *_x_axis(fr, top, bottom), f'<line class="ax" x1="{_ML}" y1="{top}" x2="{_ML}" y2="{bottom}"/>',
             f'<text x="{_ML - 6}" y="{top + 9}" text-anchor="end">{peak}</text>',
             f'<text x="{_ML - 6}" y="{bottom}" text-anchor="end">0</text>',
             f'<text x="{_ML - 8}" y="{(top + bottom) / 2}" text-anchor="end">reads / 1 s</text>']
    parts += _faults_svg(journal, fr, top, bottom, None)
    paths: dict[str, list[str]] = {_CACHE: [], _DB: [], _NOT_OK: []}
    lost = []
    for i, (hit, miss, bad, served) in sorted(bins.items()):
        x0, x1 = fr.x(i) + 1, fr.x(i + 1) - 1
        if x1 <= x0 or x0 < _ML or x1 > _W - _MR + 1:
            continue
        base = float(bottom)
        for n, color in ((hit, _CACHE), (miss, _DB), (bad, _NOT_OK)):
            if n:
                h = max(1.0, n / peak * (bottom - top))
                base -= h
                paths[color].append(f"M{x0:.1f} {base:.1f}h{x1 - x0:.1f}v{h:.1f}h{x0 - x1:.1f}z")
        if served:
            lost.append(f"M{x0:.1f} {y(served):.1f}h{x1 - x0:.1f}")
        parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{bottom - top}" fill-opacity="0">'
                     f"<title>{i}–{i + 1} s: {hit} from the cache, {miss} from the database, {bad} not ok, "
                     f"{served} served a value the database lost</title></rect>")
    parts += [f'<path fill="{c}" d="{"".join(p)}"/>' for c, p in paths.items() if p]
    if lost:
        parts.append(f'<path d="{"".join(lost)}" fill="none" stroke="{_AHEAD}" stroke-width="3"/>')
    legend = "".join(_swatch(c, t) for c, t in ((_CACHE, "from the cache (hit)"), (_DB, "from the database (miss)"),
                                                (_NOT_OK, "fail / info"), (_AHEAD, "served a value the database "
                                                                                   "lost by the end"),
                                                ("#f8d3d0", "fault window")))
    total = sum(b[3] for b in bins.values())
    note = (f'<p class="muted">{total:,} ok reads returned a value above its key\'s final database value; the '
            "served lost figure counts those invoked after heal.</p>") if db is not None else ""
    return "".join(parts) + f'</svg><div class="legend">{legend}</div>{note}'


def cache_sections(journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]], fr: _Frame) -> list[tuple[str, str]]:
    """The report's sections for a cache-aside run; none for any other run."""
    if not is_cache_aside(journal):
        return []
    final = _final(ops)
    return [("Cache vs database at the end", _end_state(journal, final)),
            ("Reads over time — reads invoked in each 1 s window", _reads_svg(journal, ops, fr,
                                                                              final[0] if final else None))]
