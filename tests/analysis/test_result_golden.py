"""The result of `analyze`, pinned byte for byte on seeded synthetic experiments.

`voxroute analyze --format json` prints `to_json(indent=True)` and
`GET /v1/experiments/{flag}/results` returns `to_json()`: both must stay the
same for the same data whatever the code inside `analysis/` becomes. The
files under `golden/` were written by the code before the stats-object
pipeline; when a change of the numbers is intended, regenerate them with
`uv run python tests/analysis/test_result_golden.py` and say why in the commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from synthetic import (
    METRICS,
    STT_WEIGHTS,
    TTS_WEIGHTS,
    Experiment,
    MemoryEvents,
    periods,
)

from analysis import analyze, load_sessions
from analysis.results import ExperimentResult
from experiments.flags.loader import DEFAULT_FLAGS_PATH
from experiments.flags.split_ids import split_sites

GOLDEN = Path(__file__).resolve().parent / "golden"
FLAGS = json.loads(DEFAULT_FLAGS_PATH.read_text())["flags"]
STT = FLAGS["stt-provider"]
(STT_SPLIT,) = {site.split_id for site in split_sites("stt-provider", STT["targeting"]).values()}
FASTER = {"assemblyai-universal": {"stt_ttfb_ms": -15.0}}


def _frame(experiment: Experiment, flag_key: str = "stt-provider", **kwargs: Any) -> pd.DataFrame:
    events = MemoryEvents(*experiment.events())
    return load_sessions(events, flag_key, metrics=METRICS, **kwargs)


def _everything() -> ExperimentResult:
    """Segments (region, tenant), CUPED, sequential, excluded sessions, the flag's targeting."""
    experiment = Experiment(
        sessions=1500, effects={**FASTER, ("assemblyai-universal", "eu"): {"stt_ttfb_ms": -10.0}},
        pre_sessions=400, static_share=0.1, fallback_share=0.03, tenant_sd=25.0, tenants=5,
        split_id=STT_SPLIT, seed=11,
    )  # fmt: skip
    df = _frame(experiment, flag=STT)
    return analyze(df, segment_by=["region", "tenant_id"], cuped=True, sequential=True)


def _winner_by_region() -> ExperimentResult:
    """A winner in one region only: ship there, keep running elsewhere (Holm, fixed horizon)."""
    effects = {("assemblyai-universal", "eu"): {"stt_ttfb_ms": -25.0, "task_success": 0.1}}
    experiment = Experiment(sessions=3000, effects=effects, split_id=STT_SPLIT, seed=5)
    return analyze(_frame(experiment, flag=STT), segment_by="region")


def _tenant_split() -> ExperimentResult:
    """A split bucketed by tenant: cluster-robust, SRM over tenants, CUPED on clusters."""
    experiment = Experiment(
        sessions=2500, flag_key="tts-provider", weights=TTS_WEIGHTS, bucket_unit="tenant_id",
        split_id="tts-provider/x", tenants=50, tenant_sd=30.0, pre_sessions=600, seed=3,
        effects={"cartesia-sonic": {"stt_ttfb_ms": -20.0}},
    )  # fmt: skip
    return analyze(_frame(experiment, "tts-provider"), segment_by="region", cuped=True)


def _weight_change(period: str) -> Callable[[], ExperimentResult]:
    def result() -> ExperimentResult:
        first = Experiment(sessions=1200, prefix="a", flag_version="v1", effects=FASTER)
        second = Experiment(
            sessions=1200, prefix="b", flag_version="v2", seed=2, effects=FASTER,
            weights=(("deepgram-nova-3", 20), ("assemblyai-universal", 80)),
            start_ms=first.start_ms + 8 * 86_400_000,
        )  # fmt: skip
        events = MemoryEvents(*periods(first, second))
        df = load_sessions(events, "stt-provider", metrics=METRICS)
        return analyze(df, period=period, correction="bh", alpha=0.1)

    return result


def _guardrail_harmed() -> ExperimentResult:
    """A faster variant that breaks the e2e guardrail: keep the control (BH correction)."""
    effects = {"assemblyai-universal": {"stt_ttfb_ms": -20.0, "e2e_latency_ms": 120.0}}
    experiment = Experiment(sessions=2000, effects=effects, seed=8)
    return analyze(_frame(experiment), correction="bh", control="deepgram-nova-3")


def _srm() -> ExperimentResult:
    experiment = Experiment(sessions=3000, drop={"assemblyai-universal": 0.2}, seed=4)
    return analyze(_frame(experiment), segment_by="region")


def _degenerate() -> ExperimentResult:
    """Few sessions, one metric without data in a cohort: error enums, nulls in JSON."""
    experiment = Experiment(
        sessions=40, weights=(("deepgram-nova-3", 1), ("assemblyai-universal", 99))
    )
    df = _frame(experiment)
    df.loc[df["cohort"] == "assemblyai-universal", "task_success"] = float("nan")
    return analyze(df, segment_by="region", cuped=True)


def _no_split() -> ExperimentResult:
    return analyze(_frame(Experiment(sessions=50, static_share=1.0, weights=STT_WEIGHTS)))


CASES: dict[str, Callable[[], ExperimentResult]] = {
    "everything": _everything,
    "winner_by_region": _winner_by_region,
    "tenant_split": _tenant_split,
    "weight_change_split": _weight_change("split"),
    "weight_change_pooled": _weight_change("pooled"),
    "weight_change_latest": _weight_change("latest"),
    "guardrail_harmed": _guardrail_harmed,
    "srm": _srm,
    "degenerate": _degenerate,
    "no_split": _no_split,
}


@pytest.fixture(scope="module")
def results() -> dict[str, ExperimentResult]:
    return {name: make() for name, make in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_cli_json_is_unchanged(name: str, results: dict[str, ExperimentResult]) -> None:
    expected = (GOLDEN / f"{name}.json").read_text()
    assert results[name].to_json(indent=True) + "\n" == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_http_body_is_unchanged(name: str, results: dict[str, ExperimentResult]) -> None:
    expected = orjson.dumps(orjson.loads((GOLDEN / f"{name}.json").read_bytes())).decode()
    assert results[name].to_json() == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_table_is_unchanged(name: str, results: dict[str, ExperimentResult]) -> None:
    assert results[name].to_text() == (GOLDEN / f"{name}.txt").read_text()


@pytest.mark.parametrize("kind", ["comparisons", "cohorts", "recommendations"])
def test_the_frames_are_unchanged(kind: str, results: dict[str, ExperimentResult]) -> None:
    frame = results["everything"].to_frame(kind)  # type: ignore[arg-type]
    assert frame.to_csv(index=False) == (GOLDEN / f"everything.{kind}.csv").read_text()


def write_golden() -> None:
    """Rewrite every golden file from the current code."""
    GOLDEN.mkdir(exist_ok=True)
    for name, make in CASES.items():
        result = make()
        (GOLDEN / f"{name}.json").write_text(result.to_json(indent=True) + "\n")
        (GOLDEN / f"{name}.txt").write_text(result.to_text())
        if name == "everything":
            for kind in ("comparisons", "cohorts", "recommendations"):
                csv = result.to_frame(kind).to_csv(index=False)  # type: ignore[arg-type]
                (GOLDEN / f"everything.{kind}.csv").write_text(csv)


if __name__ == "__main__":
    write_golden()
