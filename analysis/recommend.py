"""A plain-language recommendation per segment, with its flagd change (`analysis.targeting`).

Rules, per treatment variant against the control, in one segment:

* it **wins** when at least one tested (non-guardrail) metric is
  significantly better after correction, none is significantly worse, and
  every guardrail is shown non-inferior within its margin;
* it **loses** when a tested metric is significantly worse, or a guardrail
  is significantly worse (two-sided, at alpha);
* otherwise it is undecided.

Ship the best winner; keep the control when every variant loses; else keep
running, with the sessions that the decision metric (the tested metric
needing the fewest) still needs for the requested power at the observed
effect, and the days that takes at the period's rate. A sample-ratio
mismatch overrides everything: investigate before trusting any number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.periods import OVERALL
from analysis.power import sessions_still_needed
from analysis.results import Action, MetricResult, Recommendation
from analysis.targeting import TargetingChange


@dataclass(frozen=True, slots=True)
class Recommender:
    """Recommends, segment by segment, for one period of a split.

    `srm_flagged`: the period's sample-ratio test failed. `flag` is the flag's
    definition (for the targeting change), `power` that of the sessions still
    needed when no variant is decided.
    """

    control: str
    variants: Sequence[str]
    srm_flagged: bool
    power: float
    flag: Mapping[str, Any] | None
    flag_key: str | None
    split_id: str

    def recommend(
        self,
        results: Sequence[MetricResult],
        *,
        segment: tuple[str, str] | None,
        sessions_per_day: float,
    ) -> Recommendation:
        """The recommendation for one segment (None: the whole period)."""
        label = OVERALL if segment is None else f"{segment[0]}={segment[1]}"
        where = "" if segment is None else f" in {label}"
        if self.srm_flagged:
            message = (
                f"Investigate{where}: cohort sizes do not match the split's weights (sample ratio "
                "mismatch), so assignment or logging is broken and no effect can be trusted."
            )
            return Recommendation(label, Action.INVESTIGATE, None, message, None, None, None, None)
        change = TargetingChange(self.flag, self.flag_key, self.split_id, self.variants, segment)
        decided = self._decided(results, label, where, change)
        if decided is not None:
            return decided
        return _keep_running(label, where, results, sessions_per_day, self.power)

    def _decided(
        self, results: Sequence[MetricResult], label: str, where: str, change: TargetingChange
    ) -> Recommendation | None:
        """Ship the best winner, or keep the control when every variant loses; else None."""
        treatments = [v for v in self.variants if v != self.control]
        by_variant = {v: [r for r in results if r.variant == v] for v in treatments}
        winners = [v for v in treatments if _wins(by_variant[v])]
        if winners:
            best = max(winners, key=lambda v: _score(by_variant[v]))
            message = f"Ship {best}{where}: {_evidence(by_variant[best])}"
            return Recommendation(
                label, Action.SHIP, best, message, None, None, None, change.to(best)
            )
        if not treatments or not all(_loses(by_variant[v]) for v in treatments):
            return None
        reasons = "; ".join(f"{v}: {_harm(by_variant[v])}" for v in treatments)
        message = f"Keep {self.control} (the control){where}: {reasons}."
        targeting = change.to(self.control)
        return Recommendation(
            label, Action.KEEP_CONTROL, self.control, message, None, None, None, targeting
        )


def _tested(results: Sequence[MetricResult]) -> list[MetricResult]:
    return [r for r in results if not r.guardrail and r.error is None]


def _wins(results: Sequence[MetricResult]) -> bool:
    tested = _tested(results)
    guardrails = [r for r in results if r.guardrail]
    better = any(r.significant and r.beneficial for r in tested)
    worse = any(r.significant and not r.beneficial for r in tested)
    safe = all(r.non_inferiority is not None and r.non_inferiority.non_inferior for r in guardrails)
    return better and not worse and safe


def _harmful_guardrail(result: MetricResult) -> bool:
    effect = result.comparison.absolute
    return result.guardrail and effect.p_value < result.comparison.alpha and not result.beneficial


def _loses(results: Sequence[MetricResult]) -> bool:
    worse = any(r.significant and not r.beneficial for r in _tested(results))
    return worse or any(_harmful_guardrail(r) for r in results)


def _score(results: Sequence[MetricResult]) -> tuple[int, float]:
    """More significant improvements first, then the largest relative improvement."""
    wins = [r for r in _tested(results) if r.significant and r.beneficial]
    return len(wins), max(abs(r.comparison.relative.estimate) for r in wins)


def _effect_text(result: MetricResult) -> str:
    rel = result.comparison.relative
    if rel.error is not None:
        a = result.comparison.absolute
        return f"{result.metric} {a.estimate:+.4g} (CI {a.ci_low:+.4g} to {a.ci_high:+.4g})"
    return (
        f"{result.metric} {rel.estimate:+.1%} (CI {rel.ci_low:+.1%} to {rel.ci_high:+.1%}"
        + (
            ""
            if result.p_value_adjusted is None
            else f", adjusted p = {result.p_value_adjusted:.2g}"
        )
        + ")"
    )


def _evidence(results: Sequence[MetricResult]) -> str:
    wins = [_effect_text(r) for r in _tested(results) if r.significant and r.beneficial]
    guards = [r.metric for r in results if r.guardrail]
    text = "better on " + ", ".join(wins)
    if guards:
        text += "; guardrails within their margins (" + ", ".join(guards) + ")"
    return text + "."


def _harm(results: Sequence[MetricResult]) -> str:
    worse = [r for r in _tested(results) if r.significant and not r.beneficial]
    worse += [r for r in results if _harmful_guardrail(r)]
    better = [r for r in _tested(results) if r.significant and r.beneficial]
    text = "worse on " + ", ".join(_effect_text(r) for r in worse)
    if better:
        text += " (though better on " + ", ".join(_effect_text(r) for r in better) + ")"
    return text


def _keep_running(
    label: str,
    where: str,
    results: Sequence[MetricResult],
    sessions_per_day: float,
    power: float,
) -> Recommendation:
    needs = [
        (needed.additional, r)
        for r in _tested(results)
        if (needed := sessions_still_needed(r.comparison, power=power)).additional is not None
    ]
    if not needs:
        message = f"Keep running{where}: too little data to estimate the sessions still needed."
        return Recommendation(label, Action.KEEP_RUNNING, None, message, None, None, None, None)
    additional, decisive = min(needs, key=lambda pair: pair[0])
    days = additional / sessions_per_day if sessions_per_day > 0 else None
    pace = "" if days is None else f" (about {days:.1f} days at the current rate)"
    message = (
        f"Keep running{where}: no variant is decided yet. About {additional:,} more sessions"
        f"{pace} for {power:.0%} power at the observed effect on {_effect_text(decisive)}."
    )
    return Recommendation(
        label, Action.KEEP_RUNNING, None, message, decisive.metric, additional, days, None
    )
