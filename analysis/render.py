"""An `ExperimentResult` as tidy pandas frames and as a terminal table.

`ExperimentResult.to_frame()` and `to_text()` call these; this module reads
the result types only for their annotations, so that `analysis.results`
(which holds them) and this module do not import each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.periods import OVERALL

if TYPE_CHECKING:
    from analysis.results import (
        ExperimentResult,
        HeterogeneityResult,
        MetricResult,
        PeriodResult,
    )

COMPARISON_COLUMNS = (
    "period", "segment", "level", "metric", "variant", "control", "method", "guardrail",
    "n_control", "n_treatment", "mean_control", "mean_treatment",
    "effect", "effect_ci_low", "effect_ci_high", "p_value",
    "relative_effect", "relative_ci_low", "relative_ci_high", "relative_p_value",
    "p_value_adjusted", "significant", "non_inferior", "cuped_variance_reduction", "error",
)  # fmt: skip


def _comparison_row(period: str, segment: str, level: str, r: MetricResult) -> dict[str, Any]:
    c = r.comparison
    a, rel = c.absolute, c.relative
    return {
        "period": period, "segment": segment, "level": level, "metric": r.metric,
        "variant": r.variant, "control": r.control, "method": str(c.method),
        "guardrail": r.guardrail, "n_control": c.control.n, "n_treatment": c.treatment.n,
        "mean_control": c.control.mean, "mean_treatment": c.treatment.mean,
        "effect": a.estimate, "effect_ci_low": a.ci_low, "effect_ci_high": a.ci_high,
        "p_value": a.p_value, "relative_effect": rel.estimate, "relative_ci_low": rel.ci_low,
        "relative_ci_high": rel.ci_high, "relative_p_value": rel.p_value,
        "p_value_adjusted": r.p_value_adjusted, "significant": r.significant,
        "non_inferior": None if r.non_inferiority is None else r.non_inferiority.non_inferior,
        "cuped_variance_reduction": None if r.cuped is None else r.cuped.variance_reduction,
        "error": None if r.error is None else str(r.error),
    }  # fmt: skip


def _comparison_rows(p: PeriodResult) -> Iterable[dict[str, Any]]:
    label = p.period.label
    for r in p.comparisons:
        yield _comparison_row(label, OVERALL, OVERALL, r)
    for s in p.segments:
        for r in s.comparisons:
            yield _comparison_row(label, s.attribute, s.level, r)


def _cohort_rows(p: PeriodResult) -> Iterable[dict[str, Any]]:
    for c in p.cohorts:
        yield {
            "period": p.period.label,
            **_fields(c),
            "error": None if c.error is None else str(c.error),
        }


def _recommendation_rows(p: PeriodResult) -> Iterable[dict[str, Any]]:
    for r in p.recommendations:
        yield {"period": p.period.label, **_fields(r), "action": str(r.action)}


_ROWS = {
    "comparisons": (_comparison_rows, list(COMPARISON_COLUMNS)),
    "cohorts": (_cohort_rows, None),
    "recommendations": (_recommendation_rows, None),
}


def frame_of(result: ExperimentResult, kind: str) -> pd.DataFrame:
    """`comparisons`, `cohorts` or `recommendations` as a tidy DataFrame."""
    if kind not in _ROWS:
        raise ValueError(f"kind must be comparisons, cohorts or recommendations, got {kind!r}")
    rows_of, columns = _ROWS[kind]
    return pd.DataFrame([row for p in result.periods for row in rows_of(p)], columns=columns)


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _num(value: float | None, spec: str = ".4g") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def _effect_cells(r: MetricResult) -> list[str]:
    rel = r.comparison.relative
    a = r.comparison.absolute
    interval = f"[{_num(rel.ci_low, '+.1%')}, {_num(rel.ci_high, '+.1%')}]"
    if r.guardrail:
        ni = r.non_inferiority
        verdict = (
            "-" if ni is None or ni.error else ("non-inferior" if ni.non_inferior else "not shown")
        )
    else:
        verdict = "significant" if r.significant else "-"
    return [
        r.metric, r.variant, _num(a.estimate), _num(rel.estimate, "+.1%"), interval,
        _num(a.p_value, ".3g"), _num(r.p_value_adjusted, ".3g"), verdict,
        str(r.error) if r.error else "",
    ]  # fmt: skip


def render_text(result: ExperimentResult) -> str:
    """The result as a table for a terminal."""
    s = result.settings
    out = [
        f"flag {result.flag_key or '?'}: alpha {s.alpha}, correction {s.correction}"
        + (", sequential" if s.sequential else "")
        + (", CUPED" if s.cuped else "")
    ]
    out += [f"note: {n.message}" for n in result.notices]
    if result.error is not None:
        out.append(f"no analysis: {result.error}")
    for p in result.periods:
        out += ["", *_period_lines(p)]
    return "\n".join(out) + "\n"


_COHORT_HEADER = ["metric", "cohort", "n", "mean", "std", "p50", "p95", "p99"]
_EFFECT_HEADER = [
    "metric",
    "variant",
    "effect",
    "relative",
    "95% CI",
    "p",
    "p adj",
    "verdict",
    "error",
]


def _period_lines(p: PeriodResult) -> list[str]:
    per = p.period
    out = [
        f"period {per.label}: split {per.split_id}, weights {dict(per.weights)}, "
        f"{per.sessions:,} sessions, {per.start} to {per.end}",
        f"unit: {p.unit.description}",
        f"control: {p.control}; SRM p = {_num(p.health.srm.p_value, '.3g')}",
    ]
    out += [f"warning: {w.message}" for w in p.health.warnings]
    cohorts = [
        [c.metric, c.cohort, f"{c.n:,}", *map(_num, (c.mean, c.std, c.p50, c.p95, c.p99))]
        for c in p.cohorts
    ]
    out += ["", *_table(_COHORT_HEADER, cohorts)]
    out += ["", *_table(_EFFECT_HEADER, [_effect_cells(r) for r in p.comparisons])]
    out += [_heterogeneity_line(q) for q in p.heterogeneity]
    return [*out, "", *[f"[{r.segment}] {r.action}: {r.message}" for r in p.recommendations]]


def _heterogeneity_line(q: HeterogeneityResult) -> str:
    h = q.heterogeneity
    return (
        f"heterogeneity by {q.attribute}, {q.metric}, {q.variant}: Q = {_num(h.q, '.3g')}, "
        f"p = {_num(h.p_value, '.3g')}, I2 = {_num(h.i_squared, '.0%')}"
    )
