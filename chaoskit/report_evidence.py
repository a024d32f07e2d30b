"""The report's evidence sections: each lost acknowledged write with its attempts on the wire beside the server
log lines nearest in time (those of the node the fault hit, and the other nodes' pattern matches), and the
faulted node's whole log window around each heal. From ``history.jsonl`` and ``evidence.jsonl`` (see
:mod:`chaoskit.server_logs`); nothing is shown for a run without them."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoskit.server_logs import without_stamp

__all__ = ["EVIDENCE_CSS", "LOST_TITLE", "WINDOW_TITLE", "Attempt", "evidence_sections", "lost_writes",
           "names_write", "parse_attempt"]

LOST_TITLE = "Lost writes: the wire and the server log"
WINDOW_TITLE = "Server log around the heal"
NEAR_S = 2.0  # log lines shown beside a lost write: within this of its acknowledging attempt
_LOST_CAP, _NEAR_CAP, _WINDOW_CAP, _TEXT_CAP = 25, 14, 400, 700
_SVG_W, _SVG_ML = 560, 8
EVIDENCE_CSS = """.lw{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,6fr);gap:16px;padding:12px 0;
 border-top:1px solid #e5e7eb}.lw:first-of-type{border-top:0}.lw h3{margin:0 0 6px;font-size:14px}
.lw table td,.ev td{vertical-align:top}.ack td{background:#fdecea;font-weight:600}
pre.log{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.35 ui-monospace,Menlo,Consolas,monospace}
tr.hit td{background:#fff4e5}
tr.mine td{background:#fde2e1;font-weight:600}mark{background:#ffd166;padding:0 2px;border-radius:3px}
.chips span{display:inline-block;margin:0 6px 6px 0;padding:2px 8px;border-radius:10px;background:#eef2f7;
 font-size:12px}.chips b{color:#b45309}.dt{color:#6b7280;white-space:nowrap;font-size:12px}
.ev{max-height:720px;overflow:auto;border:1px solid #e5e7eb;border-radius:8px}"""
_WIRE = re.compile(r"^(?P<node>\S+) (?P<rest>.*?)(?: @(?P<start>\d+)\+(?P<took>\d+)ms)?$")
_FIELD = re.compile(r"\b(seq|term|shards)=(\S+)")


@dataclass(frozen=True)
class Attempt:
    """One attempt of an op as the client recorded it (``Op.wire``), on the run clock when it says when."""

    node: str
    status: str  # what came back: ``201 created``, ``503 unavailable_shards_exception``, ``timeout`` ...
    seq: str | None
    term: str | None
    shards: str | None
    sent: float | None
    took_ms: float | None
    line: str


def parse_attempt(line: str, invoked: float) -> Attempt:
    """A wire line (``opensearch-1 201 created seq=163 term=1 shards=2/1/0 @4058+2879ms``), its start
    placed on the run clock from the op's invocation time."""
    m = _WIRE.match(line.strip())
    if m is None:
        return Attempt("?", line, None, None, None, None, None, line)
    fields = dict(_FIELD.findall(m["rest"]))
    status = _FIELD.sub("", m["rest"]).split()
    sent = invoked + int(m["start"]) / 1000 if m["start"] else None
    return Attempt(m["node"], " ".join(status), fields.get("seq"), fields.get("term"), fields.get("shards"), sent,
                   float(m["took"]) if m["took"] else None, line)


@dataclass(frozen=True)
class Lost:
    """An acknowledged write the final read did not find: its value, when it was invoked and acknowledged."""

    value: Any
    invoked: float
    acked: float
    node: str | None
    attempts: tuple[Attempt, ...]

    @property
    def ack_time(self) -> float:
        """When the server's acknowledgement came back: the acknowledging (last) attempt's end, else the op's."""
        last = self.attempts[-1] if self.attempts else None
        if last is None or last.sent is None or last.took_ms is None:
            return self.acked
        return last.sent + last.took_ms / 1000


def lost_writes(ops: Sequence[Mapping[str, Any]]) -> list[Lost]:
    """Acknowledged (ok) writes missing from the last ok final read, by acknowledgement time ([] without a
    final read of values, e.g. a cache-aside run's registers)."""
    finals = [op for op in ops if op.get("f") == "final-read" and op.get("type") == "ok"]
    if not finals or not isinstance(finals[-1].get("value"), list):
        return []
    final = {_key(v) for v in finals[-1]["value"]}
    pending: dict[Any, Mapping[str, Any]] = {}
    out = []
    for op in ops:
        if op.get("type") == "invoke":
            pending[op.get("process")] = op
            continue
        inv = pending.pop(op.get("process"), None)
        if inv is None or op.get("f") != "write" or op.get("type") != "ok" or _key(inv.get("value")) in final:
            continue
        t0 = float(inv.get("time") or 0.0)
        attempts = tuple(parse_attempt(str(w), t0) for w in op.get("wire") or ())
        out.append(Lost(inv.get("value"), t0, float(op.get("time") or 0.0), op.get("node"), attempts))
    return sorted(out, key=lambda lw: lw.acked)


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _e(value: Any) -> str:
    return "—" if value is None else html.escape(str(value))


def _marked(text: str, patterns: Iterable[str]) -> str:
    """``text`` escaped, with each pattern match in ``<mark>``."""
    pats = [p for p in patterns if p]
    if not pats:
        return html.escape(text)
    out, at = [], 0
    for m in re.finditer("|".join(f"(?:{p})" for p in pats), text, re.IGNORECASE):
        out += [html.escape(text[at:m.start()]), f"<mark>{html.escape(m.group())}</mark>"]
        at = m.end()
    return "".join(out) + html.escape(text[at:])


def _log_cell(entry: Mapping[str, Any], patterns: Sequence[str]) -> str:
    text = without_stamp(str(entry.get("text") or ""))
    text = text if len(text) <= _TEXT_CAP else text[:_TEXT_CAP] + " …"
    return f'<pre class="log">{_marked(text, patterns)}</pre>'


def _log_row(entry: Mapping[str, Any], ref: float, patterns: Sequence[str],
             value: Any = None) -> tuple[str, list[str]]:
    """A kept log entry as a table row: its time, its offset from ``ref``, its node, its text (matches marked);
    a row that names the write ``value`` stands out."""
    t = float(entry.get("time") or 0.0)
    mine = value is not None and names_write(str(entry.get("text") or ""), value)
    return ("mine" if mine else "hit" if entry.get("matches") else "",
            [f"{t:.3f}", f'<span class="dt">{t - ref:+.2f} s</span>', _e(entry.get("node")),
             _log_cell(entry, patterns)])


def _table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    """(row class, cells of escaped HTML) rows under ``headers``."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(f'<tr class="{cls}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" for cls, cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status_colour(status: str) -> str:
    """Green for a 2xx, red for another HTTP status, orange for no answer (a timeout, a dropped connection)."""
    code = (status.removeprefix("index ").split() or [""])[0]
    return "#2f9e50" if code.startswith("2") else "#d8433b" if code[:1] in ("3", "4", "5") else "#f0932b"


def _strip(lw: Lost, near: Sequence[Mapping[str, Any]], heals: Sequence[float]) -> str:
    """The seconds around the acknowledgement at a glance: each attempt a bar (its colour its answer), each
    log line a tick below (orange: it matches a pattern), the heal a dashed line."""
    sent = [a.sent for a in lw.attempts if a.sent is not None]
    lo = min([lw.ack_time - NEAR_S, *sent]) - 0.2
    hi = lw.ack_time + NEAR_S + 0.2
    rows = max(len(lw.attempts), 1)
    height = 14 * rows + 40

    def x(t: float) -> float:
        return _SVG_ML + (t - lo) / (hi - lo) * (_SVG_W - 2 * _SVG_ML)

    parts = [f'<svg viewBox="0 0 {_SVG_W} {height}" role="img" aria-label="attempts and log lines">']
    for i, a in enumerate(lw.attempts):
        if a.sent is None:
            continue
        end = a.sent + (a.took_ms or 0.0) / 1000
        parts.append(f'<rect x="{x(a.sent):.1f}" y="{4 + 14 * i}" width="{max(x(end) - x(a.sent), 2):.1f}" '
                     f'height="10" rx="2" fill="{_status_colour(a.status)}"><title>{_e(a.line)}</title></rect>')
    y = 14 * rows + 10
    parts.append(f'<line class="ax" x1="{_SVG_ML}" y1="{y}" x2="{_SVG_W - _SVG_ML}" y2="{y}"/>')
    for entry in near:
        t = float(entry.get("time") or 0.0)
        colour = "#f0932b" if entry.get("matches") else "#9ca3af"
        parts.append(f'<line x1="{x(t):.1f}" y1="{y - 6}" x2="{x(t):.1f}" y2="{y + 6}" stroke="{colour}" '
                     f'stroke-width="2"><title>{_e(entry.get("node"))} {t:.3f} s</title></line>')
    for h in heals:
        if lo <= h <= hi:
            parts.append(f'<line x1="{x(h):.1f}" y1="0" x2="{x(h):.1f}" y2="{y + 8}" stroke="#1f6fb2" '
                         f'stroke-dasharray="4 3"/><text x="{x(h) + 3:.1f}" y="{y + 22}">heal</text>')
    parts.append(f'<text x="{_SVG_ML}" y="{y + 22}">{lo:.2f} s</text>'
                 f'<text x="{_SVG_W - _SVG_ML}" y="{y + 22}" text-anchor="end">{hi:.2f} s</text>')
    return "".join(parts) + "</svg>"


def names_write(text: str, value: Any) -> bool:
    """Whether a log entry names this write's document: chaoskit's clients write ``{"v": <value>}``, which a
    server's request line shows as ``{"v":<value>}`` (OpenSearch's replica-failure trace does)."""
    wanted = re.escape(f'"v":{json.dumps(value)}') + r"(?![\w.])"
    return re.search(wanted, text.replace(" ", "")) is not None


def _near(lw: Lost, evidence: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The lines that name this write (whenever they are), then the faulted node's lines and the others'
    pattern matches within NEAR_S of the acknowledgement (the nearest few); by time."""
    own = [e for e in evidence if names_write(str(e.get("text") or ""), lw.value)]
    lo, hi = lw.ack_time - NEAR_S, lw.ack_time + NEAR_S
    inside = [e for e in evidence if lo <= float(e.get("time") or 0.0) <= hi and not any(e is o for o in own)]
    room = max(0, _NEAR_CAP - len(own))
    nearest = sorted(inside, key=lambda e: abs(float(e.get("time") or 0.0) - lw.ack_time))[:room]
    return sorted([*own[:_NEAR_CAP], *nearest], key=lambda e: float(e.get("time") or 0.0))


def _lost_card(lw: Lost, evidence: Sequence[Mapping[str, Any]], patterns: Sequence[str],
               heals: Sequence[float]) -> str:
    last = lw.attempts[-1] if lw.attempts else None
    rows = [("ack" if a is last else "", [_e(a.node), f"<code>{_e(a.status)}</code>", _e(a.term), _e(a.seq),
                                           _e(a.shards), "—" if a.sent is None else f"{a.sent:.3f}",
                                           "—" if a.took_ms is None else f"{a.took_ms:g}"])
            for a in lw.attempts]
    wire = (_table(["node", "answer", "term", "seq", "shards", "sent (s)", "took (ms)"], rows) if rows
            else '<p class="muted">The client recorded no attempts for this write.</p>')
    near = _near(lw, evidence)
    logs = _table(["time (s)", "Δ ack", "node", "log"], [_log_row(e, lw.ack_time, patterns, lw.value) for e in near]) \
        if near else f'<p class="muted">No server log line kept within ±{NEAR_S:g} s of this acknowledgement.</p>'
    head = (f"<h3>write <code>{_e(lw.value)}</code> — acknowledged at {lw.acked:.3f} s by {_e(lw.node)}"
            f"{f' ({_e(last.status)}, term {_e(last.term)}, shards {_e(last.shards)})' if last else ''}"
            "; missing from the final read</h3>")
    return (f'<div class="lw"><div>{head}{_strip(lw, near, heals)}{wire}</div>'
            f"<div><h3>server log: the lines naming this write, and within ±{NEAR_S:g} s of the acknowledgement "
            f"({lw.ack_time:.3f} s)</h3>{logs}"
            "</div></div>")


def _chips(entries: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for e in entries:
        for p in e.get("matches") or ():
            counts[str(p)] = counts.get(str(p), 0) + 1
    items = "".join(f"<span>{_e(p)} <b>{n}</b></span>" for p, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f'<div class="chips">{items}</div>' if items else ""


def _window(i: int, window: Mapping[str, Any], evidence: Sequence[Mapping[str, Any]], patterns: Sequence[str]) -> str:
    mine = [e for e in evidence if e.get("window") == i]
    own, others = [e for e in mine if e.get("faulted")], [e for e in mine if not e.get("faulted")]
    healed = float(window.get("healed_at") or 0.0)
    nodes = ", ".join(str(n) for n in window.get("nodes") or ()) or "—"

    def rows(sel: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
        return [_log_row(e, healed, patterns) for e in sel[:_WINDOW_CAP]]

    def more(sel: Sequence[Mapping[str, Any]]) -> str:
        extra = len(sel) - _WINDOW_CAP
        return f'<p class="muted">… {extra} more in evidence.jsonl</p>' if extra > 0 else ""

    head = ["time (s)", "Δ heal", "node", "log"]
    out = [f"<h3>{_e(window.get('fault'))} on {_e(nodes)}, healed at {healed:.3f} s — its log from "
           f"{float(window.get('start') or 0.0):.2f} to {float(window.get('end') or 0.0):.2f} s "
           f"({len(own)} entries, {sum(1 for e in own if e.get('matches'))} matching)</h3>", _chips(mine)]
    out.append(f'<div class="ev">{_table(head, rows(own))}</div>{more(own)}' if own else
               '<p class="muted">The faulted node logged nothing in this window.</p>')
    if others:
        out.append(f"<h3>the other nodes' lines matching the patterns ({len(others)})</h3>"
                   f'<div class="ev">{_table(head, rows(others))}</div>{more(others)}')
    return "".join(out)


def evidence_sections(journal: Mapping[str, Any], ops: Sequence[Mapping[str, Any]],
                      evidence: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(title, HTML) of the evidence sections: none for a run without ``server_logs`` in its journal."""
    section = journal.get("server_logs")
    if not isinstance(section, Mapping):
        return []
    windows = [w for w in section.get("windows") or () if isinstance(w, Mapping)]
    patterns = [str(p) for p in section.get("patterns") or ()]
    heals = [float(w.get("healed_at") or 0.0) for w in windows]
    out = []
    lost = lost_writes(ops)
    if lost:
        cards = "".join(_lost_card(lw, evidence, patterns, heals) for lw in lost[:_LOST_CAP])
        more = f'<p class="muted">… {len(lost) - _LOST_CAP} more lost writes</p>' if len(lost) > _LOST_CAP else ""
        out.append((LOST_TITLE, cards + more))
    note = f'<p class="muted">Reading the logs failed: {_e(section.get("error"))}</p>' if section.get("error") else ""
    body = "".join(_window(i, w, evidence, patterns) for i, w in enumerate(windows))
    out.append((WINDOW_TITLE, note + (body or '<p class="muted">No fault was healed: no window kept.</p>')))
    return out
