"""A second reading of a run: its headline figures recounted from ``history.jsonl`` and the journal's
fault and event times alone.

Deliberately small and independent: it shares no code with ``checkers.py`` (nor with ``history.py``),
so a mistake in one is caught by the other. ``chaoskit recount RUN_DIR`` prints both readings side by
side; every integration test compares them on every run it makes. The definitions are the README's.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

GAP_S = 0.25  # a write disruption without errors: no ok write for longer than this (README, "rto_s")
CACHE_KEYS = ("gets", "hits", "hit_ratio", "hit_ratio_before", "hit_ratio_during", "hit_ratio_after", "min_hit_ratio",
              "hit_ratio_end", "cache_errors", "sets_not_stored", "unexpected_misses", "miss_rate_before",
              "miss_rate_during", "rehash_s")
PHASE_KEYS = tuple(f"{m}_{p}" for p in ("before", "during", "after")
                   for m in ("attempts_per_op", "op_p50_ms", "op_p99_ms", "op_max_ms"))
ASIDE_KEYS = ("cache_ahead", "cache_behind", "divergent_keys", "served_lost", "cache_flushes")
KEYS = ("ops_ok", "ops_fail", "ops_info", "acked_writes", "info_writes", "lost_writes", "reads_checked",
        "stale_reads", "rto_s", "max_op_ms", "duplicates", "attempts", "attempts_per_op", *PHASE_KEYS, *CACHE_KEYS,
        *ASIDE_KEYS)


def _pairs(lines: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(invoke, completion or None): each invoke ends at its process's next non-invoke line."""
    pending: dict[int, dict[str, Any]] = {}
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for line in lines:
        if line["type"] == "invoke":
            pending[line["process"]] = line
        elif line["process"] in pending:
            out.append((pending.pop(line["process"]), line))
    return out + [(inv, None) for inv in pending.values()]


def recount(run_dir: Path) -> dict[str, Any]:
    """The figures of :data:`KEYS` for a run directory; None where a figure cannot be counted."""
    journal = json.loads((run_dir / "journal.json").read_text())
    lines = [json.loads(s) for s in (run_dir / journal.get("history", "history.jsonl")).read_text().splitlines()
             if s.strip()]
    pairs = _pairs(lines)
    done = [line for line in lines if line["type"] != "invoke" and line["f"] in ("write", "read")]
    writes = [(inv, end) for inv, end in pairs if inv["f"] == "write"]
    acked = {inv["value"]: end["time"] for inv, end in writes if end is not None and end["type"] == "ok"}
    finals = [line for line in lines if line["f"] == "final-read" and line["type"] == "ok"]
    last_final = max(finals, key=lambda x: (x["time"], x["process"]))["value"] if finals else None
    if isinstance(last_final, dict):  # cache-aside registers (README, "Cache-aside figures")
        return {**recount_registers(journal, pairs, last_final), **_cache(journal, pairs, False)}
    values = None if last_final is None else list(last_final)
    final = None if values is None else set(values)
    checked, stale = _stale(pairs, acked)
    cache = bool(journal.get("rto", {}).get("cache"))
    if cache:  # README, "Cache figures": nothing is lost and a miss is no stale read
        final, values, checked, stale = None, None, None, None  # type: ignore[assignment]
    return {
        **_cache(journal, pairs, cache), **_common(journal, pairs, done),
        "lost_writes": None if final is None else len(set(acked) - final),
        "reads_checked": checked, "stale_reads": stale,
        "duplicates": None if values is None else sum(c - 1 for c in Counter(values).values()),
        **dict.fromkeys(ASIDE_KEYS),
    }


def _common(journal: dict[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
            done: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures every run has: ops by outcome, acknowledged and indeterminate writes, RTO, the longest op,
    attempts and latency by phase."""
    writes = [(inv, end) for inv, end in pairs if inv["f"] == "write"]
    return {
        "ops_ok": sum(x["type"] == "ok" for x in done), "ops_fail": sum(x["type"] == "fail" for x in done),
        "ops_info": sum(x["type"] == "info" for x in done),
        "acked_writes": len({inv["value"] for inv, end in writes if end is not None and end["type"] == "ok"}),
        "info_writes": sum(end is None or end["type"] == "info" for _, end in writes),
        "rto_s": _rto(journal, writes),
        "max_op_ms": round(max((end["time"] - inv["time"] for inv, end in pairs
                                if inv["f"] in ("write", "read") and end is not None), default=0.0) * 1000, 1),
        **_load(journal, pairs),
    }


def _stale(pairs: list[tuple[dict[str, Any], dict[str, Any] | None]], acked_at: dict[Any, float]) -> tuple[int, int]:
    """(reads checked, stale reads): ok reads of a value acknowledged before they began that looked for it
    (``found`` None: not looked for) -- and did not find it."""
    checked = stale = 0
    for inv, end in pairs:
        if inv["f"] == "read" and end is not None and end["type"] == "ok" \
                and acked_at.get(inv["value"], float("inf")) < inv["time"] \
                and (end["value"] or {}).get("found", False) is not None:
            checked += 1
            stale += not (end["value"] or {}).get("found")
    return checked, stale


def recount_registers(journal: dict[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
                      final: dict[str, Any]) -> dict[str, Any]:
    """A cache-aside run: max-registers in the database, a cache in front (README, "Cache-aside figures")."""
    db, cached = final["db"], final["cache"]
    done = [end for _, end in pairs if end is not None and end["f"] in ("write", "read")]
    writes = [(inv, end) for inv, end in pairs if inv["f"] == "write"]
    acked = [(end["value"]["key"], inv["value"]) for inv, end in writes if end is not None and end["type"] == "ok"]
    acked_at = {inv["value"]: end["time"] for inv, end in writes if end is not None and end["type"] == "ok"}
    checked, stale = _stale(pairs, acked_at)
    t1 = ((journal.get("faults") or [{}])[0]).get("healed_at")
    served = sum(1 for inv, end in pairs if inv["f"] == "read" and end is not None and end["type"] == "ok"
                 and t1 is not None and inv["time"] >= t1 and end["value"]["value"] is not None
                 and end["value"]["value"] > db.get(end["value"]["key"], 0))
    return {
        **_common(journal, pairs, done),
        "lost_writes": sum(db.get(k, 0) < v for k, v in acked), "reads_checked": checked, "stale_reads": stale,
        "duplicates": None,
        "cache_ahead": sum(k not in db or v > db[k] for k, v in cached.items()),
        "cache_behind": sum(k in db and v < db[k] for k, v in cached.items()),
        "divergent_keys": sum(db.get(k) != v for k, v in cached.items()), "served_lost": served,
        "cache_flushes": sum(bool(isinstance(e["value"], dict) and e["value"].get("flushed")) for e in done),
    }


def _cache(journal: dict[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
           cache: bool) -> dict[str, Any]:
    """The cache figures (README, "Cache figures"); None for a run of anything but a cache."""
    if not cache:
        return dict.fromkeys(CACHE_KEYS)
    fault = (journal.get("faults") or [{}])[0]
    t0, t1 = fault.get("applied_at"), fault.get("healed_at")
    done = [(inv, end) for inv, end in pairs if end is not None and inv["f"] in ("read", "write")]
    gets = [(inv["time"], end) for inv, end in done if inv["f"] == "read"]
    hit = {id(end): end["type"] == "ok" and (end["value"] or {}).get("hit") is True for _, end in gets}
    last = max((t for t, _ in gets), default=0.0)

    def ratio(sel: list[tuple[float, dict[str, Any]]]) -> float | None:
        return round(sum(hit[id(e)] for _, e in sel) / len(sel), 4) if sel else None

    stored: dict[str, float] = {}  # key -> the earliest completion of a set that stored it
    for inv, end in done:
        v = end["value"] if isinstance(end["value"], dict) else {}
        if end["type"] == "ok" and ((inv["f"] == "write" and v.get("stored")) or v.get("refilled")):
            stored[v["key"]] = min(stored.get(v["key"], end["time"]), end["time"])
    misses = [t for t, e in gets if e["type"] == "ok" and not hit[id(e)] and stored.get(e["value"]["key"], t) < t]
    windows: dict[int, list[bool]] = {}
    for t, e in gets:
        if t0 is not None and t >= t0:
            windows.setdefault(int((t - t0) // 1.0), []).append(hit[id(e)])
    lows = [sum(w) / len(w) for w in windows.values() if len(w) >= 10]
    first = min((t for t, _ in gets), default=0.0)

    def rate(a: float | None, b: float | None) -> float | None:
        if a is None or b is None or b <= a:
            return None
        return round(sum(a <= t < b for t in misses) / (b - a), 2)

    return {
        "gets": len(gets), "hits": sum(hit.values()), "hit_ratio": ratio(gets),
        "hit_ratio_before": ratio([g for g in gets if t0 is None or g[0] < t0]),
        "hit_ratio_during": ratio([g for g in gets if t0 is not None and t0 <= g[0] < (t1 or float("inf"))]),
        "hit_ratio_after": ratio([g for g in gets if t1 is not None and g[0] >= t1]),
        "min_hit_ratio": round(min(lows), 4) if lows else None,
        "hit_ratio_end": ratio([g for g in gets if g[0] >= last - 2.0]),
        "cache_errors": sum(end["type"] != "ok" and bool(end.get("error")) for _, end in done),
        "sets_not_stored": sum(not end.get("error") and isinstance(v := end["value"], dict)
                               and False in (v.get("stored"), v.get("refilled")) for _, end in done),
        "unexpected_misses": len(misses),
        "miss_rate_before": rate(first, t0 if t0 is not None else last), "miss_rate_during": rate(t0, t1),
        "rehash_s": _rehash(done, t0),
    }


def _rehash(done: list[tuple[dict[str, Any], dict[str, Any]]], t0: float | None) -> float | None:
    """Fault -> the latest of each process's first ok op served by another node than its key's before."""
    if t0 is None:
        return None
    home: dict[str, str] = {}
    moved: dict[int, float] = {}
    for end in sorted((e for _, e in done), key=lambda e: e["time"]):
        if end["type"] != "ok" or not end.get("node") or not isinstance(end["value"], dict):
            continue
        if end["time"] < t0:
            home[end["value"]["key"]] = end["node"]
        elif home.get(end["value"]["key"], end["node"]) != end["node"] and end["process"] not in moved:
            moved[end["process"]] = end["time"]
    return round(max(moved.values()) - t0, 3) if moved else None


def _load(journal: dict[str, Any], pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> dict[str, Any]:
    """Attempts per op and op latency by phase (README, "attempts_per_op"): an op the fault window touched is
    ``during``."""
    fault = (journal.get("faults") or [{}])[0]
    start, end = fault.get("applied_at"), fault.get("healed_at")
    ops = {"before": [], "during": [], "after": []}  # type: dict[str, list[tuple[float, int]]]
    for inv, done in pairs:
        if inv["f"] not in ("write", "read") or done is None:
            continue
        t = inv["time"]  # before: done before the fault; after: invoked after heal; else the fault touched it
        name = "before" if start is None or done["time"] < start else "after" if end is not None and t >= end \
            else "during"
        ops[name].append((done["time"] - t, done.get("attempts") or 1))
    every = ops["before"] + ops["during"] + ops["after"]
    out: dict[str, Any] = {"attempts": sum(a for _, a in every),
                           "attempts_per_op": round(sum(a for _, a in every) / len(every), 3) if every else None}
    for name, got in ops.items():
        took = sorted(d for d, _ in got)
        rank = {q: took[min(len(took) - 1, int(q * len(took)))] if took else None for q in (0.5, 0.99)}
        out[f"attempts_per_op_{name}"] = round(sum(a for _, a in got) / len(got), 3) if got else None
        out[f"op_p50_ms_{name}"] = None if rank[0.5] is None else round(rank[0.5] * 1000, 2)
        out[f"op_p99_ms_{name}"] = None if rank[0.99] is None else round(rank[0.99] * 1000, 2)
        out[f"op_max_ms_{name}"] = round(took[-1] * 1000, 1) if took else None
    return out


def _rto(journal: dict[str, Any], writes: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> float | None:
    """Fault -> the earliest completion of an ok write that marks recovery (README, "rto_s")."""
    if not journal.get("faults"):
        return None
    t0 = journal["faults"][0]["applied_at"]
    rto = journal.get("rto", {})
    kinds = [] if rto.get("leaderless") else rto.get("promoted_kinds", [])
    promos = sorted((e for e in journal.get("events", []) if e["time"] >= t0 and e["kind"] in kinds),
                    key=lambda e: e["time"])
    ends = sorted((end for _, end in writes if end is not None and end["time"] >= t0),
                  key=lambda e: (e["time"], e["process"]))
    named = any(end is not None and end["type"] == "ok" and end.get("node") for _, end in writes)
    if promos and promos[0].get("node") and named:
        at, node = promos[0]["time"], promos[0]["node"]
        oks = [e["time"] for e in ends if e["type"] == "ok" and e.get("node") == node and e["time"] >= at]
        return oks[0] - t0 if oks else None
    previous, disrupted = t0, False
    if rto.get("leaderless"):  # no primary: the ok write that ends the *last* disruption
        found = None
        for e in ends:
            if e["type"] != "ok":
                disrupted, found = True, None
            else:
                if disrupted or e["time"] - previous > GAP_S:
                    disrupted, found = False, float(e["time"] - t0)
                previous = e["time"]
        return found
    for e in ends:
        disrupted = disrupted or e["type"] != "ok" or e["time"] - previous > GAP_S
        if e["type"] == "ok":
            if disrupted:
                return float(e["time"] - t0)
            previous = e["time"]
    return None


def disagreements(run_dir: Path) -> list[str]:
    """Every figure on which the journal and the recount differ (RTO to the journal's millisecond)."""
    metrics = json.loads((run_dir / "journal.json").read_text())["metrics"]
    second = recount(run_dir)
    out = []
    for key in KEYS:
        mine, theirs = second[key], metrics.get(key)
        if key == "rto_s" and mine is not None and theirs is not None:
            same = abs(mine - theirs) <= 0.0005 + 1e-9
        else:
            same = mine == theirs
        if not same:
            out.append(f"{key}: journal {theirs!r}, recount {mine!r}")
    return out
