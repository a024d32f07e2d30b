"""What a cache's checker counts (Memcached): a cache has no acknowledged write to lose, so its figures
are how often the application found what it had cached, and what the failure cost it. The README's
"Cache figures" defines each; ``recount.py`` counts them again from ``history.jsonl`` alone.

In the history a ``get`` is a ``read`` op whose value says ``{"key", "hit", "refilled"}`` and a ``set`` is a
``write`` op whose value says ``{"key", "stored"}`` (see :mod:`chaoskit.clients.memcached`). Phases go by
invocation time: *before* the fault, *during* it (until heal), *after* heal.
"""

from __future__ import annotations

from typing import Any

from chaoskit.checkers import CheckResult, Number, RunFacts, Valid
from chaoskit.history import History, Op, OpType, Pair

WINDOW_S = 1.0  # hit ratio over time: windows of this width, from the fault on
MIN_WINDOW_GETS = 10  # a window with fewer gets gives no figure
END_S = 2.0  # ``hit_ratio_end``: the gets invoked in the last END_S seconds


def _ratio(hits: int, gets: int) -> float | None:
    return round(hits / gets, 4) if gets else None


def _hit(p: Pair) -> bool:
    return p.type is OpType.OK and p.complete is not None and bool((p.complete.value or {}).get("hit"))


def hit_ratio_series(gets: list[Pair], start: float, width: float = WINDOW_S) -> list[tuple[float, int, int]]:
    """(window start, gets, hits) for consecutive windows of ``width`` from ``start`` over the gets invoked
    at or after it (a window with no get is left out)."""
    bins: dict[int, list[int]] = {}
    for p in gets:
        if p.invoke.time >= start:
            b = bins.setdefault(int((p.invoke.time - start) // width), [0, 0])
            b[0] += 1
            b[1] += _hit(p)
    return [(round(start + i * width, 3), n, h) for i, (n, h) in sorted(bins.items())]


def _sets(pairs: list[Pair]) -> dict[str, list[float]]:
    """Key -> completion times of the sets that stored it (writes, and refills after a miss)."""
    out: dict[str, list[float]] = {}
    for p in pairs:
        v, c = p.complete.value if p.complete else None, p.complete
        if c is None or p.type is not OpType.OK or not isinstance(v, dict):
            continue
        if (p.invoke.f == "write" and v.get("stored")) or (p.invoke.f == "read" and v.get("refilled")):
            out.setdefault(str(v["key"]), []).append(c.time)
    return out


class CacheHits:
    """Hit ratio overall, per phase and over time; errors the application saw; misses on cached keys."""

    name = "cache"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        pairs = [p for p in history.pairs() if p.invoke.f in ("read", "write") and p.complete is not None]
        gets = [p for p in pairs if p.invoke.f == "read"]
        t0, t1 = facts.fault_at, facts.healed_at
        end = max((p.invoke.time for p in gets), default=0.0)
        phases = {"before": [p for p in gets if t0 is None or p.invoke.time < t0],
                  "during": [p for p in gets if t0 is not None and t0 <= p.invoke.time < (t1 or float("inf"))],
                  "after": [p for p in gets if t1 is not None and p.invoke.time >= t1]}
        hits = sum(map(_hit, gets))
        windows = [h / n for _, n, h in hit_ratio_series(gets, t0) if n >= MIN_WINDOW_GETS] if t0 is not None else []
        last = [p for p in gets if p.invoke.time >= end - END_S]
        unexpected = _unexpected_misses(gets, _sets(pairs))
        errors = sum(1 for p in pairs if p.type is not OpType.OK and _end(p).error)
        not_stored = sum(1 for p in pairs if _end(p).error is None and isinstance(v := _end(p).value, dict)
                         and False in (v.get("stored"), v.get("refilled")))
        first = min((p.invoke.time for p in gets), default=0.0)
        m: dict[str, Number] = {
            "gets": len(gets), "hits": hits, "hit_ratio": _ratio(hits, len(gets)),
            **{f"hit_ratio_{k}": _ratio(sum(map(_hit, v)), len(v)) for k, v in phases.items()},
            "min_hit_ratio": round(min(windows), 4) if windows else None,
            "hit_ratio_end": _ratio(sum(map(_hit, last)), len(last)),
            "cache_errors": errors, "sets_not_stored": not_stored, "unexpected_misses": len(unexpected),
            "miss_rate_before": _rate(unexpected, first, t0 if t0 is not None else end),
            "miss_rate_during": _rate(unexpected, t0, t1) if t0 is not None and t1 is not None else None,
            "rehash_s": _rehash(pairs, t0),
        }
        detail = (f"hit ratio {_pct(m['hit_ratio_before'])} before the fault, {_pct(m['hit_ratio_during'])} during "
                  f"(lowest {_pct(m['min_hit_ratio'])} in a {WINDOW_S:g} s window), {_pct(m['hit_ratio_after'])} "
                  f"after heal, {_pct(m['hit_ratio_end'])} in the last {END_S:g} s; {errors} errors raised to the "
                  f"application, {not_stored} sets not stored, {len(unexpected)} misses on keys set before")
        if m["rehash_s"] is not None:
            detail += f"; every client had rehashed a key to another node {m['rehash_s']:.2f} s after the fault"
        return CheckResult(self.name, Valid.TRUE if not errors else Valid.FALSE, detail, m)


def _end(p: Pair) -> Op:
    assert p.complete is not None  # only completed ops are looked at
    return p.complete


def _unexpected_misses(gets: list[Pair], stored: dict[str, list[float]]) -> list[Pair]:
    """Misses on a key that a set had stored before the get was invoked."""
    return [p for p in gets if p.type is OpType.OK and not _hit(p)
            and any(t < p.invoke.time for t in stored.get(str(_end(p).value["key"]), ()))]


def _rate(misses: list[Pair], start: float | None, stop: float | None) -> float | None:
    if start is None or stop is None or stop <= start:
        return None
    return round(sum(1 for p in misses if start <= p.invoke.time < stop) / (stop - start), 2)


def _rehash(pairs: list[Pair], t0: float | None) -> float | None:
    """Seconds from the fault until the last client process had its first ok op on a key served by
    another node than the one that served that key before the fault."""
    if t0 is None:
        return None
    home: dict[str, str] = {}
    firsts: dict[int, float] = {}
    for p in sorted(pairs, key=lambda p: _end(p).time):
        c = _end(p)
        if p.type is not OpType.OK or c.node is None or not isinstance(c.value, dict):
            continue
        key = str(c.value["key"])
        if c.time < t0:
            home[key] = c.node
        elif key in home and home[key] != c.node:
            firsts.setdefault(c.process, c.time)
    return round(max(firsts.values()) - t0, 3) if firsts else None


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x:.0%}"
