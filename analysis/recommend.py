"""A plain-language recommendation per segment, and the flagd change that implements it.

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

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.power import sessions_still_needed
from analysis.report import Action, MetricResult, Recommendation
from experiments.flags.split_ids import split_sites

_TOP_LEVEL_VARS = frozenset({"region", "tenant_id"})


def flag_document(flag: Any) -> dict[str, Any] | None:
    """A flag's flagd definition as JSON data: a mapping as given, or a parsed
    `experiments.flags.model.FlagDefinition` (targeting with `$ref`s expanded)."""
    if flag is None or isinstance(flag, Mapping):
        return None if flag is None else dict(flag)
    return {
        "state": flag.state,
        "variants": dict(flag.variants),
        "defaultVariant": flag.default_variant,
        "targeting": copy.deepcopy(flag.targeting),
        "metadata": dict(flag.metadata),
    }


@dataclass(frozen=True, slots=True)
class Decision:
    """What every recommendation of one period shares."""

    control: str
    variants: Sequence[str]
    srm_flagged: bool
    power: float
    flag: Mapping[str, Any] | None
    flag_key: str | None
    split_id: str


def recommend(
    results: Sequence[MetricResult],
    decision: Decision,
    *,
    segment: tuple[str, str] | None,
    sessions_per_day: float,
) -> Recommendation:
    """The recommendation for one segment (None: the whole period)."""
    label = "all" if segment is None else f"{segment[0]}={segment[1]}"
    where = "" if segment is None else f" in {label}"
    control, variants = decision.control, decision.variants
    change = _Change(decision, segment)
    if decision.srm_flagged:
        message = (
            f"Investigate{where}: cohort sizes do not match the split's weights (sample ratio "
            "mismatch), so assignment or logging is broken and no effect can be trusted."
        )
        return Recommendation(label, Action.INVESTIGATE, None, message, None, None, None, None)
    treatments = [v for v in variants if v != control]
    by_variant = {v: [r for r in results if r.variant == v] for v in treatments}
    winners = [v for v in treatments if _wins(by_variant[v])]
    if winners:
        best = max(winners, key=lambda v: _score(by_variant[v]))
        message = f"Ship {best}{where}: {_evidence(by_variant[best])}"
        return Recommendation(label, Action.SHIP, best, message, None, None, None, change.to(best))
    if treatments and all(_loses(by_variant[v]) for v in treatments):
        reasons = "; ".join(f"{v}: {_harm(by_variant[v])}" for v in treatments)
        message = f"Keep {control} (the control){where}: {reasons}."
        return Recommendation(
            label, Action.KEEP_CONTROL, control, message, None, None, None, change.to(control)
        )
    return _keep_running(label, where, results, sessions_per_day, decision.power)


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


class _Change:
    """Builds the targeting change that routes a segment (or everyone) to one variant."""

    def __init__(self, decision: Decision, segment: tuple[str, str] | None) -> None:
        self.flag, self.flag_key = decision.flag, decision.flag_key
        self.split_id, self.variants, self.segment = decision.split_id, decision.variants, segment

    def to(self, variant: str) -> dict[str, Any]:
        """`weights`: the body of `PATCH /v1/flags/{key}` setting the split to 0/100 (whole
        period only); `replace_fractional_with` and `patch`: the targeting edit."""
        replacement: Any = variant
        weights = None
        if self.segment is None:
            split_weights = {v: 100 if v == variant else 0 for v in self.variants}
            weights = {"split": self.split_id, "weights": split_weights}
        else:
            attribute, level = self.segment
            name = attribute if attribute in _TOP_LEVEL_VARS else f"attributes.{attribute}"
            node = _split_node(self.flag, self.flag_key, self.split_id)
            rest = node if node is not None else {"fractional": "<the split's current node>"}
            replacement = {"if": [{"==": [{"var": name}, level]}, variant, rest]}
        change: dict[str, Any] = {
            "flag_key": self.flag_key,
            "split_id": self.split_id,
            "weights_patch": weights,
            "replace_fractional_with": replacement,
            "patch": None,
        }
        targeting = _replaced(self.flag, self.flag_key, self.split_id, replacement)
        if targeting is not None and self.flag_key is not None:
            path = f"/flags/{_pointer(self.flag_key)}/targeting"
            change["patch"] = [{"op": "replace", "path": path, "value": targeting}]
        return change


def _pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")  # RFC 6901 escaping


def _sites(flag: Mapping[str, Any] | None, flag_key: str | None) -> tuple[Any, dict[int, Any]]:
    if flag is None or flag_key is None or "targeting" not in flag:
        return None, {}
    targeting = copy.deepcopy(flag["targeting"])
    return targeting, {
        node_id: site.split_id for node_id, site in split_sites(flag_key, targeting).items()
    }


def _split_node(flag: Mapping[str, Any] | None, flag_key: str | None, split_id: str) -> Any:
    targeting, sites = _sites(flag, flag_key)
    return next((node for node in _nodes(targeting) if sites.get(id(node)) == split_id), None)


def _replaced(
    flag: Mapping[str, Any] | None, flag_key: str | None, split_id: str, replacement: Any
) -> Any:
    """The flag's targeting with the split's `fractional` node replaced (None if not found)."""
    targeting, sites = _sites(flag, flag_key)
    if targeting is None:
        return None
    if sites.get(id(targeting)) == split_id:
        return replacement
    for parent in _nodes(targeting):
        for key, child in _children(parent):
            if sites.get(id(child)) == split_id:
                parent[key] = replacement
                return targeting
    return None


def _nodes(node: Any) -> list[Any]:
    found = [node] if isinstance(node, dict | list) else []
    for _, child in _children(node):
        found.extend(_nodes(child))
    return found


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, list):
        return list(enumerate(node))
    return []
