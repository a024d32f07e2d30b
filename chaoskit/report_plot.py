"""The report's data and pictures: ops paired and binned (at most ~400 bins, so 50k+ op histories stay
small), the timeline and latency SVGs, and the formatting helpers the report's tables share."""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_W, _ML, _MR = 1200, 120, 24  # SVG width, left/right plot margins (px)
_TYPES = ("ok", "info", "fail")  # bar stacking order, bottom to top
_COLOR = {"ok": "#2f9e50", "fail": "#d8433b", "info": "#f0932b"}
_BINS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_MAX_BINS, _MARKERS, _EVENT_CAP, _ERR_TOP, _ERR_LEN = 400, 6, 200, 10, 120
_RTO_MARKS = (("fault_at", "fault", "#b02a2a"), ("detected_at", "detected", "#7a4fc0"),
              ("promoted_at", "new primary", "#1f6fb2"), ("dns_updated_at", "DNS updated", "#0f8b8d"),
              ("recovered_at", "client recovered", "#2f9e50"))  # dns_updated_at: runs with DNS endpoints
_PHASE_FILL = ("#dbe4f0", "#c3d2e8")

_Comp = tuple[float, str, str, float | None]  # completion time, f, type, latency
_Mark = tuple[float, str, str, bool]  # time, label, colour, dashed


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value))


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _kind(op: Mapping[str, Any]) -> Any:
    """An op's type as its plain value ("invoke", "ok", ...), from a history Op or a history.jsonl line."""
    return getattr(op.get("type"), "value", op.get("type"))


def _fmt(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—" if value is None or isinstance(value, Mapping | list | tuple) else _e(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.1f}"
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) >= 1 else f"{v:.3g}"


def _ft(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:.3f}"


def _fmt_dur(v: float) -> str:
    return f"{v * 1e6:.0f} µs" if v < 1e-3 else f"{v * 1e3:g} ms" if v < 1 else f"{v:g} s"


def _state(value: Any) -> str:
    """Normalise a verdict or check validity to 'pass', 'fail' or 'unknown'."""
    if value is True or str(value).lower() in ("pass", "true", "valid", "ok"):
        return "pass"
    return "fail" if value is False or str(value).lower() in ("fail", "false", "invalid") else "unknown"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], num: tuple[int, ...] = ()) -> str:
    """Rows of already-escaped cell HTML; columns listed in ``num`` are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in num else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class _Ops:
    comps: list[_Comp] = field(default_factory=list)
    errors: dict[str, list[float]] = field(default_factory=dict)  # message -> [count, first, last]


def _collect(ops: Iterable[Mapping[str, Any]]) -> _Ops:
    """Pair each completion with the open invoke of its process (as History.pairs does); tally errors."""
    out, pending = _Ops(), {}
    for raw in ops:
        op = raw if isinstance(raw, Mapping) else raw.to_dict() if hasattr(raw, "to_dict") else {}
        if (t := _num(op.get("time"))) is None:
            continue
        kind, proc = _kind(op), str(op.get("process"))
        if kind == "invoke":
            pending[proc] = t
        elif kind in _COLOR:
            start = pending.pop(proc, None)
            out.comps.append((t, str(op.get("f") or "?"), str(kind), None if start is None else t - start))
            if op.get("error"):
                msg = " ".join(str(op["error"]).split())
                msg = msg if len(msg) <= _ERR_LEN else msg[: _ERR_LEN - 1] + "…"
                rec = out.errors.setdefault(msg, [0, t, t])
                rec[0], rec[1], rec[2] = rec[0] + 1, min(rec[1], t), max(rec[2], t)
    return out


@dataclass(frozen=True)
class _Frame:
    t0: float
    t1: float

    def x(self, t: float) -> float:
        return _ML + (t - self.t0) / (self.t1 - self.t0) * (_W - _ML - _MR)


@dataclass
class _Series:
    width: float
    n: int
    bands: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # band -> type -> count per bin
    lat: dict[str, list[float]] = field(default_factory=dict)  # type -> max latency per bin
    markers: list[tuple[float, str, str]] = field(default_factory=list)


def _frame(journal: Mapping[str, Any], ops: _Ops) -> _Frame:
    vals: list[Any] = [e.get("time") for e in _dicts(journal.get("events"))]
    vals += list(_mapping(journal.get("rto")).values())
    vals += [p.get(k) for p in _dicts(journal.get("phases")) for k in ("start", "end")]
    vals += [f.get(k) for f in _dicts(journal.get("faults")) for k in ("applied_at", "healed_at")]
    times = [v for v in map(_num, vals) if v is not None]
    if ops.comps:
        times += [min(c[0] for c in ops.comps), max(c[0] for c in ops.comps)]
    t0 = min([0.0, *times])
    t1 = max([t0, *times])
    return _Frame(t0, t1 + max((t1 - t0) * 0.01, 1e-3) if t1 > t0 else t0 + 1.0)


def _bin(ops: _Ops, fr: _Frame) -> _Series:
    """Bin completions per band (writes/reads); rare ops such as final-read become markers."""
    span = fr.t1 - fr.t0
    width = next((c for c in _BINS if c >= min(0.1, span / 50) and span / c <= _MAX_BINS), span / _MAX_BINS)
    s = _Series(width, max(1, math.ceil(span / width)))
    s.lat = {k: [0.0] * s.n for k in _COLOR}
    counts = Counter(c[1] for c in ops.comps)
    rare = {f for f, n in counts.items() if f.startswith("final") or (f != "write" and n < _MARKERS)}
    roles = {f: "marker" if f in rare else "reads" if f == "read" else "writes" for f in counts}
    for t, f, kind, lat in ops.comps:
        if roles[f] == "marker":
            s.markers.append((t, f, kind))
            continue
        i = min(s.n - 1, max(0, int((t - fr.t0) / width)))
        band = s.bands.get(roles[f]) or s.bands.setdefault(roles[f], {k: [0] * s.n for k in _COLOR})
        band[kind][i] += 1
        if lat is not None and lat > s.lat[kind][i]:
            s.lat[kind][i] = lat
    return s


def _x_axis(fr: _Frame, top: float, bottom: float) -> list[str]:
    raw = (fr.t1 - fr.t0) / 12
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    dec = max(0, -math.floor(math.log10(step) + 1e-9))
    out = [f'<line class="ax" x1="{_ML}" y1="{bottom}" x2="{_W - _MR}" y2="{bottom}"/>',
           f'<text x="{_W - _MR}" y="{bottom + 30}" text-anchor="end">seconds since run start</text>']
    for k in range(math.ceil(fr.t0 / step - 1e-9), math.floor(fr.t1 / step + 1e-9) + 1):
        x = fr.x(k * step)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom + 4}"/>'
                   f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{k * step:.{dec}f}</text>')
    return out


def _faults_svg(journal: Mapping[str, Any], fr: _Frame, top: float, bottom: float,
                label_y: float | None) -> list[str]:
    rects, labels = [], []
    for i, f in enumerate(_dicts(journal.get("faults"))):
        applied, healed = _num(f.get("applied_at")), _num(f.get("healed_at"))
        if applied is None:
            continue
        x0, x1 = fr.x(applied), fr.x(max(applied, fr.t1 if healed is None else healed))
        text = " ".join(str(f[k]) for k in ("kind", "target") if f.get(k)) or "fault"
        text = _e(text + (f" ({f['role']})" if f.get("role") else "") + ("" if healed else " — not healed"))
        rects.append(f'<rect class="fault" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{bottom - top}"><title>{text}</title></rect>')
        if label_y is not None:  # keep the label inside the plot when the fault starts near the right edge
            pos = f'x="{x0 + 4:.1f}"' if x0 + len(text) * 6.5 < _W - _MR else f'x="{_W - _MR}" text-anchor="end"'
            labels.append(f'<text class="halo" {pos} y="{label_y + 13 * i}" '
                          f'style="fill:#b02a2a;font-weight:600">{text}</text>')
    return rects + labels


def _phase_strip(journal: Mapping[str, Any], fr: _Frame, y: float, h: float) -> list[str]:
    out = []
    for i, p in enumerate(_dicts(journal.get("phases"))):
        start, end = _num(p.get("start")), _num(p.get("end"))
        if start is None:
            continue
        end = fr.t1 if end is None else max(end, start)
        x0, x1, name = fr.x(start), fr.x(end), str(p.get("name") or "")
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{h}" '
                   f'fill="{_PHASE_FILL[i % 2]}"><title>{_e(name)}: {start:.2f}–{end:.2f} s</title></rect>')
        if x1 - x0 > len(name) * 6.5 + 6:
            out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{y + h - 4}" text-anchor="middle">{_e(name)}'
                       "</text>")
    if out:
        out.insert(0, f'<text x="{_ML - 8}" y="{y + h - 4}" text-anchor="end">phases</text>')
    return out


def _band(name: str, s: _Series, fr: _Frame, top: float, h: float) -> list[str]:
    """Stacked ok/info/fail bars per bin: one <path> per type, a hover <title> on bins with errors."""
    c = s.bands[name]
    totals = [a + b + d for a, b, d in zip(c["ok"], c["info"], c["fail"], strict=True)]
    peak, bw, base = max(totals) or 1, fr.x(fr.t0 + s.width) - _ML, top + h
    paths: dict[str, list[str]] = {k: [] for k in _TYPES}
    tips = []
    for i, total in enumerate(totals):
        x, y = fr.x(fr.t0 + i * s.width), base
        for k in _TYPES:
            if c[k][i]:
                hh = max(1.5, c[k][i] / peak * h)
                y -= hh
                paths[k].append(f"M{x:.1f} {y:.1f}h{bw:.2f}v{hh:.1f}h{-bw:.2f}z")
        if total != c["ok"][i]:
            t = fr.t0 + i * s.width
            tips.append(f'<rect x="{x:.1f}" y="{top}" width="{bw:.2f}" height="{h}" fill-opacity="0"><title>'
                       f'{t:.2f}–{t + s.width:.2f} s: ok {c["ok"][i]}, fail {c["fail"][i]}, '
                       f'info {c["info"][i]}</title></rect>')
    out = [f'<rect x="{_ML}" y="{top}" width="{_W - _ML - _MR}" height="{h}" fill="#fafbfc"/>',
           f'<line class="ax" x1="{_ML}" y1="{top}" x2="{_ML}" y2="{base}"/>']
    out += [f'<path fill="{_COLOR[k]}" d="{"".join(p)}"/>' for k, p in paths.items() if p]
    return out + tips + [
        f'<text x="{_ML - 8}" y="{top + h / 2 - 2}" text-anchor="end" style="font:700 13px sans-serif">'
        f"{name}</text>",
        f'<text x="{_ML - 8}" y="{top + h / 2 + 13}" text-anchor="end">ops / {_fmt_dur(s.width)}</text>',
        f'<text x="{_ML - 4}" y="{top + 9}" text-anchor="end">{peak}</text>',
        f'<text x="{_ML - 4}" y="{base}" text-anchor="end">0</text>']


def _marks(journal: Mapping[str, Any], s: _Series) -> list[_Mark]:
    rto, out = _mapping(journal.get("rto")), []
    for key, label, color in _RTO_MARKS:
        if (t := _num(rto.get(key))) is not None:
            extra = f" {rto['new_primary']}" if key == "promoted_at" and rto.get("new_primary") else ""
            out.append((t, label + extra, color, True))
    out += [(t, f"{f} {kind}", _COLOR[kind], False) for t, f, kind in s.markers]
    return sorted(out, key=lambda m: m[0])


def _label_rows(marks: list[_Mark], fr: _Frame) -> list[int]:
    """Stack marker labels greedily into rows so that they never overlap."""
    ends: list[float] = []
    rows = []
    for t, label, _, _ in marks:
        x, w = fr.x(t), len(label) * 6.3 + 8
        left, right = (x - w, x) if x + w > _W else (x, x + w)
        rows.append(next((r for r, end in enumerate(ends) if left >= end), len(ends)))
        ends[rows[-1]:rows[-1] + 1] = [right]
    return rows


def _mark_lines(marks: list[_Mark], fr: _Frame, top: float, bottom: float, labels: bool) -> list[str]:
    """Vertical marker lines (dashed for recovery markers), optionally labelled above the plot."""
    out = []
    for (t, label, color, dashed), row in zip(marks, _label_rows(marks, fr), strict=True):
        x = fr.x(t)
        flip = x + len(label) * 6.3 + 8 > _W
        y, dash = top + 11 + row * 14, ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{x:.1f}" y1="{y + 3 if labels else top}" x2="{x:.1f}" y2="{bottom}" '
                   f'stroke="{color}" stroke-width="1.5"{dash}/>')
        if labels:
            anchor = f'x="{x - 3:.1f}" text-anchor="end"' if flip else f'x="{x + 3:.1f}"'
            out.append(f'<text class="halo" {anchor} y="{y}" style="fill:{color};font-weight:600">'
                       f"{_e(label)}</text>")
    return out


def _timeline_svg(journal: Mapping[str, Any], s: _Series, fr: _Frame) -> str:
    marks = _marks(journal, s)
    strip_y = 8 + (max(_label_rows(marks, fr), default=-1) + 1) * 14
    top, names = strip_y + 24, [b for b in ("writes", "reads") if b in s.bands]
    band_h = 150 if len(names) < 2 else 120
    bottom = top + max(1, len(names)) * (band_h + 16) - 16
    parts = [f'<svg viewBox="0 0 {_W} {bottom + 36}" role="img" aria-label="op timeline">',
             *_x_axis(fr, top, bottom)]
    for i, name in enumerate(names):
        parts += _band(name, s, fr, top + i * (band_h + 16), band_h)
    if not names:
        parts.append(f'<text class="halo" x="{_W / 2}" y="{top + 40}" text-anchor="middle">no completed ops</text>')
    parts += _faults_svg(journal, fr, strip_y, bottom, top + 14) + _phase_strip(journal, fr, strip_y, 16)
    return "".join(parts + _mark_lines(marks, fr, 0, bottom, True)) + "</svg>"


def _latency_svg(journal: Mapping[str, Any], s: _Series, fr: _Frame) -> str:
    vals = [v for k in _TYPES for v in s.lat[k] if v > 0]
    if not vals:
        return '<p class="muted">No latency data (no invoke/completion pairs).</p>'
    top, bottom = 24, 184  # room above the plot for the fault window's label
    hi = 10.0 ** math.ceil(math.log10(max(vals)) + 1e-9)
    lo = min(10.0 ** math.floor(math.log10(max(min(vals), 1e-5))), hi / 100)
    decades = round(math.log10(hi / lo))

    def y(v: float) -> float:
        return bottom - math.log10(max(v, lo) / lo) / decades * (bottom - top)

    parts = [f'<svg viewBox="0 0 {_W} {bottom + 36}" role="img">', *_x_axis(fr, top, bottom)]
    for v in (lo * 10**d for d in range(decades + 1)):
        parts.append(f'<line class="grid" x1="{_ML}" y1="{y(v):.1f}" x2="{_W - _MR}" y2="{y(v):.1f}"/>'
                     f'<text x="{_ML - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt_dur(v)}</text>')
    parts += _faults_svg(journal, fr, top, bottom, 16)  # the fault (toxic) window, shaded and labelled
    parts += _mark_lines([m for m in _marks(journal, s) if m[3]], fr, top, bottom, False)
    for k in _TYPES:
        dots = "".join(f"M{fr.x(fr.t0 + (i + 0.5) * s.width):.1f} {y(v):.1f}h0"
                       for i, v in enumerate(s.lat[k]) if v)
        if dots:
            parts.append(f'<path d="{dots}" stroke="{_COLOR[k]}" stroke-width="4" stroke-linecap="round"/>')
    mid = (top + bottom) / 2
    parts.append(f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" text-anchor="middle">'
                 "max latency</text>")
    return "".join(parts) + "</svg>"
