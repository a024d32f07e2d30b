"""What a cache-aside run's checkers count: registers in the database, and the cache in front of them.

The workload (:mod:`chaoskit.clients.cache_aside`) keeps *max-registers* ``k0..k<keys-1>``: a write of v
to key k raises the register to v, never lowers it, and write values are unique and increasing. The final
read takes ``{"db": {key: value}, "cache": {key: value}}`` after recovery. The README's "Cache-aside
figures" defines each figure; ``recount.py`` counts them again from ``history.jsonl`` alone.

- ``lost_writes``: acknowledged writes v to key k whose key's final database value is below v (or absent):
  v never reached the database that survived (a max-register only moves up, so an overwrite is no loss).
- ``cache_ahead``: keys whose cached value the final database does not reach (the cache serves a value the
  database lost); ``cache_behind``: keys whose cached value is below the database's (a stale cache);
  ``divergent_keys``: both. A key the cache does not hold is a miss, not a divergence.
- ``served_lost``: ok reads invoked after heal (the recover phase) that returned, from the cache or the
  database, a value above its key's final database value -- a value the application was served that, by
  the end, was lost.
- ``cache_flushes``: invalidations on failover that went through (ops whose value says ``flushed``).
"""

from __future__ import annotations

from typing import Any

from chaoskit.checkers import CheckResult, Number, RunFacts, Valid, _final_read
from chaoskit.history import History, OpType, Pair


def _key(p: Pair) -> str | None:
    v = p.complete.value if p.complete is not None else None
    return str(v["key"]) if isinstance(v, dict) and "key" in v else None


def register_losses(name: str, writes: list[Pair], final: dict[str, Any], base: dict[str, Number]) -> CheckResult:
    """``LostWrites`` for registers: an acked write below its key's final value is lost; an info or failed
    write is applied when its key's final value is exactly it."""
    db: dict[str, int] = {str(k): int(v) for k, v in final.get("db", {}).items()}

    def below(p: Pair) -> bool:
        key = _key(p)
        return key is not None and db.get(key, 0) < int(p.invoke.value)

    def exact(p: Pair) -> bool:
        key = _key(p)
        return key is not None and db.get(key) == int(p.invoke.value)

    acked = [p for p in writes if p.type is OpType.OK]
    lost = [p for p in acked if below(p)]
    applied = sum(map(exact, (p for p in writes if p.type is OpType.INFO)))
    phantom = sum(map(exact, (p for p in writes if p.type is OpType.FAIL)))
    metrics: dict[str, Number] = {**base, "lost_writes": len(lost),
                                  "lost_fraction": len(lost) / len(acked) if acked else 0.0,
                                  "info_writes_applied": applied, "failed_writes_present": phantom, "duplicates": None}
    detail = (f"{len(lost)} of {len(acked)} acknowledged register writes above their key's final database value "
              f"(lost; {base['info_writes']} indeterminate, {applied} of them the final value)")
    if phantom:
        detail += f"; {phantom} writes reported failed are their key's final value (client misclassified errors)"
    return CheckResult(name, Valid.TRUE if not lost and not phantom else Valid.FALSE, detail, metrics)


def divergence(db: dict[str, int], cache: dict[str, int]) -> tuple[list[str], list[str]]:
    """(keys the cache is ahead of the database on, keys it is behind on)."""
    ahead = sorted(k for k, v in cache.items() if db.get(k) is None or v > db[k])
    behind = sorted(k for k, v in cache.items() if db.get(k) is not None and v < db[k])
    return ahead, behind


class CacheDivergence:
    """Cache vs database at the end, and lost values served after heal."""

    name = "cache-divergence"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        pairs = [p for p in history.pairs() if p.invoke.f in ("read", "write") and p.complete is not None]
        values = [p.complete.value for p in pairs if p.complete is not None and isinstance(p.complete.value, dict)]
        flushes = sum(1 for v in values if v.get("flushed"))
        errors = sum(1 for v in values if v.get("cache_error"))
        reads = [p for p in pairs if p.invoke.f == "read" and p.type is OpType.OK]
        hits = sum(1 for p in reads if p.complete is not None and p.complete.value.get("source") == "cache")
        base: dict[str, Number] = {"cache_flushes": flushes, "cache_aside_errors": errors,
                                   "cache_aside_reads": len(reads),
                                   "cache_aside_hit_ratio": round(hits / len(reads), 4) if reads else None}
        final = _final_read(history)
        if not isinstance(final, dict):
            return CheckResult(self.name, Valid.UNKNOWN, "no successful final read of database and cache",
                               {**base, "cache_ahead": None, "cache_behind": None, "divergent_keys": None,
                                "served_lost": None})
        db = {str(k): int(v) for k, v in final["db"].items()}
        cache = {str(k): int(v) for k, v in final["cache"].items()}
        ahead, behind = divergence(db, cache)
        t1 = facts.healed_at
        served = [p for p in reads if t1 is not None and p.invoke.time >= t1 and p.complete is not None
                  and (v := p.complete.value.get("value")) is not None
                  and int(v) > db.get(str(p.complete.value["key"]), 0)]
        from_cache = sum(1 for p in served if p.complete is not None and p.complete.value.get("source") == "cache")
        m: dict[str, Number] = {**base, "cache_ahead": len(ahead), "cache_behind": len(behind),
                                "divergent_keys": len(ahead) + len(behind), "served_lost": len(served)}
        detail = (f"of {len(cache)} cached keys, {len(ahead)} ahead of the database (values it lost) and {len(behind)} "
                  f"behind it (stale); {len(served)} reads after heal served a lost value ({from_cache} from the "
                  f"cache); {flushes} flushes on failover, {errors} cache errors (best effort), hit ratio "
                  f"{base['cache_aside_hit_ratio']}")
        if ahead:
            detail += f"; ahead: {', '.join(f'{k} {cache[k]}>{db.get(k)}' for k in ahead[:5])}"
        return CheckResult(self.name, Valid.TRUE if not ahead and not behind and not served else Valid.FALSE, detail, m)
