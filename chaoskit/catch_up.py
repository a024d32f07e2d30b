"""How long after heal a lagging replica had every value again, from a probe's ``replica-behind`` /
``replica-caught-up`` events (Cassandra's ``probe_node``, :mod:`chaoskit.systems.cassandra.probe`)."""

from __future__ import annotations

from chaoskit.checkers import CheckResult, RunFacts, Valid
from chaoskit.history import History

PROBE_KINDS = ("replica-behind", "replica-caught-up")


class CatchUp:
    """``caught_up_s``: heal to the first caught-up sample (0 if not behind at heal; none if still behind);
    ``behind_at_end``: the last sample before the final read was behind. Not applicable without a probe."""

    name = "catch-up"

    def check(self, history: History, facts: RunFacts) -> CheckResult:
        marks = sorted((e for e in facts.events if e.kind in PROBE_KINDS), key=lambda e: e.time)
        if not marks or facts.healed_at is None:
            return CheckResult(self.name, Valid.TRUE, "not applicable: no replica probed",
                               {"caught_up_s": None, "behind_at_end": None})
        behind_at_end = marks[-1].kind == "replica-behind"
        at_heal = [e for e in marks if e.time <= facts.healed_at]
        behind_at_heal = bool(at_heal) and at_heal[-1].kind == "replica-behind"
        caught = next((e.time for e in marks if e.time > facts.healed_at and e.kind == "replica-caught-up"), None)
        took = None if behind_at_end else (caught - facts.healed_at if behind_at_heal and caught else 0.0)
        detail = (f"{marks[-1].node} still lacked rows when the final read began" if behind_at_end else
                  f"{marks[-1].node} had every row {took:.1f}s after heal")
        return CheckResult(self.name, Valid.FALSE if behind_at_end else Valid.TRUE, detail,
                           {"caught_up_s": None if took is None else round(took, 2), "behind_at_end": behind_at_end})
