"""AnalysisSpec: the one declaration of an analysis's options, normalised and checked."""

from __future__ import annotations

from typing import Any

import pytest
from synthetic import E2E

from analysis import AnalysisError, AnalysisSpec, CorrectionMethod, PeriodMode
from analysis.metric_specs import metric_spec
from analysis.spec import options


def test_strings_become_enums_and_a_segment_a_tuple() -> None:
    spec = AnalysisSpec(segment_by="region", correction="bh", period="pooled")  # type: ignore[arg-type]
    assert spec.segment_by == ("region",)
    assert spec.correction is CorrectionMethod.BENJAMINI_HOCHBERG
    assert spec.period is PeriodMode.POOLED


def test_the_long_name_of_benjamini_hochberg_is_read() -> None:
    assert AnalysisSpec(correction="benjamini_hochberg").correction == "bh"  # type: ignore[arg-type]


def test_metric_definitions_become_metric_specs_and_names_stay() -> None:
    spec = AnalysisSpec(metrics=["stt_ttfb_ms", E2E])  # type: ignore[arg-type]
    assert spec.metrics == ("stt_ttfb_ms", metric_spec(E2E))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"power": 1.0}, "power"),
        ({"tuning_n": 0}, "tuning_n"),
        ({"correction": "bonferroni"}, "correction"),
        ({"period": "weekly"}, "period"),
    ],
)
def test_a_wrong_value_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(AnalysisError, match=field) as info:
        AnalysisSpec(**changes)
    assert field in info.value.context


def test_replace_checks_the_new_values() -> None:
    with pytest.raises(AnalysisError, match="alpha"):
        AnalysisSpec().replace(alpha=2.0)


def test_the_options_are_the_fields_a_user_sets() -> None:
    found = {o.name: (o.field, o.kind, o.default) for o in options()}
    assert found == {
        "segment": ("segment_by", str, None),
        "sequential": ("sequential", bool, False),
        "cuped": ("cuped", bool, False),
        "correction": ("correction", CorrectionMethod, CorrectionMethod.HOLM),
        "period": ("period", PeriodMode, PeriodMode.SPLIT),
        "control": ("control", str, None),
        "alpha": ("alpha", float, 0.05),
    }


def test_from_options_reads_public_names_and_ignores_the_rest() -> None:
    values = {"segment": "region", "alpha": 0.1, "correction": "bh", "format": "json"}
    spec = AnalysisSpec.from_options(values)
    assert spec == AnalysisSpec(
        segment_by=("region",), alpha=0.1, correction=CorrectionMethod("bh")
    )
    assert AnalysisSpec.from_options({"segment": None}).segment_by == ()


def test_to_dict_is_the_results_settings() -> None:
    assert AnalysisSpec(segment_by=("region",), cuped=True).to_dict() == {
        "alpha": 0.05, "correction": "holm", "sequential": False, "tuning_n": 5000.0,
        "cuped": True, "period": "split", "segment_by": ["region"], "power": 0.8,
    }  # fmt: skip
